#!/usr/bin/env bash
# The seed benchmark: 1 producer, 4 consumers, 100,000 messages of 100 / 500 / 1000 bytes,
# each point run REPEAT times; prints min / median / max consume rate and the broker's
# median CPU µs per message. Needs jq.
#
#   bench/seed.sh URI BROKER_PID [REPEAT] [EXTRA warren-perf FLAGS...]
#   bench/seed.sh amqp://guest:guest@127.0.0.1:5680/%2f "$(pgrep -x warren)" 3
#   # the same on a stream (each consumer reads every message: rates are deliveries/s)
#   bench/seed.sh URI PID 3 --queue-type stream --prefetch 1000 --multiple-ack 100
#
# Raw JSON summaries are appended to ${OUT:-/tmp/warren-perf-seed.jsonl}.
set -euo pipefail
uri=${1:?usage: seed.sh URI BROKER_PID [REPEAT] [FLAGS...]}
pid=${2:?broker pid}
repeat=${3:-3}
shift 3 || shift $#
perf=${PERF:-$(dirname "$0")/../target/release/warren-perf}
out=${OUT:-/tmp/warren-perf-seed.jsonl}

printf '%-6s %10s %10s %10s %12s %12s %10s\n' size min/s median/s max/s broker_us/msg client_us/msg p50_ms
for size in 100 500 1000; do
  rates=() broker=() client=() p50=()
  for _ in $(seq "$repeat"); do
    line=$("$perf" run --uri "$uri" --producers 1 --consumers 4 --count 100000 --size "$size" \
      --broker-pid "$pid" --json --quiet "$@" | tail -n 1)
    echo "$line" >> "$out"
    rates+=("$(jq -r .consume_rate <<<"$line")")
    broker+=("$(jq -r '.broker.cpu_us_per_msg // 0' <<<"$line")")
    client+=("$(jq -r .client.cpu_us_per_msg <<<"$line")")
    p50+=("$(jq -r '(.latency_us.p50 // 0) / 1000' <<<"$line")")
  done
  med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  sorted=$(printf '%s\n' "${rates[@]}" | sort -g)
  printf '%-6s %10.0f %10.0f %10.0f %12.2f %12.2f %10.1f\n' "$size" \
    "$(head -n1 <<<"$sorted")" "$(med "${rates[@]}")" "$(tail -n1 <<<"$sorted")" \
    "$(med "${broker[@]}")" "$(med "${client[@]}")" "$(med "${p50[@]}")"
done
