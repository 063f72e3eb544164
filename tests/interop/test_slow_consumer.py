"""A consumer that stops reading its socket (Warren only: the checks read the broker's RSS).

A stalled consumer must cost the broker a bounded amount of memory, however much is
published to its queues: the broker stops handing it deliveries once its connection's
output is backed up, and what it has not delivered stays in the queue (which keeps a
backlog on disk, not in memory). Other consumers, on other queues and on the same queue,
keep receiving at their own pace. When the stalled client reads again, it gets the rest:
no message is lost or delivered twice.

The stalled client is a raw socket with a small receive buffer that the test simply does
not read; the healthy clients and the publisher are pika (AMQP) or raw MQTT sockets read
by a thread.
"""

import socket
import struct
import threading
import time

import pika
import pytest

import amqp_raw as ar
from test_cross_protocol_fixtures import (connect_packet, spawn_proto,
                                          subscribe_packet)

BODY = 64 << 10
COUNT = 3000
# Growth of the broker's heap allowed while the stalled consumer's backlog builds up (it
# measured 30-60 MiB): the output buffer bound (1 MiB), each queue's in-memory tail and
# cache (4 + 4 MiB, whose bodies pin the read buffers they were sliced from), the healthy
# consumers' unacknowledged messages, allocator slack. Without the bounds, the whole
# backlog (187.5 MiB) would stay in memory.
RSS_BOUND = 80 << 20


@pytest.fixture(autouse=True)
def warren_only(broker):
    if broker.is_reference:
        pytest.skip("measures Warren's resident memory")


def rss_anon(pid):
    """Resident anonymous memory: the heap. (Resident file pages are the queue segments
    mapped for writing and reading: page cache the kernel reclaims at will.)"""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


class RssWatch:
    """Samples a process's anonymous RSS every 20 ms in a thread; `peak` is the highest."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, rss_anon(pid), threading.Event()
        self.base = self.peak
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, rss_anon(self.pid))

    def growth(self):
        self.stop.set()
        self.t.join()
        self.peak = max(self.peak, rss_anon(self.pid))
        return self.peak - self.base


def body(i):
    return b"%08d" % i + b"." * (BODY - 8)


def stalled_socket(port):
    """A socket whose kernel receive buffer is small: the broker's writes back up soon."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


class PikaConsumers(threading.Thread):
    """One pika connection consuming several queues (prefetch 20, acks), in a thread."""

    def __init__(self, port, queues):
        super().__init__(daemon=True)
        self.port, self.queues = port, queues
        self.got = {q: [] for q in queues}
        self.last = {q: None for q in queues}
        self.ready, self.halt = threading.Event(), threading.Event()
        self.error = None

    def run(self):
        try:
            c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", self.port))
            for q in self.queues:
                ch = c.channel()
                ch.basic_qos(prefetch_count=20)

                def on(ch, method, props, b, q=q):
                    self.got[q].append(int(b[:8]))
                    self.last[q] = time.monotonic()
                    ch.basic_ack(method.delivery_tag)

                ch.basic_consume(q, on)
            self.ready.set()
            while not self.halt.is_set():
                c.process_data_events(time_limit=0.05)
            c.close()
        except Exception as e:  # reported by the test
            self.error = e
            self.ready.set()


