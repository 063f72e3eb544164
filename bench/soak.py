#!/usr/bin/env python3
"""Soak: holds thousands of AMQP 0-9-1 and MQTT 3.1.1 connections with light traffic for
a while, then checks that every message arrived exactly once and reports the broker's
memory per connection.

Each AMQP connection has a channel in confirm mode and an exclusive queue bound to
`amq.topic` as `soak.<run>.a.<k>`, consumed with manual acks; each MQTT connection (clean
session) subscribes at QoS 1 to `soak/<run>/m/<k>`. Every connection publishes one message
every --interval seconds (AMQP to `amq.topic` with confirms, MQTT at QoS 1) to a target
connection picked pseudo-randomly among all of them, so traffic crosses protocols both
ways. A message's body carries its id (publisher, sequence) and send time.

At the end it stops publishing, waits for the outstanding confirms/PUBACKs and
deliveries, and compares: a confirmed message never received is lost; an id received
twice is duplicated; a message nacked or never confirmed is a failure too. Exit status 1
if any of those is non-zero (or a connection failed), 0 otherwise.

Memory is the broker's VmRSS from /proc (so the broker must run on this machine): on the
fresh broker, with every connection open, at each report during the run, at the end of
the traffic, and after every connection closed.

By default it starts `target/release/warren` itself (temp data dir, free ports, only the
AMQP and MQTT listeners). `--amqp-port/--mqtt-port/--pid` measure an already running
broker instead (e.g. the reference RabbitMQ).

The client is one Python process with asyncio and raw sockets (no client library), so
10,000 connections fit in one core. It raises its own RLIMIT_NOFILE, and the broker's.

Usage: bench/soak.py [--amqp 5000] [--mqtt 5000] [--duration 300] [--interval 10]
Prints progress to stderr and one JSON object with the results to stdout.
"""

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def log(*a):
    print(f"[soak {time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- shared bookkeeping


class Stats:
    def __init__(self, drop=0, duplicate=0):
        # Fault injection for the script's own test: forget, or count twice, the first
        # deliveries.
        self.drop, self.duplicate = drop, duplicate
        self.published = {}      # id -> protocol of the publisher, once handed to the socket
        self.confirmed = set()   # ids the broker confirmed (basic.ack / PUBACK)
        self.nacked = set()
        self.received = Counter()
        self.latencies = []      # seconds, publish to delivery
        self.errors = []

    def on_receive(self, body):
        try:
            head, sent_at, _ = body.split(b"|", 2)
        except ValueError:
            self.errors.append(f"foreign message {body[:40]!r}")
            return
        if self.drop:
            self.drop -= 1
            return
        self.received[head.decode()] += 1
        if self.duplicate:
            self.duplicate -= 1
            self.received[head.decode()] += 1
        self.latencies.append(time.time() - float(sent_at))


def make_body(msg_id, size):
    head = f"{msg_id}|{time.time():.6f}|".encode()
    return head + b"x" * max(0, size - len(head))


# ---------------------------------------------------------------- AMQP 0-9-1 (raw)

def shortstr(s):
    b = s.encode() if isinstance(s, str) else s
    return bytes([len(b)]) + b


def longstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(b)) + b


def table(d):
    out = b""
    for k, v in d.items():
        out += shortstr(k)
        if isinstance(v, bool):
            out += b"t" + bytes([v])
        elif isinstance(v, dict):
            out += b"F" + table(v)
        else:
            out += b"S" + longstr(str(v))
    return struct.pack(">I", len(out)) + out


def amqp_frame(ftype, channel, payload):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + b"\xce"


def amqp_method(channel, class_id, method_id, args=b""):
    return amqp_frame(1, channel, struct.pack(">HH", class_id, method_id) + args)


AMQP_HEARTBEAT = amqp_frame(8, 0, b"")


