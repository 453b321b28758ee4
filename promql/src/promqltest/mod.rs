//! Prometheus promqltest files: parsing and running them.
