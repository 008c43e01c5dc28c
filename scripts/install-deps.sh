#!/usr/bin/env bash
# Install the Debian 12 packages kumo needs.
# Usage: scripts/install-deps.sh run|test
set -euo pipefail

# Build: compilers and the C libraries openh264, ALSA, udev and PulseAudio (the real host's
# sound capture) need.
build_pkgs=(pkg-config libasound2-dev libudev-dev libpulse-dev cmake nasm build-essential)
# The window: the Vulkan loader and Mesa's drivers (Intel, AMD and lavapipe, the software
# fallback), and the X11/Wayland libraries winit loads at run time.
window_pkgs=(libvulkan1 mesa-vulkan-drivers libx11-6 libx11-xcb1 libxcursor1 libxrandr2 libxi6
  libxkbcommon0 libxkbcommon-x11-0 libwayland-client0 libwayland-cursor0)
# A virtual display and screenshots: for the window tests, and for `make run` on a machine
# with no display of its own.
virtual_display_pkgs=(xvfb xauth imagemagick)
run_pkgs=("${build_pkgs[@]}" "${window_pkgs[@]}" "${virtual_display_pkgs[@]}")
# Typing into the window in the input test; a clocked sound server (PulseAudio's null sink)
# and ALSA's pulse plugin for the audio test, which plays through ALSA into a file; `ip`
# for the discovery test's private network (multicast on its own loopback); real programs for
# the real host's tests (a terminal, xev to see where a click lands, and a game: Chromium B.S.U.);
# libfaketime for the soak script's host whose clock runs fast (scripts/soak.sh FAKETIME=);
# tesseract to read the overlay's text back from a screenshot (the window test); weston (a
# headless Wayland compositor) and sysstat (pidstat) for scripts/present-bench.sh; curl and
# bzip2 for the packaged fetch-openh264 script's test; ffmpeg (ffprobe) to read kumo's
# recordings back with tools kumo did not write (tests/record.rs); xclip, another program's
# clipboard for the shared clipboard's test.
test_pkgs=(xdotool pulseaudio pulseaudio-utils libasound2-plugins iproute2 xterm x11-utils chromium-bsu faketime
  tesseract-ocr tesseract-ocr-eng weston sysstat curl bzip2 ffmpeg xclip)

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
