#!/usr/bin/env bash
# Installs what building and testing Rampart needs on Debian/Ubuntu, skipping what is there:
# cmake (zlib-ng, built by pingora-core), pkg-config and libssl-dev (openssl-sys), curl,
# chromium (tests/dashboard.rs renders /dashboard in headless Chromium); for the packages
# (scripts/package.sh, tests/packaging.rs): dpkg-shlibdeps (dpkg-dev), rpm; to run the .deb
# under a real systemd (tests/packaging/systemd.rs): debootstrap, systemd-nspawn; logrotate
# (tests/observability.rs rotates the access log with the packages' configuration).
set -euo pipefail
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)   # verifies the shipped unit
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v chromium >/dev/null 2>&1 || need+=(chromium)   # renders /dashboard in tests
command -v dpkg-shlibdeps >/dev/null 2>&1 || need+=(dpkg-dev)   # cargo-deb's $auto depends
command -v rpm >/dev/null 2>&1 || need+=(rpm)                    # inspects the built .rpm
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)    # a Debian root for systemd,
command -v systemd-nspawn >/dev/null 2>&1 || need+=(systemd-container)   # booted in a container
dpkg -s logrotate >/dev/null 2>&1 || need+=(logrotate)   # the shipped rotation, tested
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
