#!/usr/bin/env bash
# `make fuzz`: coverage-guided fuzzing of every skein-fuzz target with cargo-fuzz on stable
# Rust (--sanitizer none: libFuzzer with sancov instrumentation, no -Z flags), one target
# at a time, each for FUZZ_SECONDS. Inputs that grow coverage go to
# fuzz/libfuzzer/work/corpus/<target> (not committed); crashes, hangs (-timeout) and
# inputs over the memory limits are saved in fuzz/libfuzzer/artifacts/<target>/ and listed
# at the end, and the script then exits non-zero.
#
#   FUZZ_SECONDS=120      seconds per target
#   FUZZ_TARGETS="a b"    only these targets (default: all, see `fuzz-seeds --list`)
#   FUZZ_RSS_MB=2048      libFuzzer's -rss_limit_mb
#   FUZZ_TIMEOUT=10       seconds before one input counts as a hang
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${FUZZ_SECONDS:-120}
RSS_MB=${FUZZ_RSS_MB:-2048}
TIMEOUT=${FUZZ_TIMEOUT:-10}
DIR=fuzz/libfuzzer
WORK=$DIR/work

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "installing cargo-fuzz (one-time build)"
    cargo install cargo-fuzz --locked --quiet
fi
if ! command -v c++ >/dev/null 2>&1; then
    echo "cargo-fuzz needs a C++ compiler for libFuzzer: apt-get install g++" >&2
    exit 1
fi

# Target list and each one's -max_len, then the generated seeds (real blocks, real answers,
# PromQL from the shared test data when it is there).
cargo build -q -p skein-fuzz --bin fuzz-seeds
SEEDS_BIN=target/debug/fuzz-seeds
mapfile -t LIST < <("$SEEDS_BIN" --list)
rm -rf "$WORK/seeds"
"$SEEDS_BIN" "$WORK/seeds"

echo "building the instrumented targets (cargo fuzz build --sanitizer none)"
cargo fuzz build --fuzz-dir "$DIR" --sanitizer none --debug-assertions

mkdir -p "$WORK"
touch "$WORK/.run-started"
wanted=" ${FUZZ_TARGETS:-} "
failed=()
report=()
for line in "${LIST[@]}"; do
    read -r name max_len _ <<<"$line"
    if [ -n "${FUZZ_TARGETS:-}" ] && [[ "$wanted" != *" $name "* ]]; then
        continue
    fi
    mkdir -p "$WORK/corpus/$name" "$WORK/logs" "$DIR/artifacts/$name" "fuzz/corpus/$name" "fuzz/regressions/$name"
    log="$WORK/logs/$name.log"
    echo "== $name: ${SECONDS_EACH}s, -max_len=$max_len"
    set +e
    cargo fuzz run --fuzz-dir "$DIR" --sanitizer none --debug-assertions "$name" \
        "$WORK/corpus/$name" "fuzz/corpus/$name" "fuzz/regressions/$name" "$WORK/seeds/$name" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb="$RSS_MB" -timeout="$TIMEOUT" \
        -max_len="$max_len" -print_final_stats=1 \
        -artifact_prefix="$DIR/artifacts/$name/" >"$log" 2>&1
    rc=$?
    set -e
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    corpus=$(find "$WORK/corpus/$name" -type f | wc -l)
    report+=("$(printf '%-20s %12s executions  cov %6s  %5s new corpus inputs  exit %s' \
        "$name" "${runs:-?}" "${cov:-?}" "$corpus" "$rc")")
    if [ "$rc" -ne 0 ]; then
        failed+=("$name (exit $rc, log $log)")
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -5 || true
    fi
done

echo
echo "fuzz report (${SECONDS_EACH}s per target)"
printf '%s\n' "${report[@]}"
artifacts=$(find "$DIR/artifacts" -type f -newer "$WORK/.run-started" 2>/dev/null | sort)
if [ -n "$artifacts" ]; then
    echo
    echo "saved failing inputs (replay one with: cargo fuzz run --fuzz-dir $DIR --sanitizer none <target> <file>;"
    echo "keep it as a regression in fuzz/regressions/<target>/ once fixed):"
    echo "$artifacts"
fi
if [ ${#failed[@]} -gt 0 ]; then
    echo
    echo "failed targets:"
    printf '  %s\n' "${failed[@]}"
    exit 1
fi
