# Skein: `make demo` starts a local two-cluster federation; `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: deps build release demo test test-rust lint k8s-check bench conformance chaos fuzz clean

deps:
	@./scripts/install-deps.sh

build:
	$(CARGO) build -p skein-node --bin skein

release:
	$(CARGO) build --release -p skein-node --bin skein

demo: deps release
	@./scripts/demo.sh

# Lint first (cheap), then every test of every crate (PromQL conformance,
# end to end against real Prometheus and Garage, the seeded chaos schedule),
# then the Kubernetes manifests.
test: deps lint build test-rust k8s-check

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-rust:
	$(CARGO) test --workspace --no-fail-fast

k8s-check: build
	./scripts/k8s-check.sh

# The whole PromQL conformance table (Prometheus's own test files), then the
# full differential run (>= 300 queries) against live Prometheus.
conformance: deps build
	$(CARGO) test -p skein-promql --test conformance -- --nocapture
	DIFFERENTIAL_FULL=1 $(CARGO) test -p skein-e2e --test differential -- --nocapture

# Ratios against Prometheus measured in the same run: the querier's overhead
# (querier -> sidecars -> Prometheus), the PromQL engine (10k series x 24h),
# and the store on shipped blocks (throughput, latency, memory per series).
bench: deps release
	SKEIN_BIN=$(CURDIR)/target/release/skein $(CARGO) run --release -p skein-e2e --bin bench_querier_overhead
	SKEIN_BIN=$(CURDIR)/target/release/skein $(CARGO) run --release -p skein-e2e --bin bench_promql
	SKEIN_BIN=$(CURDIR)/target/release/skein $(CARGO) run --release -p skein-e2e --bin bench_store

# A full fault-injection schedule (10 minutes) with its report in chaos-report/.
chaos: deps build
	$(CARGO) run -p skein-chaos -- run --duration 10m --out $(CURDIR)/chaos-report --skein $(CURDIR)/target/debug/skein

# Coverage-guided fuzzing on stable Rust (cargo-fuzz, --sanitizer none), FUZZ_SECONDS
# (default 120) per target, one target at a time; exits non-zero if any input crashed,
# hung or allocated past the limit. `make test` replays the corpus and mutates it briefly.
fuzz:
	./scripts/fuzz.sh

clean:
	$(CARGO) clean
