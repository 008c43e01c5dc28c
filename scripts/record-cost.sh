#!/usr/bin/env bash
# What --record and --replay-seconds cost, side by side in one run (docs/benchmarks.md,
# "Recording"): `kumo demo --headless` at SIZE and KBPS for SECS, RUNS times each way,
# interleaved. For each run: capture→decoded p50/p99, the longest freeze, the bitrate
# received, and the CPU the "kumo-record" thread used (utime+stime from /proc, read just
# before the session ends) as a share of one core.
# Usage: scripts/record-cost.sh   (after cargo build --release --locked)
# Environment: SIZE (1920x1080), FPS (60), KBPS (20000), SECS (20), RUNS (2),
#              KUMO (target/release/kumo), OUT (a temporary folder).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-1920x1080} FPS=${FPS:-60} KBPS=${KBPS:-20000} SECS=${SECS:-20} RUNS=${RUNS:-2}
KUMO=${KUMO:-target/release/kumo}
OUT=${OUT:-$(mktemp -d)}
W=${SIZE%x*} H=${SIZE#*x}
TICK=$(getconf CLK_TCK)

# The kumo-record thread's CPU seconds in process $1 (0 when it has none).
record_cpu() {
  local pid=$1 total=0
  for t in /proc/"$pid"/task/*; do
    if [ "$(cat "$t/comm" 2>/dev/null)" = "kumo-record" ]; then
      # Fields 14 and 15 of stat (after the command in parentheses).
      total=$(awk -v tick="$TICK" '{ sub(/^.*\) /, ""); print ($12 + $13) / tick }' "$t/stat")
    fi
  done
  echo "$total"
}

run() {
  local name=$1 i=$2
  shift 2
  local dir="$OUT/$name-$i"
  mkdir -p "$dir"
  "$KUMO" demo --headless --width "$W" --height "$H" --fps "$FPS" --bitrate-kbps "$KBPS" \
    --duration "$SECS" --stats-json "$dir/stats.json" "$@" >/dev/null 2>"$dir/log" &
  local pid=$! cpu=0
  sleep "$((SECS - 1))"
  cpu=$(record_cpu "$pid")
  wait "$pid"
  python3 - "$dir/stats.json" "$name" "$cpu" "$SECS" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
name, cpu, secs = sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
c = s["capture_to_decoded_ms"]
print(f"| {name} | {c['p50']:.1f} | {c['p99']:.1f} | {s['longest_freeze_ms']:.0f} | "
      f"{s['bitrate_kbps']:.0f} | {s['idr_requests']} | {100 * cpu / (secs - 1):.2f} % |")
PY
}

echo "kumo demo --headless ${W}x${H}@${FPS}, ${KBPS} kbit/s, ${SECS} s; files in $OUT"
echo "| run | capture→decoded p50 ms | p99 ms | longest freeze ms | received kbit/s | IDR requests (repairs) | kumo-record CPU (one core) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for i in $(seq 1 "$RUNS"); do
  run "plain" "$i"
  run "--record" "$i" --record "$OUT/rec-$i.mkv"
  run "--replay-seconds 30" "$i" --replay-seconds 30
  run "--replay-seconds 6" "$i" --replay-seconds 6
done
