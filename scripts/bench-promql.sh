#!/usr/bin/env bash
# PromQL benchmark: skein-promql's engine alone (in process, over an in-memory
# copy of the data) vs Prometheus 2.42's own execution time, and Skein's
# querier -> sidecar -> Prometheus vs Prometheus directly, on 10,000 series x
# 24 h at 15 s. Release builds only. Environment: BENCH_SERIES, BENCH_HOURS,
# BENCH_ITERATIONS, BENCH_QUERY_HOURS, BENCH_STEP_SECONDS (see
# tests/src/bin/bench_promql.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p skein-node --bin skein
cargo build --release -p skein-e2e --bin bench_promql
SKEIN_BIN="$PWD/target/release/skein" exec target/release/bench_promql
