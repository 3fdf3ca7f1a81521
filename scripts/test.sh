#!/usr/bin/env bash
# test.sh: the project's test command (README, CI). Installs what the tests
# talk to (scripts/setup-test-deps.sh), then checks formatting, lints (also
# for the portable fallback of src/sys) and runs every test.
# Prerequisites: cargo; root or sudo for the first install of test peers.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-test-deps.sh
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo clippy --all-targets --quiet --features portable -- -D warnings
cargo test
