#!/usr/bin/env bash
# Querier overhead benchmark: Skein (querier -> sidecar -> Prometheus) vs the
# Prometheus servers directly, on release builds. Same as `make bench`.
# Environment: BENCH_ITERATIONS (10), BENCH_SERIES (2000 per cluster), BENCH_HOURS (6).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
"$CARGO" build --release -p skein-node --bin skein
export SKEIN_BIN="$PWD/target/release/skein"
exec "$CARGO" run --release -p skein-e2e --bin bench_querier_overhead
