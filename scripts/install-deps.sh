#!/usr/bin/env bash
# Install the Debian 12 packages kumo needs.
# Usage: scripts/install-deps.sh run|test
set -euo pipefail

run_pkgs=(pkg-config libasound2-dev libudev-dev cmake nasm build-essential)
test_pkgs=(xvfb mesa-vulkan-drivers imagemagick xauth)

case "${1:-}" in
  run) pkgs=("${run_pkgs[@]}") ;;
  test) pkgs=("${run_pkgs[@]}" "${test_pkgs[@]}") ;;
  *)
    echo "usage: $0 run|test" >&2
    exit 2
    ;;
esac

missing=()
for pkg in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "sudo was not found and you are not root: install these packages by hand: ${missing[*]}" >&2
      exit 1
    fi
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo was not found: install Rust 1.95 with rustup (https://rustup.rs) and run this again." >&2
  exit 1
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installed ${missing[*]}"
else
  echo "install-deps: all $1 packages were already present"
fi
