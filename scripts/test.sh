#!/usr/bin/env bash
# Everything CI checks, on a fresh Debian or on a dev box: installs what is
# missing (once), then cargo fmt --check, clippy -D warnings, builds every
# binary, and runs the whole test suite. Exits non-zero on any failure.
#
# The integration tests need root (network namespaces, TUN devices). Run as
# root, or as a user with sudo: building happens as you, the test executables
# run through sudo. Set CI=true to make missing privileges a failure instead
# of a skip (.ci/run does).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

ensure_packages iproute2:ip tcpdump:tcpdump tshark:tshark frr:/usr/lib/frr/pimd man-db:man \
    systemd:systemd-analyze
ensure_python_module prometheus_client prometheus-client python3-prometheus-client
ensure_rust

say "cargo fmt --check"
cargo fmt --all --check

say "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

say "membership as a library: no_std build, documentation without warnings"
scripts/check-no-std.sh

say "cargo build --workspace --bins"
cargo build --workspace --bins
cargo build -p membership --examples

if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || die "the integration tests need root: run as root or install sudo"
    host=$(rustc -vV | sed -n 's/^host: //p')
    runner_var=CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$host")_RUNNER
    export "$runner_var"="sudo --preserve-env=CI,RUST_BACKTRACE,TUNMCAST_BIN_DIR"
    echo "(test executables run through sudo: $runner_var)"
fi

say "cargo test --workspace${CI:+ (CI=$CI)}"
cargo test --workspace --no-fail-fast

say "all checks passed"
