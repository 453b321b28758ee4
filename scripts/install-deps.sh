#!/usr/bin/env bash
# Installs what Skein's demo and tests need and is missing. Idempotent and
# quick when everything is there. Run as root on Debian (CI does).
set -euo pipefail

need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v nft >/dev/null 2>&1 || need_apt+=(nftables)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)

if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # The Debian package may start a system Prometheus; Skein's tests and demo
    # start their own on other ports, so stop it to keep the machine quiet.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
        systemctl stop prometheus || true
    fi
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install the Rust toolchain (rustup) first" >&2
    exit 1
fi

# Garage: the real S3 server the storage tests run against (built once,
# about 7 minutes on 2 cores; kept in ~/.cargo/bin).
if ! command -v garage >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/garage" ]; then
    echo "installing garage (S3 server for the storage tests; one-time build)"
    cargo install garage --locked --quiet
fi
