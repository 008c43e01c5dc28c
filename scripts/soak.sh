#!/usr/bin/env bash
# A soak anyone can run: a kumo host and a kumo client as separate processes on loopback (or
# through the impairment relay), sampled every few seconds for resident memory, descriptors,
# threads and CPU; at the end, each side's growth per hour after warm-up, with the stream's
# own figures (the client's --stats-json).
#
# Usage: scripts/soak.sh [MINUTES] [KUMO] [OUT]
#   MINUTES  how long the session runs (default 60)
#   KUMO     the kumo binary (default target/release/kumo; build it first)
#   OUT      folder for the samples, logs and stats (default target/soak)
# Settings come from the environment:
#   SIZE=1280x720  FPS=60  AUDIO=1 (0: --no-audio)  EVERY=5 (seconds between samples)
#   WARMUP=60 (seconds left out of the growth)  PORT=47533
#   LOSS=""        e.g. 1%: through the relay (--loss each way, DELAY=5ms)
#   WINDOW=0       1: the client in a window (needs DISPLAY, e.g. under xvfb-run)
#   FAKETIME=""    e.g. "+0 x1.0001": the host's clock 100 ppm fast (Debian's faketime)
#   PERIOD=60      seconds per line of the client's figures over time (stats.json.periods.jsonl,
#                  headless only); the first and last periods' A/V offset and sound buffer are
#                  printed
set -euo pipefail

minutes=${1:-60}
kumo=${2:-target/release/kumo}
out=${3:-target/soak}
size=${SIZE:-1280x720}
fps=${FPS:-60}
every=${EVERY:-5}
warmup=${WARMUP:-60}
port=${PORT:-47533}
loss=${LOSS:-}
delay=${DELAY:-5ms}

if [ ! -x "$kumo" ]; then
  echo "no kumo binary at $kumo: build it first (cargo build --release --locked)" >&2
  exit 1
