# Skein: `make demo` starts a local two-cluster federation; `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: deps build release demo test test-rust lint bench conformance clean

deps:
	@./scripts/install-deps.sh

build:
	$(CARGO) build -p skein-node --bin skein

release:
	$(CARGO) build --release -p skein-node --bin skein

demo: deps release
	@./scripts/demo.sh

# Lint first (cheap), then every test of every crate, end-to-end included.
test: deps lint build test-rust

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-rust:
	$(CARGO) test --workspace --no-fail-fast

bench: deps release
	SKEIN_BIN=$(CURDIR)/target/release/skein $(CARGO) run --release -p skein-e2e --bin bench_querier_overhead

clean:
	$(CARGO) clean
