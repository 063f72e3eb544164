#!/usr/bin/env bash
# The long-queue benchmark (issue 3), full size: 5,000,000 persistent 1 KB messages are
# published with confirms to one durable queue with no consumer, then drained by one
# consumer. Prints the broker's peak RSS while publishing, (optionally) after a restart,
# and while draining, with the publish, recovery and drain times. The target: the
# broker's RSS stays under RSS_LIMIT_MIB (300) MiB throughout; the script exits 1 if not.
# (tests/interop/test_long_queue.py is the scaled-down CI version of this run.)
#
#   bench/long-queue.sh                          # private Warren on a fresh data dir
#   COUNT=1000000 RESTART=kill bench/long-queue.sh
#   URI=amqp://guest:guest@127.0.0.1:5672/%2f PID=$(pgrep -x warren) bench/long-queue.sh
#
# Env:
#   COUNT (5000000)  SIZE (1024)  CONFIRM (publisher confirm window, 1000)
#   PRODUCERS (1: the queue order is then the publish order)
#   RSS_LIMIT_MIB (300)
#   RESTART (none | term | kill): restart the broker with the queue full before draining
#     (only for the private Warren); the recovery time and RSS after it are reported
#   CHECK_ORDER (0): 1 = drain with the Python checker (tests/interop; needs pika, set
#     PYTHON) which verifies every message comes back once, in order, intact; slower
#     than warren-perf (about 40k msg/s), and its time is then not a broker figure
#   DATA_DIR (a fresh dir under ${TMPDIR:-/tmp}, removed at the end unless KEEP=1):
#     put it on the disk you want to measure; it needs about COUNT x SIZE x 1.5 free
#   WARREN, PERF: the binaries (target/release/warren, target/release/warren-perf)
#   URI + PID: use an already running broker instead (no restart; its VmHWM then
#     includes its history, so the sampled maximum is reported too)
#
# Needs jq. RSS is VmRSS sampled every 100 ms plus the kernel's high-water mark VmHWM.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
count=${COUNT:-5000000} size=${SIZE:-1024} confirm=${CONFIRM:-1000}
producers=${PRODUCERS:-1} limit=${RSS_LIMIT_MIB:-300} restart=${RESTART:-none}
warren=${WARREN:-$root/target/release/warren} perf=${PERF:-$root/target/release/warren-perf}
python=${PYTHON:-python3}
queue=long-queue-$$-$RANDOM
command -v jq >/dev/null || { echo "long-queue.sh: needs jq" >&2; exit 2; }

own=0 data_dir="" broker_pid="" sampler_pid="" log=""
cleanup() {
  [[ -n $sampler_pid ]] && kill "$sampler_pid" 2>/dev/null || true
  if [[ $own == 1 && -n $broker_pid ]]; then
    kill -TERM "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null || true
  fi
  if [[ $own == 1 && ${KEEP:-0} != 1 && -n $data_dir ]]; then
    rm -rf "$data_dir"
    if [[ ${verdict:-1} == 0 ]]; then rm -f "$log"; else echo "warren log: $log" >&2; fi
  fi
}
trap cleanup EXIT

start_warren() {
  "$warren" --bind 127.0.0.1 --amqp-port "$port" --http-port 0 --mqtt-port 0 \
    --stomp-port 0 --web-mqtt-port 0 --web-stomp-port 0 --prometheus-port 0 --data-dir "$data_dir" >>"$log" 2>&1 &
  broker_pid=$!
  local t0=$SECONDS
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    kill -0 "$broker_pid" 2>/dev/null || { echo "warren exited; log: $log" >&2; exit 2; }
    (( SECONDS - t0 < 600 )) || { echo "warren not listening after 600 s" >&2; exit 2; }
    sleep 0.05
  done
}

if [[ -n ${URI:-} ]]; then
  uri=$URI broker_pid=${PID:?with URI, set PID to the broker process id}
  [[ $restart == none ]] || { echo "RESTART needs the private Warren (no URI)" >&2; exit 2; }
