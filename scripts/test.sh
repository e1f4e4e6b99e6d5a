#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit and integration tests (the integration
# tests start the real binary against real upstream servers on ephemeral ports).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/package.sh --tools-only   # cargo-deb, cargo-generate-rpm for tests/packaging.rs
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --all-targets
