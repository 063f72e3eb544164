"""Stream queues (`x-queue-type: stream`) over AMQP 0-9-1 with pika: declaration rules,
consuming with every `x-stream-offset` form, acks as credit, several consumers at their
own offsets, retention by size and by age, filtering, and the operations streams refuse.

Runs against Warren and, in differential mode, against the reference RabbitMQ (3.10:
filtering, a 3.13 feature, is Warren-only there). Restart and kill -9 replays are in
test_streams_durability.py.
"""

import datetime
import time

import pika
import pytest

from helpers import channel_closed, connection_closed, skip_on_reference

STREAM = {"x-queue-type": "stream"}


def declare_stream(ch, name, **args):
    ch.queue_declare(name, durable=True, arguments={**STREAM, **args})


def publish(ch, name, bodies, headers=None):
    """Publishes with confirms (pika waits for each), so each message is its own chunk
    on RabbitMQ and `last` means the last message on both brokers."""
    ch.confirm_delivery()
    for b in bodies:
        ch.basic_publish("", name, b, pika.BasicProperties(headers=headers))


class Reader:
    """A consumer on its own connection: collects (offset, body, headers)."""

    def __init__(self, broker, queue, offset=None, prefetch=100, ack=True, args=None):
        self.conn = broker.connect()
        self.ch = self.conn.channel()
        self.ch.basic_qos(prefetch_count=prefetch)
        self.got = []
        self.unacked = []
        a = dict(args or {})
        if offset is not None:
            a["x-stream-offset"] = offset
        self.ack = ack

        def on(ch, m, p, b):
            h = p.headers or {}
            self.got.append((h.get("x-stream-offset"), b, h, m.redelivered))
            if self.ack:
                ch.basic_ack(m.delivery_tag)
            else:
                self.unacked.append(m.delivery_tag)

        self.tag = self.ch.basic_consume(queue, on, arguments=a)

    def wait(self, n, timeout=10.0):
        deadline = time.time() + timeout
        while len(self.got) < n and time.time() < deadline:
            self.conn.process_data_events(0.05)
        return self.got

    def settle(self, seconds=0.5):
        deadline = time.time() + seconds
        while time.time() < deadline:
            self.conn.process_data_events(0.05)
        return self.got

    def bodies(self):
        return [b for _, b, _, _ in self.got]

    def offsets(self):
        return [o for o, _, _, _ in self.got]

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


@pytest.fixture
def stream(broker, uniq):
    """A fresh stream holding m0..m9 (offsets 0..9)."""
    name = uniq("s")
    c = broker.connect()
    ch = c.channel()
    declare_stream(ch, name)
    publish(ch, name, [b"m%d" % i for i in range(10)])
    yield name
    try:
        ch = c.channel()
        ch.queue_delete(name)
        c.close()
    except Exception:
        pass


# ---------------------------------------------------------------- declaration


@pytest.mark.parametrize(
    "props,word",
    [
        ({"durable": False}, "non-durable"),
        ({"durable": True, "exclusive": True}, "exclusive-owner"),
        ({"durable": True, "auto_delete": True}, "auto-delete"),
    ],
)
def test_declare_refuses_what_a_stream_cannot_be(broker, uniq, props, word):
    c = broker.connect()
    ch = c.channel()
    name = uniq("s")
    with channel_closed(406, f"PRECONDITION_FAILED - invalid property '{word}' for queue '{name}' in vhost '/'"):
        ch.queue_declare(name, arguments=STREAM, **props)
    c.close()


def test_declare_checks_max_age_and_equivalence(broker, uniq):
    c = broker.connect()
    name = uniq("s")
    ch = c.channel()
    with channel_closed(406, f"PRECONDITION_FAILED - invalid arg 'x-max-age' for queue '{name}' in vhost '/': invalid_max_age"):
        ch.queue_declare(name, durable=True, arguments={**STREAM, "x-max-age": "7X"})
    ch = c.channel()
    for age in ("7D", "12h", "30m", "10s", "1Y", "2M"):
        ch.queue_declare(f"{name}.{age}", durable=True, arguments={**STREAM, "x-max-age": age})
        ch.queue_delete(f"{name}.{age}")
    declare_stream(ch, name)
    ok = ch.queue_declare(name, durable=True, arguments=STREAM)
    assert ok.method.message_count == 0
    with channel_closed(
        406,
        f"PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '{name}' in vhost '/': "
        "received none but current is the value 'stream' of type 'longstr'",
    ):
        ch.queue_declare(name, durable=True)
    ch = c.channel()
    ch.queue_delete(name)
    c.close()


