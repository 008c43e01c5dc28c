#!/usr/bin/env bash
# A real kernel queue between a kumo host and a client: two network namespaces joined by a veth
# pair, each end shaped by Linux's token bucket filter (tbf) to RATE with a queue of QUEUE_MS,
# optionally dropping LOSS % of packets at random each way (nftables' numgen). The host streams
# its scene to a headless client for SECS seconds; the client's --stats-json figures are printed.
#
# Usage (as root; needs iproute2 and, for LOSS, nftables: sudo apt-get install nftables):
#   scripts/bottleneck.sh RATE [SECS] [KUMO] [-- extra `kumo connect` flags]
#   RATE      e.g. 3mbit
#   SECS      default 25
#   KUMO      default target/release/kumo
# Environment: QUEUE_MS (default 100), LOSS (percent, default 0), SIZE (default 1280x720),
# FPS (60), KBPS (10000); CHANGE_AT (seconds after the client starts) and CHANGE_TO (a rate)
# change both queues' rate once during the run (e.g. CHANGE_AT=5 CHANGE_TO=5mbit); BACK_AT
# (seconds after the client starts) sets it back to RATE, and the script then says how long
# the host took to stream the size asked for again.
#
# Example, the ladder on and off through 3 Mbit/s:
#   scripts/bottleneck.sh 3mbit 25 target/release/kumo
#   scripts/bottleneck.sh 3mbit 25 target/release/kumo -- --adapt-size=false
set -euo pipefail

