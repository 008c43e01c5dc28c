#!/usr/bin/env bash
# Sessions in a row, the way kiosks and players have them all day, in three parts:
#   1. in one process (tests/churn.rs with KUMO_CHURN_SESSIONS): goodbyes, the host
#      restarting under a connected client, paths vanishing; descriptors, threads, sound
#      streams and the live heap of host and client together;
#   2. a `kumo host` process and SESSIONS `kumo connect` processes one after another, every
#      50th killed mid-stream without a goodbye (the host frees it at QUIC's 10 s idle
#      timeout): the host's descriptors, threads and RSS after 10 sessions and after all;
#   3. with KIOSK=N (needs xvfb-run, xdotool, x11-utils and a Vulkan driver): `kumo kiosk`
#      on a virtual screen, N sessions each ended by the kiosk's idle timeout (1 s) and the
#      next started by a key: the kiosk's descriptors, threads, RSS and X windows.
#
# Usage: scripts/churn.sh [SESSIONS] [KUMO]
#   SESSIONS  sessions in parts 1 and 2 (default 1000)
#   KUMO      the kumo binary for parts 2 and 3 (default target/release/kumo; build it first)
# Settings from the environment: PORT=47543  OUT=target/churn  PARTS="1 2" (add 3 with KIOSK)
set -euo pipefail

sessions=${1:-1000}
kumo=${2:-target/release/kumo}
out=${OUT:-target/churn}
port=${PORT:-47543}
parts=${PARTS:-1 2${KIOSK:+ 3}}
mkdir -p "$out"

# Descriptors, threads and RSS (kB) of a process.
figures() {
  local pid=$1
  local fds threads rss
  fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
  echo "$fds $threads $rss"
}

# Compares two "fds threads rss" lines: flat descriptors and threads, RSS within 5 %.
verdict() {
  local who=$1 first=$2 last=$3
  read -r f0 t0 r0 <<<"$first"
  read -r f1 t1 r1 <<<"$last"
  local growth
  growth=$(awk -v a="$r0" -v b="$r1" 'BEGIN { printf "%+.1f", (b - a) * 100 / a }')
  echo "$who: descriptors $f0 → $f1, threads $t0 → $t1, RSS $r0 → $r1 kB ($growth %)"
  if [ "$f1" -gt "$f0" ] || [ "$t1" -gt "$t0" ] || awk -v g="$growth" 'BEGIN { exit !(g > 5) }'; then
    echo "$who: NOT flat" >&2
    return 1
  fi
}

status=0
for part in $parts; do
  case $part in
  1)
    echo "== part 1: $sessions sessions in one process (tests/churn.rs)"
    KUMO_CHURN_SESSIONS=$sessions cargo test --locked --test churn -- --nocapture 2>&1 |
      grep -E "sessions in|test result|panicked|NOT" | tee "$out/in-process.txt" || status=1
    grep -q "test result: ok. 1 passed" "$out/in-process.txt" || status=1
    ;;
  2)
    echo "== part 2: a kumo host process and $sessions kumo connect processes"
    if [ ! -x "$kumo" ]; then
      echo "no kumo binary at $kumo: build it first (cargo build --release --locked)" >&2
      exit 1
    fi
    RUST_LOG=warn "$kumo" host --listen "127.0.0.1:$port" --allow-unpaired --ephemeral --no-advertise \
      </dev/null >"$out/host.out" 2>"$out/host.log" &
    host_pid=$!
    trap 'kill $host_pid 2>/dev/null || true' EXIT
    for _ in $(seq 100); do
      if [ "$(wc -l <"$out/host.out")" -ge 2 ]; then break; fi
      sleep 0.1
    done
    fingerprint=$(sed -n 2p "$out/host.out" | awk '{print $NF}')
    client=("$kumo" connect "127.0.0.1:$port" --host-fingerprint "$fingerprint" --headless --no-audio
      --width 640 --height 360 --fps 30 --reconnect-timeout 1)
    started=$SECONDS
    after_ten=""
    for n in $(seq "$sessions"); do
      if [ $((n % 50)) -eq 25 ]; then
        # Vanishes: killed mid-stream, no goodbye.
        RUST_LOG=error "${client[@]}" --duration 5 </dev/null >/dev/null 2>&1 &
        sleep 1
        kill -9 $! 2>/dev/null || true
        wait $! 2>/dev/null || true
      else
        # The slot may still be held by a vanished client: retry until it is free.
        for _ in $(seq 60); do
          if RUST_LOG=error "${client[@]}" --duration 0.5 </dev/null >/dev/null 2>"$out/client.log"; then break; fi
          sleep 0.25
        done
      fi
      if [ "$n" -eq 10 ]; then after_ten=$(figures "$host_pid"); fi
      if [ $((n % 100)) -eq 0 ]; then echo "$n sessions after $((SECONDS - started)) s: host $(figures "$host_pid")"; fi
    done
    sleep 11 # idle runtime threads go after 10 s
    verdict "host after $sessions sessions ($((SECONDS - started)) s)" "$after_ten" "$(figures "$host_pid")" |
      tee "$out/host-process.txt" || status=1
    kill "$host_pid"
    wait "$host_pid" 2>/dev/null || true
    trap - EXIT
    ;;
  3)
    kiosk_sessions=${KIOSK:?KIOSK=N sessions}
    echo "== part 3: kumo kiosk, $kiosk_sessions sessions ended by its idle timeout"
    dir=$(mktemp -d)
    chmod 700 "$dir"
    printf '[kiosk]\nidle_timeout = 1\n' >"$dir/config.toml"
    cat >"$dir/run.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
export XDG_RUNTIME_DIR=$dir
$(declare -f figures verdict)
RUST_LOG=info "$kumo" --config "$dir/config.toml" kiosk >"$dir/kiosk.log" 2>&1 &
kiosk=\$!
starts() { grep -c "the kiosk is starting a session" "$dir/kiosk.log" || true; }
ends() { grep -c "the kiosk ends the session" "$dir/kiosk.log" || true; }
until [ "\$(ends)" -ge 1 ]; do sleep 0.2; done
after_ten=""
for n in \$(seq $kiosk_sessions); do
  want=\$((\$(ends) + 1))
  xdotool search --name kumo windowfocus --sync >/dev/null 2>&1 || true
  xdotool key space
  for _ in \$(seq 150); do [ "\$(ends)" -ge "\$want" ] && break; sleep 0.2; done
  if [ "\$n" -eq $(( kiosk_sessions < 20 ? kiosk_sessions / 2 : 10 )) ]; then after_ten="\$(figures \$kiosk)"; windows_ten=\$(xwininfo -root -tree | wc -l); fi
  if [ \$((n % 100)) -eq 0 ]; then echo "\$n sessions after \$SECONDS s: kiosk \$(figures \$kiosk) (descriptors threads RSS), X windows \$(xwininfo -root -tree | wc -l)"; fi
done
sleep 11
last="\$(figures \$kiosk)"; windows_last=\$(xwininfo -root -tree | wc -l)
echo "kiosk: \$(starts) sessions started, \$(ends) ended; X windows \$windows_ten → \$windows_last"
echo "kiosk threads by name:"
for t in /proc/\$kiosk/task/*; do cat \$t/comm; done | sort | uniq -c | sort -rn | head -8
verdict "kiosk after $kiosk_sessions sessions" "\$after_ten" "\$last"
kill \$kiosk
EOF
    chmod +x "$dir/run.sh"
    xvfb-run -a -s "-screen 0 1280x720x24" "$dir/run.sh" | tee "$out/kiosk.txt" || status=1
    ;;
  esac
done
exit $status