fi
mkdir -p "$out"
width=${size%x*}
height=${size#*x}
seconds=$((minutes * 60))

host_cmd=("$kumo" host --listen "127.0.0.1:$port" --allow-unpaired --ephemeral --no-advertise)
if [ -n "${FAKETIME:-}" ]; then
  # libfaketime preloaded straight into the host (the `faketime` wrapper would be the
  # process sampled). Only its wall clock runs at that speed, which is the clock its
  # captures are stamped with: faking the monotonic clock too stalls the host, because Rust's
  # timed waits hand the kernel an absolute monotonic deadline that libfaketime does not
  # translate (the encoder's first wait never ended).
  libfaketime=$(dpkg -L libfaketime 2>/dev/null | grep -m1 'libfaketimeMT.so.1$' || true)
  if [ -z "$libfaketime" ]; then
    echo "FAKETIME needs Debian's faketime package (apt-get install faketime)" >&2
    exit 1
  fi
  host_cmd=(env LD_PRELOAD="$libfaketime" FAKETIME="$FAKETIME" FAKETIME_DONT_FAKE_MONOTONIC=1 "${host_cmd[@]}")
fi
RUST_LOG=warn "${host_cmd[@]}" </dev/null >"$out/host.out" 2>"$out/host.log" &
host_pid=$!
relay_pid=""
cleanup() {
  kill "$host_pid" ${relay_pid:+"$relay_pid"} ${client_pid:+"$client_pid"} 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do
  if [ "$(wc -l <"$out/host.out")" -ge 2 ]; then break; fi
  sleep 0.1
done
fingerprint=$(sed -n 2p "$out/host.out" | awk '{print $NF}')
target="127.0.0.1:$port"
if [ -n "$loss" ]; then
  rport=$((port + 1))
  RUST_LOG=warn "$kumo" relay --listen "127.0.0.1:$rport" --to "$target" --loss "$loss" --delay "$delay" \
    </dev/null >"$out/relay.log" 2>&1 &
  relay_pid=$!
  target="127.0.0.1:$rport"
fi
client_args=(connect "$target" --host-fingerprint "$fingerprint" --width "$width" --height "$height" --fps "$fps"
  --duration "$seconds" --stats-json "$out/stats.json")
# Figures per period come from the headless client (the window keeps its figures on screen).
if [ "${WINDOW:-0}" != 1 ]; then client_args+=(--headless --stats-every "${PERIOD:-60}"); fi
if [ "${AUDIO:-1}" != 1 ]; then client_args+=(--no-audio); fi
KUMO_SAMPLE_HEAP=1 RUST_LOG=warn "$kumo" "${client_args[@]}" </dev/null >"$out/client.out" 2>"$out/client.log" &
client_pid=$!

# One line per sample: seconds, then for the client and the host: RSS kB, descriptors,
# threads, CPU seconds so far.
ticks=$(getconf CLK_TCK)
sample() {
  local pid=$1
  if [ ! -r "/proc/$pid/status" ]; then
    echo "- - - -"
    return
  fi
  local rss fds threads cpu
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
  threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
  fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  cpu=$(awk -v t="$ticks" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$pid/stat")
  echo "$rss $fds $threads $cpu"
}
echo "# seconds client_rss_kb client_fds client_threads client_cpu_s host_rss_kb host_fds host_threads host_cpu_s" \
  >"$out/samples.txt"
# The client's memory map after the warm-up and at its last sample (smaps.first, smaps.last):
# where resident memory sits, and whether it grows inside mappings that are already there.
start=$SECONDS
while kill -0 "$client_pid" 2>/dev/null; do
  echo "$((SECONDS - start)) $(sample "$client_pid") $(sample "$host_pid")" >>"$out/samples.txt"
  if [ $((SECONDS - start)) -ge "$warmup" ]; then
    if [ ! -s "$out/smaps.first" ]; then cp "/proc/$client_pid/smaps" "$out/smaps.first" 2>/dev/null || true; fi
    cp "/proc/$client_pid/smaps" "$out/smaps.next" 2>/dev/null && mv "$out/smaps.next" "$out/smaps.last"
  fi
  sleep "$every"
done
wait "$client_pid" || echo "the client ended with an error: see $out/client.log" >&2

# Growth per hour after warm-up: a least-squares line through the samples (kB/h), and the
# first and last values, for each side.
awk -v warmup="$warmup" '
  /^#/ || $2 == "-" { next }
  $1 >= warmup {
    n++; t[n] = $1; c[n] = $2; h[n] = $6; cf[n] = $3; hf[n] = $7; ct[n] = $4; ht[n] = $8
  }
  function slope(v,   i, st, sv, stt, stv) {
    st = sv = stt = stv = 0
    for (i = 1; i <= n; i++) { st += t[i]; sv += v[i]; stt += t[i] * t[i]; stv += t[i] * v[i] }
    if (n < 2 || n * stt == st * st) return 0
    return (n * stv - st * sv) / (n * stt - st * st) * 3600
  }
  END {
    if (n < 2) { print "too few samples after the warm-up to say anything"; exit }
    printf "after %d s of warm-up, %d samples over %d s:\n", warmup, n, t[n] - t[1]
    printf "client  RSS %d → %d kB, growth %+.0f kB/h (%+.1f MB/day); descriptors %d → %d, threads %d → %d\n",
      c[1], c[n], slope(c), slope(c) * 24 / 1024, cf[1], cf[n], ct[1], ct[n]
    printf "host    RSS %d → %d kB, growth %+.0f kB/h (%+.1f MB/day); descriptors %d → %d, threads %d → %d\n",
      h[1], h[n], slope(h), slope(h) * 24 / 1024, hf[1], hf[n], ht[1], ht[n]
  }' "$out/samples.txt" | tee "$out/growth.txt"
grep -E "^(frames|dropped|longest freeze|audio|A/V)" "$out/client.out" || true
# Drift shows as a sound buffer or an A/V offset that moves between the first period and the
# last (a host clock running fast fills the buffer unless the client's playout follows it).
if [ -s "$out/stats.json.periods.jsonl" ] && command -v python3 >/dev/null; then
  python3 - "$out/stats.json.periods.jsonl" <<'PY' | tee -a "$out/growth.txt"
import json, sys
periods = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
for name, p in (("first", periods[0]), ("last", periods[-1])):
    print(f"{name} period ({p['duration_secs']:.0f} s): A/V offset p50 {p['av_offset_ms']['p50']:+.1f} p99 {p['av_offset_ms']['p99']:+.1f} ms; "
          f"sound buffer p50 {p['audio_buffer_ms']['p50']:.1f} ms; longest freeze {p['longest_freeze_ms']:.1f} ms; underruns {p['audio_underruns']}")
PY
fi
# What the client's allocators say (KUMO_SAMPLE_HEAP): kumo's live heap, and glibc's bytes in
# use (Rust's and the C libraries') and held (in use, and freed but kept).
if [ -s "$out/stats.json" ] && command -v python3 >/dev/null; then
  python3 - "$out/stats.json" <<'PY' | tee -a "$out/growth.txt"
import json, sys
heap = json.load(open(sys.argv[1])).get("heap") or {}
def rate(v):
    return "too short to say" if v is None else f"{v / 1024:+.0f} kB/h"
if heap:
    print(f"client  live heap {heap['live_bytes'] / 1024:.0f} kB, growth {rate(heap['growth_bytes_per_hour'])}")
    m = heap.get("malloc")
    if m:
        print(f"client  malloc in use {m['in_use_bytes'] / 1024:.0f} kB, growth {rate(m['in_use_growth_bytes_per_hour'])}; "
              f"held {m['held_bytes'] / 1024:.0f} kB, growth {rate(m['held_growth_bytes_per_hour'])}")
PY
fi
# glibc's main arena is the [heap] mapping: its resident part grows as pages of it are touched
# for the first time, up to its size; a size that stays put bounds that growth.
if [ -s "$out/smaps.first" ] && [ -s "$out/smaps.last" ]; then
  summary() {
    awk '
      /^[0-9a-f]+-[0-9a-f]+ / { name = $6; inode = $5; next }
      /^Size:/ { if (name == "[heap]") hs = $2 }
      /^Rss:/ { if (name == "[heap]") hr = $2; else if (inode == 0) ar += $2; else fr += $2 }
      END { printf "%d %d %d %d", hs, hr, ar, fr }' "$1"
  }
  read -r hs1 hr1 ar1 fr1 <<<"$(summary "$out/smaps.first")"
  read -r hs2 hr2 ar2 fr2 <<<"$(summary "$out/smaps.last")"
  printf "client  main arena ([heap]) resident %d of %d kB after the warm-up, %d of %d kB at the end; other anonymous %d → %d kB; file-backed %d → %d kB\n" \
    "$hr1" "$hs1" "$hr2" "$hs2" "$ar1" "$ar2" "$fr1" "$fr2" | tee -a "$out/growth.txt"
fi
echo "samples: $out/samples.txt; stream figures: $out/stats.json"