@pytest.mark.parametrize("arg,value", [
    ("x-expires", 1000), ("x-message-ttl", 1000), ("x-max-length", 10),
    ("x-max-priority", 5), ("x-dead-letter-exchange", "dlx"),
    ("x-single-active-consumer", True), ("x-overflow", "reject-publish"),
])
def test_declare_refuses_queue_arguments_streams_do_not_have(broker, uniq, arg, value):
    c = broker.connect()
    ch = c.channel()
    name = uniq("s")
    with channel_closed(406, f"PRECONDITION_FAILED - invalid arg '{arg}' for queue '{name}' in vhost '/' of queue type rabbit_stream_queue"):
        ch.queue_declare(name, durable=True, arguments={**STREAM, arg: value})
    c.close()


# ---------------------------------------------------------------- refused operations


def test_consume_needs_a_prefetch_and_manual_acks(broker, stream):
    c = broker.connect()
    ch = c.channel()
    with channel_closed(406, f"PRECONDITION_FAILED - consumer prefetch count is not set for 'queue '{stream}' in vhost '/''"):
        ch.basic_consume(stream, lambda *a: None)
        c.process_data_events(1)
    ch = c.channel()
    ch.basic_qos(prefetch_count=10)
    with connection_closed(540, f"NOT_IMPLEMENTED - automatic acknowledgement not supported by stream queues queue '{stream}' in vhost '/'"):
        ch.basic_consume(stream, lambda *a: None, auto_ack=True)
        c.process_data_events(1)


@pytest.mark.parametrize("op", ["get", "purge"])
def test_get_and_purge_are_refused(broker, stream, op):
    c = broker.connect()
    ch = c.channel()
    what = {"get": "basic.get", "purge": "queue.purge"}[op]
    with connection_closed(540, f"NOT_IMPLEMENTED - {what} not supported by stream queues queue '{stream}' in vhost '/'"):
        if op == "get":
            ch.basic_get(stream)
        else:
            ch.queue_purge(stream)


def test_nack_is_refused_and_the_stream_keeps_everything(broker, stream):
    r = Reader(broker, stream, offset="first", ack=False)
    r.wait(10)
    with connection_closed(540, f"NOT_IMPLEMENTED - basic.nack and basic.reject not supported by stream queues queue '{stream}' in vhost '/'"):
        r.ch.basic_nack(r.unacked[0], requeue=True)
        r.conn.process_data_events(1)
        r.conn.process_data_events(1)
    again = Reader(broker, stream, offset="first")
    assert again.wait(10) and again.bodies() == [b"m%d" % i for i in range(10)]
    again.close()


# ---------------------------------------------------------------- offsets


def test_first_replays_everything_with_offset_headers(broker, stream):
    r = Reader(broker, stream, offset="first")
    r.wait(10)
    assert r.bodies() == [b"m%d" % i for i in range(10)]
    assert r.offsets() == list(range(10))
    assert not any(red for *_, red in r.got)
    # Consuming removed nothing: a second pass sees the same log.
    r2 = Reader(broker, stream, offset="first")
    r2.wait(10)
    assert r2.offsets() == list(range(10))
    if not broker.is_reference:
        # (RabbitMQ's count for a stream lags: it comes from periodic statistics.)
        c = broker.connect()
        assert c.channel().queue_declare(stream, passive=True).method.message_count == 10
        c.close()
    for x in (r, r2):
        x.close()


@pytest.mark.parametrize("n", [0, 3, 9])
def test_numeric_offset(broker, stream, n):
    r = Reader(broker, stream, offset=n)
    r.wait(10 - n)
    r.settle(0.3)
    assert r.offsets() == list(range(n, 10))
    r.close()


def test_offset_past_the_end_waits_for_that_offset(broker, stream):
    r = Reader(broker, stream, offset=12)
    assert r.settle(0.5) == []
    c = broker.connect()
    publish(c.channel(), stream, [b"a", b"b", b"c", b"d"])
    r.wait(2)
    r.settle(0.2)
    assert r.bodies() == [b"c", b"d"] and r.offsets() == [12, 13]
    r.close()
    c.close()


