#!/usr/bin/env bash
# Builds the release binary and from it the .deb (cargo-deb) and the .rpm (cargo-generate-rpm),
# then prints the paths of the two packages. Contents and maintainer scripts: packaging/.
#
#   scripts/package.sh [--binary FILE] [--out DIR] [--release N] [--fast] [--tools-only]
#
#   --binary FILE  package FILE instead of building target/release/rampart (tests/packaging.rs
#                  packages the binary `cargo test` built, to avoid a second, release build)
#   --out DIR      where the packages go (default: TARGET_DIR/package)
#   --release N    package release: Debian revision and RPM release (default 1)
#   --fast         light compression: larger packages, built in seconds instead of ~50 s
#   --tools-only   only install the pinned cargo-deb and cargo-generate-rpm when absent
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1

binary="" out="" release=1 fast=0 tools_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$(realpath "$2"); shift 2 ;;
    --out) out=$2; shift 2 ;;
    --release) release=$2; shift 2 ;;
    --fast) fast=1; shift ;;
    --tools-only) tools_only=1; shift ;;
    *) echo "usage: $0 [--binary FILE] [--out DIR] [--release N] [--fast] [--tools-only]" >&2; exit 2 ;;
  esac
done

scripts/deps.sh

# Pinned versions: their options and output are what packaging/ and the test rely on.
install_tool() { # SUBCOMMAND CRATE VERSION
  if [ "$(cargo "$1" --version 2>/dev/null)" != "$2 $3" ]; then
    echo "installing $2 $3 (cargo install, a few minutes)" >&2
    # A set CARGO_TARGET_DIR would mix the tool's build into the project's target dir.
    env -u CARGO_TARGET_DIR cargo install --locked --version "$3" "$2"
  fi
}
install_tool deb cargo-deb "$CARGO_DEB_VERSION"
install_tool generate-rpm cargo-generate-rpm "$CARGO_GENERATE_RPM_VERSION"
[ "$tools_only" -eq 0 ] || exit 0

target=$(cargo metadata --format-version 1 --no-deps | sed -E 's/.*"target_directory":"([^"]*)".*/\1/')
if [ -z "$binary" ]; then
  cargo build --release --locked
  binary=$target/release/rampart
fi
out=${out:-$target/package}
mkdir -p "$out"
out=$(realpath "$out")
pkgid=$(cargo pkgid)
version=${pkgid##*[#@]}

# Both tools read target/release/rampart from the target dir they are given: stage the binary
# there, without debug info (it stays in the build's own binary; function names remain).
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/release"
strip --strip-debug -o "$stage/release/rampart" "$binary"

deb=$out/rampart_${version}-${release}_$(dpkg --print-architecture).deb
rpm=$out/rampart-${version}-${release}.$(uname -m).rpm
deb_args=(--no-build --no-strip --deb-revision "$release" --output "$deb")
rpm_args=(--target-dir "$stage" --auto-req builtin --set-metadata "release = \"$release\"" --output "$rpm")
if [ "$fast" -eq 1 ]; then
  deb_args+=(--fast)
  rpm_args+=(--payload-compress gzip)
fi
CARGO_TARGET_DIR=$stage cargo deb "${deb_args[@]}" >/dev/null
cargo generate-rpm "${rpm_args[@]}"
echo "$deb"
echo "$rpm"