class AmqpClient:
    proto = "amqp"

    def __init__(self, k, run, args, stats):
        self.k, self.run, self.args, self.stats = k, run, args, stats
        self.queue = f"soak-{run}-{k}"
        self.seq = 0          # publish sequence = delivery tag of the confirm
        self.unconfirmed = {}  # publish seq -> message id
        self.buf = bytearray()
        self.pending_deliver = None  # [remaining body bytes, collected body]
        self.last_sent = time.monotonic()
        self.closed = False

    async def read_frame(self):
        while True:
            if len(self.buf) >= 7:
                ftype, ch, size = struct.unpack_from(">BHI", self.buf)
                if len(self.buf) >= size + 8:
                    payload = bytes(self.buf[7:7 + size])
                    del self.buf[:size + 8]
                    return ftype, ch, payload
            data = await self.r.read(65536)
            if not data:
                raise ConnectionError("AMQP connection closed by the broker")
            self.buf += data

    async def expect(self, class_id, method_id):
        while True:
            ftype, _, payload = await self.read_frame()
            if ftype != 1:
                continue
            c, m = struct.unpack_from(">HH", payload)
            if (c, m) == (class_id, method_id):
                return payload[4:]
            if (c, m) in ((10, 50), (20, 40)):
                code, = struct.unpack_from(">H", payload, 4)
                text = payload[7:7 + payload[6]].decode(errors="replace")
                raise ConnectionError(f"broker closed: {code} {text}")

    async def open(self):
        a = self.args
        self.r, self.w = await asyncio.open_connection(a.host, a.amqp_port)
        self.w.write(b"AMQP\x00\x00\x09\x01")
        await self.expect(10, 10)
        props = table({"product": "warren-soak", "capabilities": {
            "publisher_confirms": True, "consumer_cancel_notify": True,
            "basic.nack": True, "connection.blocked": True}})
        resp = b"\x00" + a.user.encode() + b"\x00" + a.password.encode()
        self.w.write(amqp_method(0, 10, 11, props + shortstr("PLAIN") + longstr(resp)
                                 + shortstr("en_US")))
        tune = await self.expect(10, 30)
        channel_max, frame_max, _ = struct.unpack(">HIH", tune[:8])
        self.frame_max = frame_max or 131072
        self.w.write(amqp_method(0, 10, 31, struct.pack(">HIH", channel_max, self.frame_max,
                                                        a.heartbeat)))
        self.w.write(amqp_method(0, 10, 40, shortstr("/") + shortstr("") + b"\x00"))
        await self.expect(10, 41)
        # Everything a channel needs, pipelined; replies come back in order.
        key = f"soak.{self.run}.a.{self.k}"
        self.w.write(
            amqp_method(1, 20, 10, shortstr(""))
            + amqp_method(1, 85, 10, b"\x00")
            + amqp_method(1, 50, 10, b"\x00\x00" + shortstr(self.queue) + b"\x04" + table({}))
            + amqp_method(1, 50, 20, b"\x00\x00" + shortstr(self.queue) + shortstr("amq.topic")
                          + shortstr(key) + b"\x00" + table({}))
            + amqp_method(1, 60, 10, struct.pack(">IHB", 0, a.prefetch, 0))
            + amqp_method(1, 60, 20, b"\x00\x00" + shortstr(self.queue) + shortstr("c")
                          + b"\x00" + table({}))
        )
        for c, m in ((20, 11), (85, 11), (50, 11), (50, 21), (60, 11), (60, 21)):
            await self.expect(c, m)

    def publish(self, target_proto, target, size):
        self.seq += 1
        msg_id = f"a{self.k}:{self.seq}"
        body = make_body(msg_id, size)
        key = f"soak.{self.run}.{target_proto[0]}.{target}"
        header = struct.pack(">HHQH", 60, 0, len(body), 0)
        self.w.write(
            amqp_method(1, 60, 40, b"\x00\x00" + shortstr("amq.topic") + shortstr(key) + b"\x00")
            + amqp_frame(2, 1, header)
            + amqp_frame(3, 1, body)
        )
        self.unconfirmed[self.seq] = msg_id
        self.stats.published[msg_id] = self.proto
        self.last_sent = time.monotonic()

    def heartbeat(self):
        self.w.write(AMQP_HEARTBEAT)
        self.last_sent = time.monotonic()

    def settle_confirms(self, tag, multiple, ok):
        tags = [t for t in self.unconfirmed if t <= tag] if multiple else [tag]
        for t in tags:
            msg_id = self.unconfirmed.pop(t, None)
            if msg_id is not None:
                (self.stats.confirmed if ok else self.stats.nacked).add(msg_id)

    async def read_loop(self):
        last_tag = None
        while True:
            data = await self.r.read(65536)
            if not data:
                if not self.closed:
                    raise ConnectionError("AMQP connection closed by the broker")
                return
            self.buf += data
            while len(self.buf) >= 7:
                ftype, ch, size = struct.unpack_from(">BHI", self.buf)
                if len(self.buf) < size + 8:
                    break
                payload = bytes(self.buf[7:7 + size])
                del self.buf[:size + 8]
                if ftype == 1:
                    c, m = struct.unpack_from(">HH", payload)
                    if (c, m) == (60, 60):  # basic.deliver
                        p = 4 + 1 + payload[4]
                        last_tag, = struct.unpack_from(">Q", payload, p)
                        self.pending_deliver = [None, bytearray()]
                    elif (c, m) in ((60, 80), (60, 120)):  # basic.ack / basic.nack
                        tag, = struct.unpack_from(">Q", payload, 4)
                        self.settle_confirms(tag, bool(payload[12] & 1), m == 80)
                    elif (c, m) == (10, 51) and self.closed:  # close-ok
                        return
                    elif (c, m) in ((10, 50), (20, 40), (60, 30)):
                        raise ConnectionError(f"AMQP broker sent {c}.{m}: {payload[4:80]!r}")
                elif ftype == 2 and self.pending_deliver is not None:
                    self.pending_deliver[0], = struct.unpack_from(">Q", payload, 4)
                    if self.pending_deliver[0] == 0:
                        self.stats.on_receive(b"")
                        self.pending_deliver = None
                elif ftype == 3 and self.pending_deliver is not None:
                    self.pending_deliver[1] += payload
                    if len(self.pending_deliver[1]) >= self.pending_deliver[0]:
                        self.stats.on_receive(bytes(self.pending_deliver[1]))
                        self.pending_deliver = None
            if last_tag is not None:
                # basic.ack, multiple: everything delivered so far.
                self.w.write(amqp_method(1, 60, 80, struct.pack(">QB", last_tag, 1)))
                last_tag = None

    def outstanding(self):
        return len(self.unconfirmed)

    async def close(self):
        self.closed = True
        self.w.write(amqp_method(0, 10, 50, struct.pack(">H", 200) + shortstr("bye")
                                 + struct.pack(">HH", 0, 0)))