def read_deliveries(c, got, ack, until, timeout):
    """Reads `basic.deliver`s from a raw connection, appending each body's index to
    got[consumer tag] (acking in batches when `ack`), until `until()` or the timeout."""
    deadline = time.monotonic() + timeout
    tag = None
    last_tag, unacked = 0, 0
    while not until():
        try:
            fr = c.read_frame(timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        if fr.type == ar.FRAME_METHOD:
            m = ar.decode_method(fr)
            if m.name == "basic.deliver":
                tag, last_tag = m.args[0], m.args[1]
        elif fr.type == ar.FRAME_BODY:
            got[tag].append(int(fr.payload[:8]))
            unacked += 1
            if ack and unacked >= 50:
                c.send_method(1, "basic.ack", last_tag, True)
                unacked = 0
        if time.monotonic() > deadline:
            break
    if ack and unacked:
        c.send_method(1, "basic.ack", last_tag, True)


def exactly_once(indexes, n):
    return sorted(indexes) == list(range(n))


@pytest.mark.parametrize("mode", ["no-ack", "unlimited-prefetch"])
def test_a_stalled_amqp_consumer_costs_bounded_memory_and_others_keep_receiving(mode, uniq):
    no_ack = mode == "no-ack"
    with spawn_proto() as holder:
        p = holder["p"]
        pub = p.amqp()
        ch = pub.channel()
        x, shared, alone, other = uniq("x"), uniq("shared"), uniq("alone"), uniq("other")
        ch.exchange_declare(x, "fanout")
        for q in (shared, alone, other):
            ch.queue_declare(q)
            ch.queue_bind(q, x)

        # The stalled client: consumers on `shared` (next to a healthy one) and `alone`.
        c = ar.RawConnection(stalled_socket(p.amqp_port))
        c.send(ar.PROTOCOL_HEADER)
        c.expect("connection.start")
        c.send_method(0, "connection.start-ok", ar.client_properties(), "PLAIN",
                      ar.plain_response("guest", "guest"), "en_US")
        tune = c.expect("connection.tune").args
        c.send_method(0, "connection.tune-ok", tune[0], tune[1], 0)
        c.send_method(0, "connection.open", "/", "", False)
        c.expect("connection.open-ok")
        c.open_channel(1)
        for q in (shared, alone):
            c.send_method(1, "basic.consume", 0, q, "s-" + q, False, no_ack, False, False, {})
            c.expect("basic.consume-ok")

        healthy = PikaConsumers(p.amqp_port, [shared, other])
        healthy.start()
        assert healthy.ready.wait(10) and healthy.error is None, healthy.error

        watch = RssWatch(p.proc.pid)
        t0 = time.monotonic()
        for i in range(COUNT):
            ch.basic_publish(x, "", body(i))
        published_in = time.monotonic() - t0

        # Healthy consumers keep up: everything on their own queue, and on the shared one
        # everything but what the stalled consumer took before its output backed up.
        assert wait_for(lambda: len(healthy.got[other]) == COUNT, 20), len(healthy.got[other])
        assert healthy.last[other] - t0 < published_in + 10
        assert wait_for(lambda: pub.channel().queue_declare(shared, passive=True)
                        .method.message_count == 0, 10)
        growth = watch.growth()
        assert growth < RSS_BOUND, f"heap grew {growth >> 20} MiB for a stalled consumer"
        stalled_shared = COUNT - len(healthy.got[shared])
        assert stalled_shared * BODY < 16 << 20, stalled_shared
        assert healthy.last[shared] - t0 < published_in + 10

        # The stalled consumer's only queue keeps what it could not take.
        waiting = pub.channel().queue_declare(alone, passive=True).method.message_count
        assert (COUNT - waiting) * BODY < 16 << 20, waiting

        # It reads again: it gets the rest, nothing lost or twice.
        got = {"s-" + shared: [], "s-" + alone: []}
        read_deliveries(c, got, not no_ack, timeout=60, until=lambda: (
            len(got["s-" + alone]) == COUNT
            and len(got["s-" + shared]) + len(healthy.got[shared]) >= COUNT))
        healthy.halt.set()
        healthy.join(10)
        assert exactly_once(got["s-" + alone], COUNT)
        assert exactly_once(got["s-" + shared] + healthy.got[shared], COUNT)
        assert exactly_once(healthy.got[other], COUNT)
        c.close()
        pub.close()


class MqttReader(threading.Thread):
    """A raw MQTT 3.1.1 subscriber read by a thread (PUBACKs QoS 1)."""

    def __init__(self, sock, start_reading=True):
        super().__init__(daemon=True)
        self.s, self.buf, self.got, self.last = sock, b"", [], None
        self.go = threading.Event()
        if start_reading:
            self.go.set()
        self.halt = threading.Event()

    def packet(self):
        while True:
            if len(self.buf) >= 2:
                n, mult, i = 0, 1, 1
                while i < len(self.buf):
                    b = self.buf[i]
                    n += (b & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        break
                else:
                    i = None
                if i is not None and len(self.buf) >= i + n:
                    first, body = self.buf[0], self.buf[i:i + n]
                    self.buf = self.buf[i + n:]
                    return first, body
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed by the broker")
            self.buf += chunk

    def run(self):
        self.go.wait()
        self.s.settimeout(0.2)
        while not self.halt.is_set():
            try:
                first, body = self.packet()
            except socket.timeout:
                continue
            if first >> 4 != 3:
                continue
            qos = (first >> 1) & 3
            tlen, = struct.unpack_from(">H", body)
            at = 2 + tlen
            if qos:
                self.s.sendall(b"\x40\x02" + body[at:at + 2])
                at += 2
            self.got.append(int(body[at:at + 8]))
            self.last = time.monotonic()


def mqtt_subscriber(port, client_id, topic, qos, stalled):
    s = stalled_socket(port) if stalled else socket.create_connection(("127.0.0.1", port), 10)
    s.sendall(connect_packet(client_id, username="guest", password="guest", keepalive=0))
    r = MqttReader(s)
    first, body = r.packet()
    assert first == 0x20 and body[1] == 0, body
    s.sendall(subscribe_packet(1, [(topic, qos)]))
    first, body = r.packet()
    assert first == 0x90 and body[2] == qos, body
    return r


@pytest.mark.parametrize("qos", [0, 1])
def test_a_stalled_mqtt_subscriber_costs_bounded_memory_and_others_keep_receiving(qos, uniq):
    with spawn_proto() as holder:
        p = holder["p"]
        topic = uniq("t").replace(".", "-") + "/x"
        stalled = mqtt_subscriber(p.mqtt_port, uniq("stalled"), topic, qos, stalled=True)
        stalled.go.clear()
        healthy = mqtt_subscriber(p.mqtt_port, uniq("healthy"), topic, qos, stalled=False)
        stalled.start()
        healthy.start()

        pub = p.amqp()
        ch = pub.channel()
        key = topic.replace("/", ".")
        watch = RssWatch(p.proc.pid)
        t0 = time.monotonic()
        for i in range(COUNT):
            ch.basic_publish("amq.topic", key, body(i),
                             pika.BasicProperties(delivery_mode=2 if qos else 1))
        published_in = time.monotonic() - t0

        assert wait_for(lambda: len(healthy.got) == COUNT, 30), len(healthy.got)
        assert healthy.last - t0 < published_in + 10
        growth = watch.growth()
        assert growth < RSS_BOUND, f"heap grew {growth >> 20} MiB for a stalled subscriber"
        assert len(stalled.got) == 0

        # It reads again: every message, once each.
        stalled.go.set()
        assert wait_for(lambda: len(stalled.got) >= COUNT, 60), len(stalled.got)
        time.sleep(0.3)
        for r in (stalled, healthy):
            r.halt.set()
            r.join(5)
        assert exactly_once(stalled.got, COUNT)
        assert exactly_once(healthy.got, COUNT)
        pub.close()