def test_last_next_and_default(broker, stream):
    last = Reader(broker, stream, offset="last")
    nxt = Reader(broker, stream, offset="next")
    default = Reader(broker, stream)
    last.wait(1)
    nxt.settle(0.3)
    assert last.bodies() == [b"m9"]
    assert nxt.got == [] and default.got == []
    c = broker.connect()
    publish(c.channel(), stream, [b"a", b"b"])
    for r in (last, nxt, default):
        r.wait(len(r.got) + 2)
    assert last.bodies() == [b"m9", b"a", b"b"]
    assert nxt.bodies() == [b"a", b"b"] and nxt.offsets() == [10, 11]
    assert default.bodies() == [b"a", b"b"]
    for r in (last, nxt, default):
        r.close()
    c.close()


def test_timestamp_and_interval_offsets(broker, uniq):
    name = uniq("s")
    c = broker.connect()
    ch = c.channel()
    declare_stream(ch, name)
    publish(ch, name, [b"old%d" % i for i in range(3)])
    time.sleep(2.2)
    cut = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(seconds=1)
    time.sleep(1.2)
    publish(ch, name, [b"new%d" % i for i in range(3)])
    by_time = Reader(broker, name, offset=cut.replace(tzinfo=None))
    by_time.wait(3)
    by_time.settle(0.3)
    assert by_time.bodies() == [b"new0", b"new1", b"new2"]
    # An interval: the messages of the last two seconds.
    by_interval = Reader(broker, name, offset="2s")
    by_interval.wait(3)
    by_interval.settle(0.3)
    assert by_interval.bodies() == [b"new0", b"new1", b"new2"]
    for r in (by_time, by_interval):
        r.close()
    ch.queue_delete(name)
    c.close()


def test_invalid_offset_is_refused(broker, stream):
    skip_on_reference(broker, "RabbitMQ 3.10 crashes the channel with 541 INTERNAL_ERROR")
    c = broker.connect()
    ch = c.channel()
    ch.basic_qos(prefetch_count=10)
    with channel_closed(406, "PRECONDITION_FAILED - invalid x-stream-offset 'bogus'"):
        ch.basic_consume(stream, lambda *a: None, arguments={"x-stream-offset": "bogus"})
        c.process_data_events(1)
    c.close()


# ---------------------------------------------------------------- consumers


def test_acks_are_credit_and_consumers_read_at_their_own_pace(broker, stream):
    slow = Reader(broker, stream, offset="first", prefetch=3, ack=False)
    fast = Reader(broker, stream, offset=5)
    slow.wait(3)
    slow.settle(0.3)
    fast.wait(5)
    assert slow.offsets() == [0, 1, 2], "the prefetch bounds what is outstanding"
    assert fast.offsets() == [5, 6, 7, 8, 9]
    slow.ch.basic_ack(slow.unacked[-1], multiple=True)
    slow.wait(6)
    slow.settle(0.3)
    assert slow.offsets() == [0, 1, 2, 3, 4, 5]
    c = broker.connect()
    publish(c.channel(), stream, [b"live"])
    fast.wait(6)
    assert fast.bodies()[-1] == b"live"
    slow.ch.basic_ack(slow.unacked[-1], multiple=True)
    slow.wait(9)
    slow.settle(0.3)
    assert slow.offsets() == list(range(9))
    slow.ch.basic_ack(slow.unacked[-1], multiple=True)
    slow.wait(11)
    assert slow.offsets() == list(range(11))
    for r in (slow, fast):
        r.close()
    c.close()


def test_a_cancelled_consumer_starts_again_wherever_it_asks(broker, stream):
    r = Reader(broker, stream, offset="first", prefetch=2, ack=False)
    r.wait(2)
    r.ch.basic_cancel(r.tag)
    r.ch.close()
    ch = r.conn.channel()
    ch.basic_qos(prefetch_count=100)
    got = []
    ch.basic_consume(stream, lambda c, m, p, b: (got.append(p.headers["x-stream-offset"]), c.basic_ack(m.delivery_tag)),
                     arguments={"x-stream-offset": 1})
    deadline = time.time() + 5
    while len(got) < 9 and time.time() < deadline:
        r.conn.process_data_events(0.05)
    assert got == list(range(1, 10))
    r.close()


def test_many_messages_and_large_bodies_round_trip(broker, uniq):
    name = uniq("s")
    c = broker.connect()
    ch = c.channel()
    declare_stream(ch, name)
    bodies = [bytes([i % 251]) * (i * 37 % 5000) for i in range(500)]
    ch.confirm_delivery()
    for b in bodies:
        ch.basic_publish("", name, b)
    big = b"x" * (1 << 20)
    ch.basic_publish("", name, big)
    r = Reader(broker, name, offset="first", prefetch=50)
    r.wait(501, timeout=30)
    assert r.bodies() == bodies + [big]
    assert r.offsets() == list(range(501))
    r.close()
    ch.queue_delete(name)
    c.close()


