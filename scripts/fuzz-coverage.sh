#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, through cargo-fuzz) of every decoder of network bytes.
#
# Usage: scripts/fuzz-coverage.sh [SECONDS] [TARGET...]
#   SECONDS  per target (default 60); TARGETs default to all of `kumo fuzz`'s targets.
#
# Each target starts from its kept corpus in tests/fuzz-corpus/<target>/ and grows its own in
# fuzz/corpus/<target>/ (not committed). At the end the corpus is minimised and what it adds is
# kept as tests/fuzz-corpus/<target>/cov-*.bin (at most 200 a target), which tests/fuzz.rs
# replays on every test run; a finding is kept there as crash-*.bin and the script fails.
#
# cargo-fuzz builds with nightly-only flags; this machine's one toolchain is stable, so the
# build runs with RUSTC_BOOTSTRAP=1 and without a sanitizer (`-s none`: kumo's decoders are safe
# Rust, and a finding is a panic). cargo-fuzz is installed with `cargo install` when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=(frame-header control input input-ack audio clock assemble annexb marker opus mdns fec)
fi

flags=(-s none --release --debug-assertions)
cargo fuzz build "${flags[@]}" network_bytes
found=0
printf '%-13s %12s %8s %8s %8s %s\n' target executions exec/s cov corpus findings
for t in "${targets[@]}"; do
  corpus=fuzz/corpus/$t artifacts=fuzz/artifacts/$t kept=tests/fuzz-corpus/$t
  mkdir -p "$corpus" "$artifacts" "$kept"
  log=fuzz/artifacts/$t.log
  set +e
  KUMO_FUZZ_TARGET=$t cargo fuzz run "${flags[@]}" network_bytes "$corpus" "$kept" -- \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=5 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  findings=$(find "$artifacts" -type f | wc -l)
  printf '%-13s %12s %8s %8s %8s %s\n' "$t" "${runs:-?}" "${rate:-?}" "${cov:-?}" \
    "$(find "$corpus" -type f | wc -l)" "$findings"
  if [ "$rc" -ne 0 ] || [ "$findings" -gt 0 ]; then
    found=1
    echo "  $t: libFuzzer exited with $rc; log: $log" >&2
    for f in "$artifacts"/*; do
      [ -f "$f" ] && cp "$f" "$kept/crash-$(sha256sum "$f" | cut -c1-16).bin"
    done
  fi
  # Keep what the new corpus adds over the kept one, minimised, as regressions.
  KUMO_FUZZ_TARGET=$t cargo fuzz cmin "${flags[@]}" network_bytes "$corpus" -- -max_len=65536 \
    >>"$log" 2>&1 || true
  n=0
  for f in "$corpus"/*; do
    [ -f "$f" ] || continue
    name=$kept/cov-$(sha256sum "$f" | cut -c1-16).bin
    if [ ! -e "$name" ] && [ "$(find "$kept" -name 'cov-*' | wc -l)" -lt 200 ]; then
      cp "$f" "$name"
      n=$((n + 1))
    fi
  done
  echo "  $t: kept $n new inputs in $kept" >&2
done
exit "$found"
