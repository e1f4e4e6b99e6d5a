#!/usr/bin/env bash
# Builds Rampart (release) and runs it on the shipped default configuration, conf/rampart.yaml:
# http://127.0.0.1:8080/ answers, the admin service is on http://127.0.0.1:9090/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --locked
exec target/release/rampart run -c conf/rampart.yaml "$@"
