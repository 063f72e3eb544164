#!/usr/bin/env bash
# The management API with 100,000 queues: declares them over AMQP, then times
#   GET /api/queues?page=1&page_size=100          (the web UI's first page)
#   GET /api/queues?page=500&page_size=100&sort=messages&sort_reverse=true
#   GET /api/queues?page=1&page_size=100&name=q-4242&use_regex=false
#   GET /api/queues                                (the full list)
#   GET /api/queues?columns=name,messages          (the full list, two columns)
#   GET /api/overview, GET /metrics, GET /metrics/per-object
# RabbitMQ took 8-9 s to list 6,000 queues in its own issue tracker.
#
# Usage: bench/http-100k-queues.sh [queues]   (default 100000)
# Env: WARREN_HTTP_BIN (default: the release warren-http-dev example, built if missing).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-100000}
bin=${WARREN_HTTP_BIN:-$root/target/release/examples/warren-http-dev}
if [ ! -x "$bin" ]; then
  cargo build --release -p warren-http --example warren-http-dev --manifest-path "$root/Cargo.toml"
fi
py=$root/.venv/bin/python
[ -x "$py" ] || py=python3
tmp=$(mktemp -d)
port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
amqp=$(port); http=$(port); prom=$(port)
"$bin" --bind 127.0.0.1 --amqp-port "$amqp" --http-port "$http" --prometheus-port "$prom" \
  --mqtt-port 0 --stomp-port 0 --web-mqtt-port 0 --web-stomp-port 0 --data-dir "$tmp/data" >"$tmp/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do
  curl -sf -u guest:guest "http://127.0.0.1:$http/api/overview" >/dev/null && break
  sleep 0.1
done

echo "declaring $n queues (transient, one message in every tenth)..."
start=$(date +%s.%N)
$py - "$amqp" "$n" <<'PY'
import sys, pika
port, n = int(sys.argv[1]), int(sys.argv[2])
c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
ch = c.channel()
for i in range(n):
    ch.queue_declare(f"q-{i}")
    if i % 10 == 0:
        ch.basic_publish("", f"q-{i}", b"x" * (i % 100))
c.close()
PY
echo "declared in $($py -c "print(round($(date +%s.%N) - $start, 1))") s"
rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
echo "broker RSS with $n queues: $((rss_kb / 1024)) MiB"

t() {
  local label=$1 url=$2 runs=""
  for _ in 1 2 3; do
    runs="$runs $(curl -s -o /dev/null -u guest:guest -w '%{time_total}:%{size_download}:%{http_code}' "$url")"
  done
  $py -c '
import sys
label, runs = sys.argv[1], [r.split(":") for r in sys.argv[2].split()]
best = min(float(r[0]) for r in runs)
print(f"{label:<58} {best:8.3f} s  {int(runs[-1][1]):>11} bytes  HTTP {runs[-1][2]}")' "$label" "$runs"
}
api="http://127.0.0.1:$http"
echo
echo "best of 3 (curl time_total):"
t "GET /api/queues?page=1&page_size=100" "$api/api/queues?page=1&page_size=100"
t "GET /api/queues?page=500&page_size=100&sort=messages&rev" "$api/api/queues?page=500&page_size=100&sort=messages&sort_reverse=true"
t "GET /api/queues?page=1&page_size=100&name=q-4242" "$api/api/queues?page=1&page_size=100&name=q-4242"
t "GET /api/queues/%2F?page=1&page_size=100&sort=memory" "$api/api/queues/%2F?page=1&page_size=100&sort=memory"
t "GET /api/queues (all $n)" "$api/api/queues"
t "GET /api/queues?columns=name,messages (all $n)" "$api/api/queues?columns=name,messages"
t "GET /api/overview" "$api/api/overview"
t "GET /metrics" "http://127.0.0.1:$prom/metrics"
t "GET /metrics/per-object" "http://127.0.0.1:$prom/metrics/per-object"
