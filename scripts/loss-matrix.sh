#!/usr/bin/env bash
# The loss matrix of docs/robustness.md: a kumo host, the impairment relay and a headless
# client, one run per loss rate and seed, then one table row per run from --stats-json.
#
# Usage: scripts/loss-matrix.sh [KUMO] [OUT]
#   KUMO  the kumo binary (default target/release/kumo; build it first)
#   OUT   folder for each run's stats and logs (default target/loss-matrix)
# Settings come from the environment:
#   LOSSES="0% 1% 5% 10%"  SEEDS="3 4"  DELAY=10ms (each way: 20 ms RTT)
#   SIZE=1920x1080  FPS=60  KBPS=20000  ABR=false  SECONDS_EACH=10  PORT=47433
#   FEC=auto       the host's --fec (auto, off, or a share such as 30%)
#   PIN_CORES=""   e.g. "0 1": the host and relay on core 0, the client on core 1
#   TABLE_ONLY=1   print the table of runs already in OUT, run nothing
set -euo pipefail

kumo=${1:-target/release/kumo}
out=${2:-target/loss-matrix}
losses=${LOSSES:-0% 1% 5% 10%}
seeds=${SEEDS:-3 4}
delay=${DELAY:-10ms}
size=${SIZE:-1920x1080}
fps=${FPS:-60}
kbps=${KBPS:-20000}
abr=${ABR:-false}
seconds=${SECONDS_EACH:-10}
port=${PORT:-47433}
fec=${FEC:-auto}
read -r -a cores <<<"${PIN_CORES:-}"

if [ ! -x "$kumo" ]; then
  echo "no kumo binary at $kumo: build it first (cargo build --release --locked)" >&2
  exit 1
fi
mkdir -p "$out"
# Command prefixes that pin the host side and the client to their cores, if asked. (Not a
# shell function: one run in the background is a subshell, and killing it would leave kumo.)
host_pin=() client_pin=()
if [ -n "${cores[0]:-}" ]; then host_pin=(taskset -c "${cores[0]}"); fi
if [ -n "${cores[1]:-}" ]; then client_pin=(taskset -c "${cores[1]}"); fi

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT

for loss in $losses; do
  for seed in $seeds; do
    [ -z "${TABLE_ONLY:-}" ] || continue
    run="$out/loss${loss%\%}-seed$seed"
    "${host_pin[@]}" "$kumo" host --listen "127.0.0.1:$port" --ephemeral --allow-unpaired \
      --no-advertise --fec "$fec" >"$run.host.log" 2>&1 &
    pids=($!)
    "${host_pin[@]}" "$kumo" relay --listen "127.0.0.1:$((port + 1))" --to "127.0.0.1:$port" \
      --delay "$delay" --loss "$loss" --seed "$seed" >"$run.relay.log" 2>&1 &
    pids+=($!)
    sleep 1
    "${client_pin[@]}" "$kumo" connect "127.0.0.1:$((port + 1))" --insecure-skip-verify --headless \
      --duration "$seconds" --width "${size%x*}" --height "${size#*x}" --fps "$fps" \
      --bitrate-kbps "$kbps" --abr="$abr" --stats-json "$run.json" >"$run.client.log" 2>&1 ||
      echo "run $run failed: see $run.client.log" >&2
    cleanup
    wait 2>/dev/null || true
  done
done

python3 - "$out" $losses -- $seeds <<'EOF'
import json, sys
out = sys.argv[1]
args = sys.argv[2:]
split = args.index("--")
losses, seeds = args[:split], args[split + 1:]
cols = ["loss", "seed", "decoded", "from parity", "lost", "LTR req/repaired", "IDR req/repaired",
        "repair p50/max ms", "held back", "host behind", "longest freeze ms", "excl. host ms"]
print("| " + " | ".join(cols) + " |")
print("|" + "---|" * len(cols))
for loss in losses:
    for seed in seeds:
        path = f"{out}/loss{loss.rstrip('%')}-seed{seed}.json"
        try:
            s = json.load(open(path))
        except (OSError, ValueError) as e:
            print(f"| {loss} | {seed} | no stats ({e}) |")
            continue
        print("| " + " | ".join(str(v) for v in [
            loss, seed,
            f"{s['frames_decoded']} of {s['frames_received'] + s.get('frames_lost', 0)}",
            s.get("frames_repaired_fec", "—"),
            s.get("frames_lost", "—"),
            f"{s.get('ltr_requests', '—')} / {s.get('frames_repaired_ltr', '—')}",
            f"{s['idr_requests']} / {s.get('frames_repaired_idr', '—')}",
            f"{s['repair_ms']['p50']:.0f} / {s['longest_repair_ms']:.0f}" if "repair_ms" in s else "—",
            s.get("frames_held_back", "—"),
            s.get("host_behind_slots", "—"),
            f"{s['longest_freeze_ms']:.0f}",
            f"{s['longest_freeze_excl_host_ms']:.0f}" if "longest_freeze_excl_host_ms" in s else "—",
        ]) + " |")
EOF