# ---------------------------------------------------------------- retention


def test_retention_by_size_removes_whole_old_segments(broker, uniq):
    name = uniq("s")
    c = broker.connect()
    ch = c.channel()
    declare_stream(ch, name, **{"x-max-length-bytes": 20000, "x-stream-max-segment-size-bytes": 5000})
    ch.confirm_delivery()
    for i in range(400):
        ch.basic_publish("", name, b"%04d" % i + b"." * 96)
    r = Reader(broker, name, offset="first", prefetch=500)
    r.settle(1.0)
    offsets, bodies = r.offsets(), r.bodies()
    assert offsets, "the newest segments stay"
    assert offsets == sorted(set(offsets))
    first = int(bodies[0][:4])
    assert first > 0, "nothing was removed"
    # Whole segments went from the front: what is left is the tail, complete.
    assert bodies == [b"%04d" % i + b"." * 96 for i in range(first, 400)]
    if not broker.is_reference:
        # (RabbitMQ's offsets may skip numbers: its log holds entries of its own.)
        assert offsets == list(range(first, 400))
    r.close()
    ch.queue_delete(name)
    c.close()


def test_retention_by_age(broker, uniq):
    name = uniq("s")
    c = broker.connect()
    ch = c.channel()
    declare_stream(ch, name, **{"x-max-age": "2s", "x-stream-max-segment-size-bytes": 3000})
    ch.confirm_delivery()
    for i in range(100):
        ch.basic_publish("", name, b"old%03d" % i + b"." * 50)
    time.sleep(3.5)
    # Retention runs when a segment fills up: new messages roll segments.
    for i in range(100):
        ch.basic_publish("", name, b"new%03d" % i + b"." * 50)
    r = Reader(broker, name, offset="first", prefetch=500)
    r.settle(1.0)
    bodies = r.bodies()
    assert bodies[-1].startswith(b"new099")
    old = [b for b in bodies if b.startswith(b"old")]
    assert len(old) < 100, "segments older than x-max-age were kept"
    r.close()
    ch.queue_delete(name)
    c.close()


# ---------------------------------------------------------------- filtering (3.13+)


def test_filtering_by_value(broker, uniq):
    skip_on_reference(broker, "stream filtering is RabbitMQ 3.13+; the reference is 3.10")
    name = uniq("s")
    c = broker.connect()
    ch = c.channel()
    declare_stream(ch, name)
    ch.confirm_delivery()
    for i, v in enumerate(["red", "blue", None, "red", "green", None, "blue"]):
        headers = {"x-stream-filter-value": v} if v else None
        ch.basic_publish("", name, b"%d" % i, pika.BasicProperties(headers=headers))
    red = Reader(broker, name, offset="first", args={"x-stream-filter": "red"})
    several = Reader(broker, name, offset="first",
                     args={"x-stream-filter": ["blue", "green"], "x-stream-match-unfiltered": True})
    red.settle(0.8)
    several.settle(0.3)
    assert red.bodies() == [b"0", b"3"]
    assert several.bodies() == [b"1", b"2", b"4", b"5", b"6"]
    assert several.offsets() == [1, 2, 4, 5, 6]
    ch.basic_publish("", name, b"7", pika.BasicProperties(headers={"x-stream-filter-value": "red"}))
    red.wait(3)
    assert red.bodies() == [b"0", b"3", b"7"]
    for r in (red, several):
        r.close()
    ch.queue_delete(name)
    c.close()


# ---------------------------------------------------------------- routing


def test_a_stream_bound_to_an_exchange_gets_routed_messages(broker, uniq):
    name = uniq("s")
    ex = uniq("x")
    c = broker.connect()
    ch = c.channel()
    declare_stream(ch, name)
    ch.exchange_declare(ex, "fanout")
    ch.queue_bind(name, ex)
    ch.confirm_delivery()
    for i in range(5):
        ch.basic_publish(ex, "", b"f%d" % i, pika.BasicProperties(headers={"k": i}))
    r = Reader(broker, name, offset="first")
    r.wait(5)
    assert r.bodies() == [b"f%d" % i for i in range(5)]
    # The client's own headers stay, with the offset added.
    assert [h["k"] for _, _, h, _ in r.got] == list(range(5))
    r.close()
    ch.queue_delete(name)
    ch.exchange_delete(ex)
    c.close()