# ---------------------------------------------------------------- MQTT 3.1.1 (raw)

def mqtt_str(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def var_int(n):
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_packet(first, body):
    return bytes([first]) + var_int(len(body)) + body


MQTT_PINGREQ = b"\xc0\x00"


class MqttClient:
    proto = "mqtt"

    def __init__(self, k, run, args, stats):
        self.k, self.run, self.args, self.stats = k, run, args, stats
        self.seq = 0
        self.next_pid = 0
        self.unconfirmed = {}  # packet id -> message id
        self.buf = bytearray()
        self.last_sent = time.monotonic()
        self.closed = False

    def take_packet(self):
        """(first byte, body) of the first complete packet in the buffer, or None."""
        n, mult, i = 0, 1, 1
        while True:
            if i >= len(self.buf):
                return None
            b = self.buf[i]
            n += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        if len(self.buf) < i + n:
            return None
        first, body = self.buf[0], bytes(self.buf[i:i + n])
        del self.buf[:i + n]
        return first, body

    async def read_packet(self):
        while True:
            p = self.take_packet()
            if p is not None:
                return p
            data = await self.r.read(65536)
            if not data:
                raise ConnectionError("MQTT connection closed by the broker")
            self.buf += data

    async def open(self):
        a = self.args
        self.r, self.w = await asyncio.open_connection(a.host, a.mqtt_port)
        body = (mqtt_str("MQTT") + bytes([4, 0x02 | 0xC0]) + struct.pack(">H", a.heartbeat)
                + mqtt_str(f"soak-{self.run}-{self.k}") + mqtt_str(a.user) + mqtt_str(a.password))
        self.w.write(mqtt_packet(0x10, body))
        first, body = await self.read_packet()
        if first != 0x20 or body[1] != 0:
            raise ConnectionError(f"CONNACK refused: {body!r}")
        self.w.write(mqtt_packet(0x82, struct.pack(">H", 1)
                                 + mqtt_str(f"soak/{self.run}/m/{self.k}") + b"\x01"))
        first, body = await self.read_packet()
        if first != 0x90 or body[2] not in (0, 1):
            raise ConnectionError(f"SUBACK refused: {body!r}")

    def publish(self, target_proto, target, size):
        self.seq += 1
        msg_id = f"m{self.k}:{self.seq}"
        while True:
            self.next_pid = self.next_pid % 65535 + 1
            if self.next_pid not in self.unconfirmed:
                break
        topic = f"soak/{self.run}/{target_proto[0]}/{target}"
        self.w.write(mqtt_packet(0x32, mqtt_str(topic) + struct.pack(">H", self.next_pid)
                                 + make_body(msg_id, size)))
        self.unconfirmed[self.next_pid] = msg_id
        self.stats.published[msg_id] = self.proto
        self.last_sent = time.monotonic()

    def heartbeat(self):
        self.w.write(MQTT_PINGREQ)
        self.last_sent = time.monotonic()

    async def read_loop(self):
        while True:
            data = await self.r.read(65536)
            if not data:
                if not self.closed:
                    raise ConnectionError("MQTT connection closed by the broker")
                return
            self.buf += data
            acks = bytearray()
            while True:
                p = self.take_packet()
                if p is None:
                    break
                first, body = p
                kind = first >> 4
                if kind == 3:  # PUBLISH
                    qos = (first >> 1) & 3
                    tlen, = struct.unpack_from(">H", body)
                    at = 2 + tlen
                    if qos:
                        acks += b"\x40\x02" + body[at:at + 2]
                        at += 2
                    self.stats.on_receive(body[at:])
                elif kind == 4:  # PUBACK
                    pid, = struct.unpack_from(">H", body)
                    msg_id = self.unconfirmed.pop(pid, None)
                    if msg_id is not None:
                        self.stats.confirmed.add(msg_id)
            if acks:
                self.w.write(bytes(acks))

    def outstanding(self):
        return len(self.unconfirmed)

    async def close(self):
        self.closed = True
        self.w.write(b"\xe0\x00")  # DISCONNECT


# ---------------------------------------------------------------- the run


def start_warren(args):
    data = tempfile.mkdtemp(prefix="warren-soak-")
    args.amqp_port, args.mqtt_port = free_port(), free_port()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]

    def raise_nofile():
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    logf = open(os.path.join(data, "warren.log"), "wb")
    proc = subprocess.Popen(
        [args.warren, "--bind", "127.0.0.1", "--amqp-port", str(args.amqp_port),
         "--mqtt-port", str(args.mqtt_port), "--http-port", "0", "--stomp-port", "0",
         "--prometheus-port", "0", "--web-mqtt-port", "0", "--web-stomp-port", "0",
         "--data-dir", os.path.join(data, "data")],
        stdout=logf, stderr=subprocess.STDOUT, preexec_fn=raise_nofile,
        env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
    )
    deadline = time.time() + 20
    for port in (args.amqp_port, args.mqtt_port):
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"warren exited with {proc.returncode}; log in {data}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.time() > deadline:
                    proc.kill()
                    proc.wait()
                    shutil.rmtree(data, ignore_errors=True)
                    raise RuntimeError(f"warren is not listening on {port}")
                time.sleep(0.05)
    return proc, data