else
  own=1
  data_dir=${DATA_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/warren-long-queue.XXXXXX")}
  mkdir -p "$data_dir"
  need_kb=$(( count * size * 3 / 2 / 1024 ))
  free_kb=$(df -Pk "$data_dir" | awk 'NR==2 {print $4}')
  (( free_kb > need_kb )) || { echo "need ~$((need_kb / 1024)) MiB free under $data_dir" >&2; exit 2; }
  log=$data_dir.log
  for _ in 1 2 3 4 5 6 7 8 9 10; do  # a port nothing listens on, below the ephemeral range
    port=$(( 20000 + RANDOM % 10000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
  done
  uri="amqp://guest:guest@127.0.0.1:$port/%2f"
  start_warren
fi

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; }
kib() { awk '/^'"$2"':/ {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }
# Samples VmRSS of whatever pid is in $samples.pid into $samples (one KiB value a line).
samples=$(mktemp)
start_sampler() {
  : >"$samples"
  ( while kill -0 "$1" 2>/dev/null; do kib "$1" VmRSS >>"$samples" 2>/dev/null || true; sleep 0.1; done ) &
  sampler_pid=$!
}
stop_sampler() { kill "$sampler_pid" 2>/dev/null || true; wait "$sampler_pid" 2>/dev/null || true; sampler_pid=""; }
sampled_max() { sort -n "$samples" | tail -n 1; }

verdict=0
report() {  # phase, sampled max KiB, VmHWM KiB
  local worst=$(( $2 > $3 ? $2 : $3 ))
  local ok=ok; (( worst < limit * 1024 )) || { ok="OVER ${limit} MiB"; verdict=1; }
  printf '%-22s peak RSS %6s MiB (sampled max %s MiB, VmHWM %s MiB)  %s\n' \
    "$1" "$(mib "$worst")" "$(mib "$2")" "$(mib "$3")" "$ok"
}

echo "long-queue: $count x $size B persistent, confirm window $confirm, $producers producer(s), broker pid $broker_pid${data_dir:+, data dir $data_dir}"

# 1. Publish, no consumer.
start_sampler "$broker_pid"
pub=$("$perf" run --uri "$uri" --producers "$producers" --consumers 0 --count "$count" \
  --size "$size" --persistent --confirm "$confirm" --queue "$queue" --keep --json --quiet \
  --stall-timeout 120 | tail -n 1)
stop_sampler
jq -e --argjson n "$count" '.published == $n and .confirmed == $n and .nacked == 0' \
  <<<"$pub" >/dev/null || { echo "publish incomplete: $pub" >&2; exit 1; }
printf 'publish                %8.1f s  %9.0f msg/s  confirm p50 %.1f ms p99 %.1f ms\n' \
  "$(jq .elapsed_s <<<"$pub")" "$(jq .publish_rate <<<"$pub")" \
  "$(jq '.confirm_latency_us.p50 / 1000' <<<"$pub")" "$(jq '.confirm_latency_us.p99 / 1000' <<<"$pub")"
report "publishing" "$(sampled_max)" "$(kib "$broker_pid" VmHWM)"

# 2. Optionally restart with the queue full.
if [[ $restart != none ]]; then
  [[ $restart == kill ]] && sig=KILL || sig=TERM
  t0=$(date +%s.%N)
  kill -"$sig" "$broker_pid"; wait "$broker_pid" 2>/dev/null || true
  start_warren
  printf 'restart (SIG%-4s)      %8s s  until the port accepts\n' "$sig" "$(elapsed "$t0")"
  report "after recovery" "$(kib "$broker_pid" VmRSS)" "$(kib "$broker_pid" VmHWM)"
fi

# 3. Drain with one consumer.
start_sampler "$broker_pid"
if [[ ${CHECK_ORDER:-0} == 1 ]]; then
  t0=$(date +%s.%N)
  (cd "$root/tests/interop" && "$python" - "$uri" "$queue" "$count" "$size" <<'PY'
import sys
import conftest
from durability_helpers import drain
uri, queue, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
class RB: broker = conftest.Broker(uri, False)
state = {"n": 0, "bad": 0}
def check(c):
    n, b = state["n"], c.body
    if len(b) != size or int.from_bytes(b[8:16], "big") != n or b[16:] != bytes(size - 16):
        state["bad"] += 1
    state["n"] = n + 1
    return False
drain(RB, queue, expected=count, prefetch=1000, ack_every=500, timeout=120, on_message=check)
print(f"checked {state['n']} messages: {state['bad']} out of order or corrupt")
sys.exit(1 if state["bad"] or state["n"] != count else 0)
PY
  ) || verdict=1
  printf 'drain (checked)        %8s s\n' "$(elapsed "$t0")"
else
  dr=$("$perf" run --uri "$uri" --producers 0 --consumers 1 --count "$count" --queue "$queue" \
    --prefetch 1000 --json --quiet --stall-timeout 120 | tail -n 1)
  jq -e --argjson n "$count" '.consumed == $n' <<<"$dr" >/dev/null \
    || { echo "drain incomplete: $dr" >&2; verdict=1; }
  printf 'drain                  %8.1f s  %9.0f msg/s\n' \
    "$(jq .elapsed_s <<<"$dr")" "$(jq .consume_rate <<<"$dr")"
fi
stop_sampler
report "draining" "$(sampled_max)" "$(kib "$broker_pid" VmHWM)"
rm -f "$samples"
[[ $verdict == 0 ]] && echo "long-queue: PASS (RSS under $limit MiB)" || echo "long-queue: FAIL"
exit "$verdict"
