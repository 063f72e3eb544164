#!/usr/bin/env python3
"""Delayed-message scale benchmark (issue 4): millions of pending `x-delay` messages
without heap growth, and delivery accuracy under that load.

Starts a private Warren (release build, temp data dir, free ports), then:
  1. publishes COUNT (default 1,000,000) persistent messages with delays of 1 to 2 hours
     to a durable `x-delayed-message` exchange, sampling the broker's RSS;
  2. while those are pending, publishes PROBES (default 2,000) messages with delays of
     100 ms to 3 s and measures how late each arrives at a consumer (p50/p99/max);
  3. restarts the broker (SIGTERM) and checks the pending messages survived: a probe
     published with a short delay before the restart arrives after it, and the
     broker's pending count (management API) is unchanged.
Prints a markdown summary. Needs pika and requests (tests/interop's venv).

    .venv/bin/python bench/delayed.py [COUNT]
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pika
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WARREN = os.environ.get("WARREN", os.path.join(ROOT, "target/release/warren"))
COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("COUNT", 1_000_000))
PROBES = int(os.environ.get("PROBES", 2000))
SIZE = int(os.environ.get("SIZE", 100))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid, field="VmRSS:"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return 0.0


class Broker:
    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.amqp, self.http = free_port(), free_port()
        self.proc = None

    def start(self):
        args = [WARREN, "--bind", "127.0.0.1", "--amqp-port", str(self.amqp),
                "--http-port", str(self.http), "--mqtt-port", "0", "--stomp-port", "0",
                "--prometheus-port", "0", "--web-mqtt-port", "0", "--web-stomp-port", "0",
                "--data-dir", self.data_dir]
        self.log = open(os.path.join(self.data_dir, "..", "warren.log"), "a")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.amqp), 0.2).close()
                return time.monotonic() - t0
            except OSError:
                if self.proc.poll() is not None:
                    sys.exit("warren exited at start")
                time.sleep(0.01)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)

    def connect(self):
        return pika.BlockingConnection(pika.ConnectionParameters(
            "127.0.0.1", self.amqp, credentials=pika.PlainCredentials("guest", "guest")))

    def exchange(self, name):
        r = requests.get(f"http://127.0.0.1:{self.http}/api/exchanges/%2F/{name}",
                         auth=("guest", "guest"), timeout=10)
        r.raise_for_status()
        return r.json()


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    tmp = tempfile.mkdtemp(prefix="warren-delayed-")
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    broker = Broker(data)
    broker.start()
    pid = broker.proc.pid
    out = {"count": COUNT, "probes": PROBES, "size": SIZE}
    try:
        conn = broker.connect()
        ch = conn.channel()
        ch.exchange_declare("delayed", "x-delayed-message", durable=True,
                            arguments={"x-delayed-type": "direct"})
        ch.queue_declare("far", durable=True)
        ch.queue_bind("far", "delayed", "far")
        ch.queue_declare("probe", durable=True)
        ch.queue_bind("probe", "delayed", "probe")
        time.sleep(0.5)
        out["rss_idle_mib"] = rss_mib(pid)

        # 1. COUNT far-future messages
        body = b"x" * SIZE
        peak = [out["rss_idle_mib"]]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_mib(pid))
                time.sleep(0.1)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.monotonic()
        batch = 1000
        for i in range(0, COUNT, batch):
            for j in range(i, min(COUNT, i + batch)):
                delay = 3_600_000 + (j * 7919) % 3_600_000
                ch._impl.basic_publish("delayed", "far", body, pika.BasicProperties(
                    delivery_mode=2, headers={"x-delay": delay}))
            conn.process_data_events(0)
        # a round trip: everything before it has been taken in
        ch.queue_declare("far", durable=True, passive=True)
        out["publish_s"] = time.monotonic() - t0
        time.sleep(1.0)
        out["rss_after_publish_mib"] = rss_mib(pid)
        out["rss_anon_after_publish_mib"] = rss_mib(pid, "RssAnon:")

        # 2. accuracy probes while COUNT are pending
        lateness = []
        got = threading.Event()
        ready = threading.Event()

        def consume():
            # its own connection and thread: stamps are compared on arrival, not when
            # the publishing loop gets round to reading
            rconn = broker.connect()
            rch = rconn.channel()

            def on_msg(c, m, props, b):
                sent, delay = json.loads(b)
                lateness.append((time.time() - sent) * 1000 - delay)
                c.basic_ack(m.delivery_tag)
                if len(lateness) == PROBES:
                    got.set()
            rch.basic_qos(prefetch_count=500)
            rch.basic_consume("probe", on_msg)
            ready.set()
            deadline = time.monotonic() + 40
            while not got.is_set() and time.monotonic() < deadline:
                rconn.process_data_events(0.02)
            rconn.close()
        consumer = threading.Thread(target=consume, daemon=True)
        consumer.start()
        ready.wait(10)
        for i in range(PROBES):
            delay = 100 + (i * 37) % 2900
            ch._impl.basic_publish("delayed", "probe", json.dumps([time.time(), delay]).encode(),
                                   pika.BasicProperties(headers={"x-delay": delay}))
            conn.process_data_events(0)  # sent now, as stamped
        consumer.join(45)
        stop.set()
        out["rss_peak_mib"] = peak[0]
        out["probes_received"] = len(lateness)
        if lateness:
            out["lateness_ms"] = {"p50": percentile(lateness, 50), "p99": percentile(lateness, 99),
                                  "max": max(lateness), "min": min(lateness)}
        ch.basic_publish("delayed", "probe", b"across-restart", pika.BasicProperties(
            delivery_mode=2, headers={"x-delay": 3000}))
        conn.close()
        before = broker.exchange("delayed")

        # 3. restart
        broker.stop()
        out["restart_s"] = broker.start()
        pid = broker.proc.pid
        time.sleep(0.5)
        out["rss_after_restart_mib"] = rss_mib(pid)
        # file-backed pages (segments read through mmap) are page cache, not heap
        out["rss_anon_after_restart_mib"] = rss_mib(pid, "RssAnon:")
        after = broker.exchange("delayed")
        out["pending_before_restart"] = before.get("messages_delayed")
        out["pending_after_restart"] = after.get("messages_delayed")
        conn = broker.connect()
        ch = conn.channel()
        seen = None
        deadline = time.monotonic() + 10
        while seen is None and time.monotonic() < deadline:
            m, _p, b = ch.basic_get("probe", auto_ack=True)
            if m:
                seen = b
            else:
                time.sleep(0.05)
        out["probe_across_restart"] = seen == b"across-restart"
        conn.close()
    finally:
        if broker.proc and broker.proc.poll() is None:
            broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(json.dumps(out, indent=2))
    lat = out.get("lateness_ms", {})
    print(f"""
