#!/usr/bin/env bash
# The window's present path, measured the way a person sees it: kumo in a real window under
# Xvfb (and under weston's headless Wayland compositor), each presenter in turn, side by side.
#
#   scripts/present-bench.sh [SECONDS] [KUMO]     (default 15 s, target/release/kumo)
#
# Cases (each run once with --renderer gpu and once with --renderer cpu):
#   demo-720p-overlay   `kumo demo --overlay`, 720p60 (what `make run` shows)
#   demo-1080p          `kumo demo --width 1920 --height 1080`, overlay hidden
#   kiosk-1080p-window  `kumo kiosk` on a 1920x1080 screen showing the 720p60 stream (scaled)
#   wayland-720p        `kumo demo --overlay` under weston's headless backend (as kiosks under cage)
#   client-cpu-720p     `kumo host` and `kumo connect --overlay` as separate processes: the
#                       client's CPU with every thread counted (pidstat -t: lavapipe's included)
# PATHS="gpu cpu" (the default) chooses the presenters; PATHS=default runs a kumo without
# --renderer (an older build, for a before/after table).
# Prints one line per run: presented fps, pacing drops, capture→decoded and capture→present
# p50, render p50, and the client's CPU where measured. Needs xvfb-run, weston, sysstat and a
# Vulkan driver (Mesa's lavapipe on a machine without a GPU). Every run is bounded in time.
set -euo pipefail

seconds=${1:-15}
kumo=$(realpath "${2:-target/release/kumo}")
out=$(mktemp -d)
chmod 700 "$out"
export XDG_RUNTIME_DIR=$out
paths=${PATHS:-gpu cpu}
# The flag that picks presenter $1 (none for `default`).
flag() { [ "$1" = default ] || echo "--renderer $1"; }
echo "present path: $seconds s a run; files in $out"
printf '%-20s %-4s %9s %9s %13s %13s %9s %9s\n' case path "fps" "pacing" "cap→dec p50" "cap→pres p50" "render" "client"
printf '%-20s %-4s %9s %9s %13s %13s %9s %9s\n' "" "" presented "drops %" "ms" "ms" "p50 ms" "CPU %"

# One line from a stats JSON file (and the client's CPU, when given).
report() {
  local name=$1 path=$2 json=$3 cpu=${4:--}
  if [ ! -s "$json" ]; then
    printf '%-20s %-4s %s\n' "$name" "$path" "no figures (see $out)"
    return
  fi
  python3 - "$name" "$path" "$json" "$cpu" <<'EOF'
import json, sys
name, path, file, cpu = sys.argv[1:]
s = json.load(open(file))
shown = s["frames_presented"] + s["frames_dropped_pacing"]
drops = 100.0 * s["frames_dropped_pacing"] / shown if shown else 0.0
print(f'{name:<20} {path:<4} {s["presented_fps"]:9.1f} {drops:9.1f} {s["capture_to_decoded_ms"]["p50"]:13.1f} '
      f'{s["capture_to_present_ms"]["p50"]:13.1f} {s["render_ms"]["p50"]:9.1f} {cpu:>9}')
EOF
}

# Runs a command under a fresh Xvfb screen of $1, bounded.
xvfb() {
  local screen=$1
  shift
  timeout $((seconds + 40)) xvfb-run -a -s "-screen 0 ${screen}x24" "$@" >>"$out/log" 2>&1 || true
}

for path in $paths; do
  xvfb 1920x1080 "$kumo" demo $(flag "$path") --overlay --no-audio --duration "$seconds" \
    --stats-json "$out/demo720-$path.json"
  report demo-720p-overlay "$path" "$out/demo720-$path.json"
done

for path in $paths; do
  xvfb 1920x1080 "$kumo" demo $(flag "$path") --no-audio --width 1920 --height 1080 --duration "$seconds" \
    --stats-json "$out/demo1080-$path.json"
  report demo-1080p "$path" "$out/demo1080-$path.json"
done

for path in $paths; do
  xvfb 1920x1080 "$kumo" kiosk $(flag "$path") --no-audio --duration "$seconds" \
    --stats-json "$out/kiosk-$path.json"
  report kiosk-1080p-window "$path" "$out/kiosk-$path.json"
done

if command -v weston >/dev/null; then
  for path in $paths; do
    socket=kumo-wayland-$$
    timeout $((seconds + 40)) weston --backend=headless-backend.so --socket="$socket" --width=1920 --height=1080 \
      --idle-time=0 >>"$out/weston.log" 2>&1 &
    weston_pid=$!
    for _ in $(seq 50); do [ -S "$XDG_RUNTIME_DIR/$socket" ] && break; sleep 0.1; done
    env -u DISPLAY WAYLAND_DISPLAY="$socket" timeout $((seconds + 30)) "$kumo" demo $(flag "$path") --overlay \
      --no-audio --duration "$seconds" --stats-json "$out/wayland-$path.json" >>"$out/log" 2>&1 || true
    kill "$weston_pid" 2>/dev/null || true
    wait "$weston_pid" 2>/dev/null || true
    report wayland-720p "$path" "$out/wayland-$path.json"
  done
else
  echo "wayland-720p: skipped (no weston: apt-get install weston)"
fi

# The client's CPU: host and client as separate processes, the client's threads summed by
# pidstat over the middle of the run.
port=$((20000 + RANDOM % 20000))
"$kumo" host --listen "127.0.0.1:$port" --allow-unpaired --ephemeral --no-advertise </dev/null \
  >"$out/host.out" 2>"$out/host.log" &
host_pid=$!
trap 'kill $host_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ "$(wc -l <"$out/host.out")" -ge 2 ] && break; sleep 0.1; done
fingerprint=$(sed -n 2p "$out/host.out" | awk '{print $NF}')
for path in $paths; do
  cat >"$out/client.sh" <<EOF
#!/usr/bin/env bash
"$kumo" connect 127.0.0.1:$port --host-fingerprint $fingerprint $(flag "$path") --overlay --no-audio \
  --duration $seconds --stats-json "$out/client-$path.json" &
pid=\$!
sleep 3
# Every thread of the client, each second, for most of the run: the sum of the threads' %CPU.
LC_ALL=C pidstat -t -u -p \$pid 1 $((seconds - 5)) >"$out/pidstat-$path.txt" 2>&1 || true
wait \$pid
EOF
  chmod +x "$out/client.sh"
  xvfb 1920x1080 "$out/client.sh"
  cpu=$(awk '$1 == "Average:" && $3 == "-" && $4 ~ /^[0-9]+$/ { sum += $9 } END { printf "%.0f", sum }' \
    "$out/pidstat-$path.txt" 2>/dev/null || echo "-")
  report client-cpu-720p "$path" "$out/client-$path.json" "$cpu"
done
kill "$host_pid" 2>/dev/null || true
wait "$host_pid" 2>/dev/null || true
