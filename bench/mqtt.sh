#!/usr/bin/env bash
# MQTT throughput probe, side by side: Warren (target/release/warren, or $WARREN_BIN),
# the reference RabbitMQ's MQTT plugin ($REF_MQTT_PORT, default 1884) and Mosquitto
# (Debian's, started here on a free port). Same load tool for all three: warren-mqtt-perf
# (crates/perf/src/bin/warren-mqtt-perf.rs, on Warren's codec over tokio).
# Each workload runs 3 times per broker; the median delivery rate is reported. Then
# bench/mqtt_connections.py opens CONNECTIONS (default 10000) MQTT connections to a fresh
# Warren (with sessions, and CONNECT only), to Mosquitto, and to the reference when its
# open-files limit allows, and reports each broker's resident memory.
# Usage: bench/mqtt.sh [messages per publisher, default 50000] > results.md
# Env: WARREN_BIN (default $CARGO_TARGET_DIR/release/warren), REF_MQTT_PORT,
#      CONNECTIONS (0 skips the connection measurement).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
msgs=${1:-50000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -q -p warren -p warren-perf
bench=$CARGO_TARGET_DIR/release/warren-mqtt-perf
warren=${WARREN_BIN:-$CARGO_TARGET_DIR/release/warren}
command -v mosquitto >/dev/null || { echo "apt-get install -y mosquitto" >&2; exit 1; }

connections=${CONNECTIONS:-10000}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tmp=$(mktemp -d)
wport=$(free_port); mport=$(free_port); rport=${REF_MQTT_PORT:-1884}
"$warren" --bind 127.0.0.1 --amqp-port "$(free_port)" --mqtt-port "$wport" --stomp-port 0 \
  --web-mqtt-port 0 --web-stomp-port 0 --http-port 0 --prometheus-port 0 --data-dir "$tmp/warren" >"$tmp/warren.log" 2>&1 &
wpid=$!
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\npersistence false\n' \
  "$mport" >"$tmp/mosquitto.conf"
mosquitto -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 &
mpid=$!
trap 'kill $wpid $mpid 2>/dev/null; wait $wpid $mpid 2>/dev/null; rm -rf "$tmp"' EXIT
sleep 1

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "# MQTT throughput probe"
echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)),"
echo "$(free -g | awk '/Mem:/ {print $2}') GiB; ${msgs} messages of 100 B per publisher; median of 3 runs;"
echo "delivery rate = messages delivered to all subscribers / time from first publish to last delivery."
echo "Load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared; see the notes)."
echo "Warren: $("$warren" --version) (release build); RabbitMQ: $(rabbitmqctl -q -n reference@localhost version 2>/dev/null || echo 3.10) MQTT plugin;"
echo "Mosquitto: $(mosquitto -h 2>&1 | head -1 | awk '{print $3}'), persistence off. Clean sessions."
echo
echo "| workload | Warren msg/s | RabbitMQ msg/s | Mosquitto msg/s |"
echo "|---|---|---|---|"
for qos in 0 1; do
  for shape in "1 1 pairs" "4 4 pairs" "1 4 fanout"; do
    set -- $shape
    row="| QoS $qos, $1 pub → $2 sub ($3) |"
    for port in $wport $rport $mport; do
      if ! timeout 10 mosquitto_pub -p "$port" -u guest -P guest -q 1 -t bench/probe -m x 2>/dev/null; then
        row="$row unreachable |"
        continue
      fi
      rates=$(for _ in 1 2 3; do
        timeout 300 "$bench" --port "$port" --qos "$qos" --publishers "$1" --subscribers "$2" \
          --mode "$3" --messages "$msgs" --size 100 --inflight 100 --timeout 120 |
          python3 -c 'import json,sys; d=json.load(sys.stdin); print(int(d["delivery_rate"]) if d["delivered"]==d["expected"] else 0)'
      done | median)
      row="$row $rates |"
    done
    echo "$row"
  done
done
echo
echo "Broker RSS after the runs: Warren $(awk '/VmRSS/ {print int($2/1024)}' /proc/$wpid/status) MiB, Mosquitto $(awk '/VmRSS/ {print int($2/1024)}' /proc/$mpid/status) MiB."

[ "$connections" -gt 0 ] || exit 0

# -- concurrent connections ------------------------------------------------------------
start_warren() {
  port=$(free_port)
  rm -rf "$tmp/warren-c"
  "$warren" --bind 127.0.0.1 --amqp-port 0 --mqtt-port "$port" --stomp-port 0 \
    --web-mqtt-port 0 --web-stomp-port 0 --http-port 0 --prometheus-port 0 \
    --data-dir "$tmp/warren-c" >"$tmp/warren-c.log" 2>&1 &
  cpid=$!
  for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
  sleep 1
}
row() {  # label, json
  python3 -c 'import json,sys; d=json.loads(sys.argv[2]); print("| %s | %d | %s MiB → %s MiB | %s KiB | %s | %s s |" % (sys.argv[1], d["connections"], d["rss_before_mib"], d["rss_after_mib"], d["kib_per_connection"], d["sample_delivered"], d["open_seconds"]))' "$1" "$2"
}
echo
echo "## $connections concurrent MQTT connections"
echo
echo "bench/mqtt_connections.py: MQTT 3.1.1 connections to 127.0.0.1, keep-alive 600 s, opened 250 at a"
echo "time; \"with sessions\": each then subscribes to a topic of its own, and 20 of them are checked to"
echo "still receive. Broker resident memory (VmRSS) before and after, on a freshly started broker."
echo
echo "| broker | connections | RSS before → after | per connection | sample delivered | time to open |"
echo "|---|---|---|---|---|---|"
start_warren
row "Warren, with sessions (session queue + binding + consumer each)" \
  "$(python3 bench/mqtt_connections.py --port "$port" --pid $cpid --count "$connections")"
kill $cpid; wait $cpid 2>/dev/null || true
start_warren
row "Warren, CONNECT only" \
  "$(python3 bench/mqtt_connections.py --port "$port" --pid $cpid --count "$connections" --no-subscribe)"
kill $cpid; wait $cpid 2>/dev/null || true
kill $mpid; wait $mpid 2>/dev/null || true
mosquitto -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 &
mpid=$!
sleep 1
row "Mosquitto, with subscriptions" \
  "$(python3 bench/mqtt_connections.py --port "$mport" --pid $mpid --count "$connections")"
beam=$(pgrep -f 'beam.smp.*reference' | head -1 || true)
if [ -n "$beam" ]; then
  limit=$(awk '/Max open files/ {print $4}' /proc/"$beam"/limits)
  if [ "$limit" -gt $((connections + 200)) ]; then
    row "RabbitMQ (reference), with sessions" \
      "$(python3 bench/mqtt_connections.py --port "$rport" --pid "$beam" --count "$connections")"
  else
    echo
    echo "The reference RabbitMQ runs with a soft limit of $limit open files, so it cannot hold $connections connections and is not in this table."
  fi
fi
