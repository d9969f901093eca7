#!/usr/bin/env bash
# CI check for the membership crate as a library: it builds without std (no_std + alloc),
# and its documentation builds without a warning (missing docs, broken intra-doc links).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build -p membership --no-default-features
RUSTDOCFLAGS="-D warnings" cargo doc -p membership --no-deps