def pick_target(rng, n_amqp, n_mqtt):
    t = rng.randrange(n_amqp + n_mqtt)
    return ("amqp", t) if t < n_amqp else ("mqtt", t - n_amqp)


async def traffic(client, args, stats, stop, rng, n_amqp, n_mqtt):
    """Publishes one message every args.interval s (first one at a random offset), and a
    heartbeat whenever nothing was sent for a third of the heartbeat interval."""
    beat = args.heartbeat / 3 if args.heartbeat else None
    next_pub = time.monotonic() + rng.uniform(0, args.interval)
    while not stop.is_set():
        now = time.monotonic()
        if now >= next_pub:
            proto, t = pick_target(rng, n_amqp, n_mqtt)
            client.publish(proto, t, args.size)
            next_pub += args.interval
        elif beat and now - client.last_sent >= beat:
            client.heartbeat()
        wait = next_pub - time.monotonic()
        if beat:
            wait = min(wait, client.last_sent + beat - time.monotonic())
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, wait))
        except asyncio.TimeoutError:
            pass


def percentile(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


async def run(args):
    stats = Stats(args.self_test_drop, args.self_test_duplicate)
    run_id = str(int(time.time() * 1000) % 10**10)
    rng = random.Random(args.seed)
    mib = lambda kib: round(kib / 1024, 1)  # noqa: E731
    samples = []

    def sample(label):
        kib = rss_kib(args.pid)
        samples.append({"t": round(time.time() - t_start, 1), "label": label, "rss_mib": mib(kib)})
        return kib

    t_start = time.time()
    rss_fresh = sample("fresh broker")
    clients = ([AmqpClient(k, run_id, args, stats) for k in range(args.amqp)]
               + [MqttClient(k, run_id, args, stats) for k in range(args.mqtt)])
    # Interleave the protocols while opening.
    order = sorted(clients, key=lambda c: (c.k, c.proto))
    t0 = time.time()
    for i in range(0, len(order), args.batch):
        await asyncio.gather(*(c.open() for c in order[i:i + args.batch]))
        if (i // args.batch) % 20 == 19:
            log(f"opened {i + args.batch} connections")
    open_seconds = time.time() - t0
    log(f"{len(clients)} connections open in {open_seconds:.1f} s")
    await asyncio.sleep(args.settle)
    rss_open = sample("all connections open, idle")

    stop = asyncio.Event()
    readers = [asyncio.ensure_future(c.read_loop()) for c in clients]
    workers = [asyncio.ensure_future(traffic(c, args, stats, stop, random.Random(rng.random()),
                                             args.amqp, args.mqtt)) for c in clients]

    async def watch_failures():
        done, _ = await asyncio.wait(readers, return_when=asyncio.FIRST_EXCEPTION)
        for d in done:
            if d.exception() is not None:
                raise d.exception()

    watcher = asyncio.ensure_future(watch_failures())
    t_traffic = time.time()
    deadline = t_traffic + args.duration
    failure = None
    while time.time() < deadline and failure is None:
        try:
            await asyncio.wait_for(asyncio.shield(watcher), min(args.report, deadline - time.time()))
        except asyncio.TimeoutError:
            pass
        except Exception as e:  # a connection failed
            failure = e
            break
        kib = sample("traffic")
        log(f"{time.time() - t_traffic:5.0f} s: published {len(stats.published)}, "
            f"confirmed {len(stats.confirmed)}, received {sum(stats.received.values())}, "
            f"broker RSS {mib(kib)} MiB")
    stop.set()
    await asyncio.gather(*workers)
    traffic_seconds = time.time() - t_traffic
    # Drain: outstanding confirms, then deliveries of everything confirmed.
    drain_deadline = time.time() + args.drain
    while failure is None and time.time() < drain_deadline:
        if watcher.done() and watcher.exception() is not None:
            failure = watcher.exception()
            break
        if (sum(c.outstanding() for c in clients) == 0
                and len(stats.received) >= len(stats.confirmed)):
            break
        await asyncio.sleep(0.2)
    rss_end = sample("end of traffic, connections open")
    for c in clients:
        await c.close()
    await asyncio.sleep(0.5)
    for c in clients:
        c.w.close()
    for t in readers:
        t.cancel()
    watcher.cancel()
    await asyncio.gather(*readers, watcher, return_exceptions=True)
    await asyncio.sleep(args.settle)
    rss_closed = sample("all connections closed")

    received_ids = set(stats.received)
    lost = [i for i in stats.confirmed if i not in received_ids]
    dups = {i: n for i, n in stats.received.items() if n > 1}
    unknown = [i for i in received_ids if i not in stats.published]
    unconfirmed = [i for i in stats.published if i not in stats.confirmed
                   and i not in stats.nacked]
    n = len(clients)
    by_proto = Counter(stats.published.values())
    result = {
        "broker": args.label,
        "connections": {"amqp": args.amqp, "mqtt": args.mqtt, "total": n},
        "duration_s": round(traffic_seconds, 1),
        "interval_s": args.interval,
        "message_size": args.size,
        "open_seconds": round(open_seconds, 1),
        "published": len(stats.published),
        "published_amqp": by_proto["amqp"],
        "published_mqtt": by_proto["mqtt"],
        "confirmed": len(stats.confirmed),
        "received": sum(stats.received.values()),
        "lost": len(lost),
        "duplicated": len(dups),
        "unknown": len(unknown),
        "nacked": len(stats.nacked),
        "unconfirmed": len(unconfirmed),
        "errors": stats.errors[:5] + ([repr(failure)] if failure else []),
        "latency_ms": {
            "p50": round(1000 * percentile(stats.latencies, 50), 1) if stats.latencies else None,
            "p99": round(1000 * percentile(stats.latencies, 99), 1) if stats.latencies else None,
            "max": round(1000 * max(stats.latencies), 1) if stats.latencies else None,
        },
        "rss_mib": {"fresh": mib(rss_fresh), "open": mib(rss_open), "end": mib(rss_end),
                    "closed": mib(rss_closed)},
        "kib_per_connection": {
            "idle": round((rss_open - rss_fresh) / n, 1),
            "after_traffic": round((rss_end - rss_fresh) / n, 1),
        },
        "samples": samples,
        "examples": {"lost": sorted(lost)[:5], "duplicated": sorted(dups)[:5],
                     "unconfirmed": sorted(unconfirmed)[:5]},
    }
    ok = (not failure and not stats.errors and not lost and not dups and not unknown
          and not stats.nacked and not unconfirmed and len(stats.published) > 0)
    result["ok"] = ok
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--amqp", type=int, default=5000, help="AMQP connections")
    ap.add_argument("--mqtt", type=int, default=5000, help="MQTT connections")
    ap.add_argument("--duration", type=float, default=300, help="seconds of traffic")
    ap.add_argument("--interval", type=float, default=10,
                    help="seconds between two publishes of one connection")
    ap.add_argument("--size", type=int, default=100, help="message body bytes")
    ap.add_argument("--prefetch", type=int, default=100, help="AMQP consumer prefetch")
    ap.add_argument("--heartbeat", type=int, default=60,
                    help="AMQP heartbeat and MQTT keep-alive, seconds")
    ap.add_argument("--batch", type=int, default=200, help="connections opened at once")
    ap.add_argument("--report", type=float, default=30, help="seconds between progress lines")
    ap.add_argument("--drain", type=float, default=60,
                    help="seconds to wait for outstanding confirms and deliveries at the end")
    ap.add_argument("--settle", type=float, default=3,
                    help="seconds to wait before reading memory after opening/closing")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warren", default=os.environ.get(
        "WARREN_BIN", os.path.join(ROOT, "target", "release", "warren")))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--amqp-port", type=int, help="use a running broker (with --pid)")
    ap.add_argument("--mqtt-port", type=int)
    ap.add_argument("--pid", type=int, help="the running broker's process, for its RSS")
    ap.add_argument("--user", default="guest")
    ap.add_argument("--password", default="guest")
    ap.add_argument("--label", default=None, help="broker name in the results")
    ap.add_argument("--self-test-drop", type=int, default=0,
                    help="forget this many deliveries (to check that the check fails)")
    ap.add_argument("--self-test-duplicate", type=int, default=0,
                    help="count this many deliveries twice (likewise)")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.amqp + args.mqtt + 100
    if hard < need:
        sys.exit(f"RLIMIT_NOFILE hard limit {hard} < {need} needed")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    proc = data = None
    if args.amqp_port is None:
        proc, data = start_warren(args)
        args.pid = proc.pid
        args.label = args.label or "warren"
        log(f"warren pid {proc.pid}: AMQP {args.amqp_port}, MQTT {args.mqtt_port}, data {data}")
    elif args.pid is None or (args.mqtt and args.mqtt_port is None):
        sys.exit("with --amqp-port give --pid (and --mqtt-port if --mqtt > 0)")
    args.label = args.label or "external"
    try:
        result = asyncio.run(run(args))
        if proc is not None and proc.poll() is not None:
            result["ok"] = False
            result["errors"].append(f"warren exited with {proc.returncode}")
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            shutil.rmtree(data, ignore_errors=True)
    print(json.dumps(result))
    log("OK" if result["ok"] else "FAILED: lost, duplicated, unconfirmed messages or errors")
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
