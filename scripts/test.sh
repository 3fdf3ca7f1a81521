#!/usr/bin/env bash
# test.sh: the project's test command (README, CI). Installs what the tests
# talk to (scripts/setup-test-deps.sh), then checks formatting, lints and
# runs every test, for the Linux build and for the portable fallback of
# src/net/sys (whose tests expect the reduced behaviour it reports).
# Prerequisites: cargo; root or sudo for the first install of test peers.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-test-deps.sh
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo clippy --all-targets --quiet --features portable -- -D warnings
cargo test
cargo test --features portable