rate=${1:?usage: $0 RATE [SECS] [KUMO] [-- flags]}
secs=${2:-25}
kumo=$(realpath "${3:-target/release/kumo}")
shift $(($# < 3 ? $# : 3))
[ "${1:-}" = "--" ] && shift
extra=("$@")
queue_ms=${QUEUE_MS:-100}
loss=${LOSS:-0}
size=${SIZE:-1280x720}
fps=${FPS:-60}
kbps=${KBPS:-10000}

if [ "$(id -u)" != 0 ]; then
  echo "bottleneck.sh: network namespaces need root; run it with sudo." >&2
  exit 1
fi
tag=kb$$
a=$tag-a
b=$tag-b
out=$(mktemp -d /tmp/kumo-bottleneck.XXXXXX)
cleanup() {
  ip netns pids "$a" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns pids "$b" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns del "$a" 2>/dev/null || true
  ip netns del "$b" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$a"
ip netns add "$b"
ip link add "$tag-va" netns "$a" type veth peer name "$tag-vb" netns "$b"
ip -n "$a" addr add 10.77.0.1/24 dev "$tag-va"
ip -n "$b" addr add 10.77.0.2/24 dev "$tag-vb"
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set "$tag-va" up
ip -n "$b" link set "$tag-vb" up
# The queue: tbf's limit in bytes for QUEUE_MS at RATE (a router's buffer), each direction.
r=${rate%bit}; bits=$(numfmt --from=si "${r^^}")
limit=$((bits / 8 * queue_ms / 1000))
[ "$limit" -lt 16000 ] && limit=16000
ip netns exec "$a" tc qdisc add dev "$tag-va" root tbf rate "$rate" burst 16kb limit "$limit"
ip netns exec "$b" tc qdisc add dev "$tag-vb" root tbf rate "$rate" burst 16kb limit "$limit"
if [ "$loss" != 0 ]; then
  for ns in "$a" "$b"; do
    ip netns exec "$ns" nft add table inet kumo_loss
    ip netns exec "$ns" nft add chain inet kumo_loss out '{ type filter hook output priority 0; }'
    ip netns exec "$ns" nft add rule inet kumo_loss out meta l4proto udp numgen random mod 100 '<' "$loss" drop
  done
fi

# The host's log with times (RUST_LOG's format), to place its picture changes.
ip netns exec "$a" env RUST_LOG=kumo=info "$kumo" host --listen 10.77.0.1:4433 --allow-unpaired --ephemeral \
  --no-advertise >"$out/host.log" 2>&1 &
sleep 1
changer=""
if [ -n "${CHANGE_AT:-}" ]; then
  t=${CHANGE_TO%bit}; to_bits=$(numfmt --from=si "${t^^}")
  to_limit=$((to_bits / 8 * queue_ms / 1000))
  [ "$to_limit" -lt 16000 ] && to_limit=16000
  (
    sleep "$CHANGE_AT"
    ip netns exec "$a" tc qdisc change dev "$tag-va" root tbf rate "$CHANGE_TO" burst 16kb limit "$to_limit"
    ip netns exec "$b" tc qdisc change dev "$tag-vb" root tbf rate "$CHANGE_TO" burst 16kb limit "$to_limit"
    if [ -n "${BACK_AT:-}" ]; then
      sleep $((BACK_AT - CHANGE_AT))
      ip netns exec "$a" tc qdisc change dev "$tag-va" root tbf rate "$rate" burst 16kb limit "$limit"
      ip netns exec "$b" tc qdisc change dev "$tag-vb" root tbf rate "$rate" burst 16kb limit "$limit"
      date -u +%Y-%m-%dT%H:%M:%S.%NZ >"$out/back_at"
    fi
  ) &
  changer=$!
fi
ip netns exec "$b" "$kumo" connect 10.77.0.1:4433 --insecure-skip-verify --headless --duration "$secs" \
  --width "${size%x*}" --height "${size#*x}" --fps "$fps" --bitrate-kbps "$kbps" \
  --stats-json "$out/stats.json" "${extra[@]}" >"$out/client.log" 2>&1 || true

[ -n "$changer" ] && wait "$changer"
echo "bottleneck: $rate${CHANGE_AT:+, $CHANGE_TO from ${CHANGE_AT} s}${BACK_AT:+, $rate again from $BACK_AT s}, queue ${queue_ms} ms, loss ${loss} %, ${size}@${fps} asked at ${kbps} kbit/s, ${secs} s ${extra[*]}"
grep -E "now: " "$out/host.log" | sed -E 's/^[^ ]*T([0-9:.]{12})[0-9]*Z +[A-Z]+ +[^ ]+ /  host \1 /' | head -20 || true
if [ -f "$out/back_at" ]; then
  python3 - "$out/back_at" "$out/host.log" <<'EOF'
import datetime, re, sys
def when(s):
    return datetime.datetime.fromisoformat(s[:26])
back = when(open(sys.argv[1]).read().strip())
top = None
for line in open(sys.argv[2]):
    m = re.match(r"(\S+Z).*streaming (\d+)x(\d+) at (\d+) fps now: (.*)", line)
    if m and when(m.group(1)) >= back:
        top = (when(m.group(1)) - back).total_seconds(), m.group(5)
if top and "asked" in top[1]:
    print(f"  back at the size asked {top[0]:.1f} s after the path returned")
else:
    print("  not back at the size asked by the end of the run")
EOF
fi
python3 - "$out/stats.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
c = s["capture_to_decoded_ms"]
print(f"  capture→decoded p50 {c['p50']:.1f} ms, p95 {c['p95']:.1f}, p99 {c['p99']:.1f}; longest freeze {s['longest_freeze_ms']:.0f} ms")
print(f"  {s['frames_decoded']} frames decoded ({s['decoded_fps']:.1f} fps), {s['frames_lost']} lost, {s['marker_mismatches']} marker mismatches; "
      f"{s['bitrate_kbps']:.0f} kbit/s received, target {s['bitrate_target_kbps']} ({s['bitrate_decreases']} down, {s['bitrate_increases']} up)")
sizes = ", ".join(f"{t['width']}x{t['height']} {t['secs']:.1f} s" for t in s.get("time_at_size", []))
print(f"  picture: {s.get('encode_size_changes', 0)} size changes; {sizes}")
EOF
echo "  logs and stats.json in $out"
