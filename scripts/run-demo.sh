#!/usr/bin/env bash
# `make run`: kumo demo in a window. With no display (a server, a container, CI) the window
# opens on a virtual X display instead, and a screenshot shows what it looked like.
# Usage: scripts/run-demo.sh DURATION_SECS STATS_JSON  (an empty DURATION runs until closed)
set -euo pipefail

duration=${1:-}
stats=${2:-stats.json}
args=(demo --overlay --stats-json "$stats")
if [ -n "$duration" ]; then
  args+=(--duration "$duration")
fi

cargo build --release --locked
kumo=target/release/kumo

if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
  exec "$kumo" "${args[@]}"
fi

if [ -z "$duration" ]; then
  echo "run-demo: no display and no DURATION: give one (make run DURATION=10) or use a desktop session" >&2
  exit 2
fi
shot=kumo-demo.png
echo "run-demo: no display (DISPLAY and WAYLAND_DISPLAY are unset): running the window on a virtual X display; a screenshot goes to $shot"
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -w "${XDG_RUNTIME_DIR}" ]; then
  XDG_RUNTIME_DIR=$(mktemp -d)
  chmod 700 "$XDG_RUNTIME_DIR"
  export XDG_RUNTIME_DIR
fi
half=$(awk -v d="$duration" 'BEGIN { s = d / 2; if (s < 1) s = 1; print s }')
KUMO="$kumo" SHOT="$shot" HALF="$half" xvfb-run -a -s "-screen 0 1920x1080x24" bash -c '
  "$KUMO" "$@" & pid=$!
  sleep "$HALF"
  import -window root -crop 1280x720+0+0 "$SHOT" || echo "run-demo: the screenshot failed" >&2
  wait $pid
' run-demo "${args[@]}"
echo "run-demo: screenshot of the window: $shot"