| Delayed messages (x-delayed-message), {COUNT:,} pending × {SIZE} B, persistent | Warren |
|---|---|
| publish time (pika, no confirms) | {out['publish_s']:.1f} s ({COUNT / out['publish_s']:,.0f} msg/s) |
| broker RSS idle / after publishing (of which heap) / peak | {out['rss_idle_mib']:.0f} / {out['rss_after_publish_mib']:.0f} ({out['rss_anon_after_publish_mib']:.0f}) / {out['rss_peak_mib']:.0f} MiB |
| lateness of {PROBES:,} probes (100 ms–3 s delays) with those pending: p50 / p99 / max | {lat.get('p50', 0):.1f} / {lat.get('p99', 0):.1f} / {lat.get('max', 0):.1f} ms |
| restart with them pending; RSS after (of which heap) | {out['restart_s']:.2f} s; {out['rss_after_restart_mib']:.0f} ({out['rss_anon_after_restart_mib']:.0f}) MiB |
| pending count before / after restart (management API `messages_delayed`) | {out['pending_before_restart']} / {out['pending_after_restart']} |
| a 3 s probe published before the restart arrives after it | {out['probe_across_restart']} |
""")
    ok = (out["probes_received"] == PROBES and out["probe_across_restart"]
          and out["pending_before_restart"] == out["pending_after_restart"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
