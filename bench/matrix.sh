#!/usr/bin/env bash
# The benchmark in one command: Warren against the reference RabbitMQ on this machine,
# same tool, same run. Builds Warren and warren-perf (release), starts a Warren on free
# ports with a temporary data dir, starts the reference RabbitMQ if it is not running
# (AMQP 5673), runs `warren-perf compare` (the seed's headline matrix, one scenario per
# target, and the scaling series; brokers interleaved, 3 repetitions) and
# `warren-perf plot`, and leaves everything in bench/results/<date>/: runs.csv,
# summary.csv, results.json, summary.md (generated, with machine, date, versions and the
# targets' verdicts) and PNG + SVG charts.
#
#   bench/matrix.sh                 # the full matrix (about 10 minutes)
#   REPEAT=1 SCALE=0.2 bench/matrix.sh /tmp/quick   # a quick look, elsewhere
#
# Env: RESTART_RABBITMQ=1 (fresh RabbitMQ node), REPEAT (3), SCALE (1.0: message counts), PRESET (targets,scaling), MAX_NOISE
# (0.3 cores: rerun a point when other processes used more), RABBITMQ_URL (default
# amqp://guest:guest@127.0.0.1:5673/%2f), REFERENCE_RABBITMQ (the start script).
# Run it on a quiet machine: the results record the load average and, per run, the CPU
# other processes used.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${1:-bench/results/$(date -u +%F)}
target=${CARGO_TARGET_DIR:-$root/target}
rabbit_url=${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5673/%2f}
reference=${REFERENCE_RABBITMQ:-$root/../shared/tools/reference-rabbitmq}
[ -x "$reference" ] || reference=/work/shared/tools/reference-rabbitmq

cargo build --release --locked -p warren -p warren-perf
warren=$target/release/warren
perf=$target/release/warren-perf

# Chart labels need a TrueType font.
if ! ls /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf >/dev/null 2>&1 && [ -z "${WARREN_PERF_FONT:-}" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core >/dev/null
fi

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return; }
  done
}

data=$(mktemp -d /tmp/warren-bench.XXXXXX)
port=$(free_port)
ulimit -n 65536 2>/dev/null || true
"$warren" --amqp-port "$port" --data-dir "$data" --http-port 0 --mqtt-port 0 \
  --stomp-port 0 --web-mqtt-port 0 --web-stomp-port 0 --prometheus-port 0 \
  >"$data/warren.log" 2>&1 &
warren_pid=$!
started_rabbit=""
cleanup() {
  kill "$warren_pid" 2>/dev/null || true
  wait "$warren_pid" 2>/dev/null || true
  rm -rf "$data"
  if [ -n "$started_rabbit" ]; then "$reference" stop || true; fi
}
trap cleanup EXIT
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.1
done

# RESTART_RABBITMQ=1 restarts a running reference RabbitMQ first, so its idle memory is
# that of a fresh node (others may be using it: off by default).
if [ -n "${RESTART_RABBITMQ:-}" ]; then "$reference" stop || true; fi
if ! rabbitmqctl -q -n reference@localhost ping >/dev/null 2>&1; then
  "$reference" start
  started_rabbit=1
fi
rabbit_pid=$(cat "${REF_RMQ_DIR:-/tmp/reference-rabbitmq}/pid" 2>/dev/null || true)
rabbit_version=$(rabbitmqctl -q -n reference@localhost version 2>/dev/null || echo '?')
erlang=$(rabbitmqctl -q -n reference@localhost eval 'erlang:system_info(otp_release).' 2>/dev/null | tr -d '"' || echo '?')

commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- crates || commit="$commit+uncommitted"
mkdir -p "$out"
"$perf" compare \
  --broker "warren=amqp://guest:guest@127.0.0.1:$port/%2f" \
  --broker "rabbitmq=$rabbit_url" \
  --broker-pid "warren=$warren_pid" \
  ${rabbit_pid:+--broker-pid "rabbitmq=$rabbit_pid"} \
  --preset "${PRESET:-targets,scaling}" --repeat "${REPEAT:-3}" --scale "${SCALE:-1}" \
  --max-noise "${MAX_NOISE:-0.3}" --out "$out" \
  --meta "warren_commit=$commit" \
  --meta "warren_build=cargo build --release (profile: thin LTO, codegen-units 4)" \
  --meta "rabbitmq=RabbitMQ $rabbit_version on Erlang/OTP $erlang (Debian package, reference-rabbitmq)" \
  --meta "rustc=$(rustc --version)" \
  --meta "os=$(. /etc/os-release && echo "$PRETTY_NAME")" \
  || echo "warren-perf compare: some runs failed (see $out/summary.md)" >&2
"$perf" plot "$out"
echo "results: $out/summary.md"
