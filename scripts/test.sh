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

# Every program a test or script runs, with the Debian package that provides it (audited from
# every Command::new, run(), exec_ok() and spawn() under tests/, and the scripts they call).
say "tools the tests run"
ensure_packages iproute2:ip iproute2:bridge iputils-ping:ping procps:sysctl \
    tcpdump:tcpdump tshark:tshark python3:python3 coreutils:chown util-linux:setpriv \
    frr:/usr/lib/frr/zebra frr:/usr/lib/frr/pimd frr:vtysh \
    man-db:man systemd:systemd-analyze chromium:chromium
ensure_python_module prometheus_client prometheus-client python3-prometheus-client
ensure_rust
kernel_features

# Tests that need a kernel feature this kernel lacks append one line each here (not run, and
# why); the summary at the end lists them.
TUNMCAST_NOT_RUN=$(mktemp "${TMPDIR:-/tmp}/tunmcast-not-run.XXXXXX")
export TUNMCAST_NOT_RUN
chmod 666 "$TUNMCAST_NOT_RUN"
trap 'rm -f "$TUNMCAST_NOT_RUN"' EXIT

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
    export "$runner_var"="sudo --preserve-env=CI,RUST_BACKTRACE,TUNMCAST_BIN_DIR,TUNMCAST_NOT_RUN"
    echo "(test executables run through sudo: $runner_var)"
fi

say "cargo test --workspace${CI:+ (CI=$CI)}"
status=0
cargo test --workspace --no-fail-fast || status=$?

if [[ -s $TUNMCAST_NOT_RUN ]]; then
    say "not run: $(sort -u "$TUNMCAST_NOT_RUN" | wc -l) tests need kernel features this kernel lacks"
    sort -u "$TUNMCAST_NOT_RUN" | sed 's/^/  /'
else
    say "not run: none, every test ran"
fi
[[ $status -eq 0 ]] || die "cargo test failed (exit status $status)"
say "all checks passed"
