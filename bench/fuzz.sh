#!/usr/bin/env bash
# Runs every codec fuzz target (cargo-fuzz / libFuzzer) for a fixed time and records the
# executions and findings in bench/fuzz-<date>.md. Targets: AMQP frames + methods, field
# tables, basic properties (crates/amqp-codec/fuzz), the AMQP connection state machine
# against a live broker core (crates/amqp/fuzz), MQTT packets in every version
# (crates/mqtt-codec/fuzz), STOMP frames (crates/stomp-codec/fuzz).
#
#   bench/fuzz.sh            # 60 s per target
#   SECONDS_PER_TARGET=600 bench/fuzz.sh
#
# Needs the nightly toolchain (rustup) and cargo-fuzz (installed if missing). A crash
# leaves its input under <crate>/fuzz/artifacts/<target>/; turn each into a regression
# test in the codec's unit tests before fixing it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${SECONDS_PER_TARGET:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
out="$root/bench/fuzz-$(date -u +%F).md"
{
  echo "# Fuzzing — $(date -u +%F)"
  echo
  echo "\`bench/fuzz.sh\` with SECONDS_PER_TARGET=$secs on $(nproc) cores ($(uname -m)), $(cargo +nightly --version), load average at start: $(cut -d' ' -f1 /proc/loadavg)."
  echo
  echo "| crate | target | seconds | executions | exec/s | corpus | crashes |"
  echo "|---|---|---:|---:|---:|---:|---|"
} > "$out"
status=0
for crate in amqp-codec amqp mqtt-codec stomp-codec; do
  dir="$root/crates/$crate/fuzz"
  for target in $(sed -n 's/^name = "\(.*\)"$/\1/p' "$dir/Cargo.toml" | grep -v fuzz); do
    log=$(mktemp)
    set +e
    extra=()
    # The connection target runs a multi-threaded runtime whose tasks may still hold
    # memory when libFuzzer checks for leaks at exit; hangs are caught by the target.
    [ "$target" = connection ] && extra=(-detect_leaks=0 -timeout=30)
    (cd "$dir" && cargo +nightly fuzz run "$target" -- -max_total_time="$secs" -print_final_stats=1 "${extra[@]}" >"$log" 2>&1)
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    corpus=$(ls "$dir/corpus/$target" 2>/dev/null | wc -l)
    if [ $rc -eq 0 ]; then crashes="none"; else crashes="**yes** (exit $rc, see crates/$crate/fuzz/artifacts/$target)"; status=1; tail -30 "$log"; fi
    echo "| $crate | $target | $secs | ${execs:-?} | ${rate:-?} | $corpus | $crashes |" >> "$out"
    echo "$crate/$target: ${execs:-?} executions, $crashes"
    rm -f "$log"
  done
done
echo "written $out"
exit $status
