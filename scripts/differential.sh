#!/usr/bin/env bash
# Differential PromQL run against live Prometheus 2.42 (what `make conformance`
# runs after the promql conformance table). The full set (>= 300 queries);
# DIFFERENTIAL_SEED=<n> for other data and queries.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p skein-node --bin skein
DIFFERENTIAL_FULL=1 exec cargo test -p skein-e2e --test differential -- --nocapture
