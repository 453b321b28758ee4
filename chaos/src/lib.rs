//! skein-chaos: a fault-injection harness for Skein. It builds a network
//! of namespaces, runs real Prometheus pairs on generated data with skein
//! sidecars and queriers, injects seeded faults, checks every query answer
//! against an exact oracle and reports invariant verdicts.

pub mod bucket;
pub mod datagen;
pub mod garage;
pub mod harness;
pub mod invariants;
pub mod nemesis;
pub mod oracle;
pub mod probes;
pub mod procs;
pub mod prometheus;
pub mod report;
pub mod s3;
pub mod schedule;
pub mod selftest;
pub mod topology;
pub mod workload;
