"""basic.consume / basic.qos / basic.cancel: how a queue dispatches to its consumers."""

import re

import pika
from pika import spec

from helpers import (
    BASIC_CONSUME,
    BASIC_QOS,
    RawClient,
    channel_closed,
    cleanup,  # noqa: F401  (fixture)
    not_found_queue,
    settle,
    wait_until,
)

CTAG = re.compile(r"^amq\.ctag-[A-Za-z0-9_-]{22}$")


class Recorder:
    """Collects deliveries of one consumer: list of (delivery_tag, body, redelivered)."""

    def __init__(self, ch, auto_ack_in_callback=False):
        self.ch = ch
        self.got = []
        self.auto_ack_in_callback = auto_ack_in_callback

    def __call__(self, ch, method, props, body):
        self.got.append((method.delivery_tag, body, method.redelivered))
        if self.auto_ack_in_callback:
            ch.basic_ack(method.delivery_tag)

    @property
    def bodies(self):
        return [b for _, b, _ in self.got]


def total(recs):
    return sum(len(r.got) for r in recs)


def new_queue(ch):
    return ch.queue_declare("", exclusive=True).method.queue


# ---------------------------------------------------------------- round robin


def test_round_robin_unlimited_prefetch(conn):
    ch = conn.channel()
    q = new_queue(ch)
    recs = []
    for _ in range(4):
        c = conn.channel()
        r = Recorder(c)
        c.basic_consume(q, r, auto_ack=True)
        recs.append(r)
    for i in range(12):
        ch.basic_publish("", q, b"%d" % i)
    wait_until(conn, lambda: total(recs) == 12, what="12 deliveries")
    for k, r in enumerate(recs):
        assert r.bodies == [b"%d" % i for i in range(k, 12, 4)]


def test_round_robin_prefetch_one_exact_alternation(conn):
    pub = conn.channel()
    q = new_queue(pub)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=1)  # per consumer
    recs = [Recorder(ch) for _ in range(4)]
    for r in recs:
        ch.basic_consume(q, r)
    for i in range(12):
        pub.basic_publish("", q, b"%d" % i)
    for rnd in range(3):
        n = 4 * (rnd + 1)
        wait_until(conn, lambda: total(recs) == n, what=f"{n} deliveries")
        settle(conn, 0.05)
        assert total(recs) == n  # nobody gets a second message before acking
        for k, r in enumerate(recs):
            assert r.bodies == [b"%d" % i for i in range(k, n, 4)]
        # ack in consumer order: each freed consumer takes the next message
        for r in recs:
            ch.basic_ack(r.got[-1][0])


def test_messages_queued_before_consume_go_to_first_unlimited_consumer(conn):
    ch = conn.channel()
    q = new_queue(ch)
    for i in range(20):
        ch.basic_publish("", q, b"%d" % i)
    c1, c2 = conn.channel(), conn.channel()
    r1, r2 = Recorder(c1), Recorder(c2)
    c1.basic_consume(q, r1)
    c2.basic_consume(q, r2)
    wait_until(conn, lambda: len(r1.got) == 20, what="20 deliveries")
    settle(conn, 0.05)
    assert r2.got == []
    assert r1.bodies == [b"%d" % i for i in range(20)]
    # delivery tags are per channel, starting at 1
    assert [t for t, _, _ in r1.got] == list(range(1, 21))


# ---------------------------------------------------------------- prefetch / qos


def test_fair_dispatch_prefetch_one(conn):
    pub = conn.channel()
    q = new_queue(pub)
    busy_ch, fast_ch = conn.channel(), conn.channel()
    busy_ch.basic_qos(prefetch_count=1)
    fast_ch.basic_qos(prefetch_count=1)
    busy = Recorder(busy_ch)  # never acks
    fast = Recorder(fast_ch, auto_ack_in_callback=True)
    busy_ch.basic_consume(q, busy)
    fast_ch.basic_consume(q, fast)
    for i in range(10):
        pub.basic_publish("", q, b"%d" % i)
    wait_until(conn, lambda: total([busy, fast]) == 10, what="10 deliveries")
    assert busy.bodies == [b"0"]
    assert fast.bodies == [b"%d" % i for i in range(1, 10)]
    # once it acks, the busy consumer gets work again
    busy_ch.basic_ack(busy.got[0][0])
    for i in range(10, 14):
        pub.basic_publish("", q, b"%d" % i)
    wait_until(conn, lambda: total([busy, fast]) == 14, what="14 deliveries")
    assert len(busy.got) == 2  # exactly one more, and it is unacked again
    assert sorted(busy.bodies[1:] + fast.bodies[9:]) == [b"10", b"11", b"12", b"13"]


def test_prefetch_zero_is_unlimited(conn):
    ch = conn.channel()
    q = new_queue(ch)
    for i in range(300):
        ch.basic_publish("", q, b"%d" % i)
    c = conn.channel()
    c.basic_qos(prefetch_count=0)
    r = Recorder(c)
    c.basic_consume(q, r)
    wait_until(conn, lambda: len(r.got) == 300, what="300 unacked deliveries")


def test_per_consumer_prefetch(conn):
    ch = conn.channel()
    q = new_queue(ch)
    c = conn.channel()
    c.basic_qos(prefetch_count=2, global_qos=False)
    r1, r2 = Recorder(c), Recorder(c)
    c.basic_consume(q, r1)
    c.basic_consume(q, r2)
    for i in range(10):
        ch.basic_publish("", q, b"%d" % i)
    wait_until(conn, lambda: total([r1, r2]) == 4, what="4 deliveries")
    settle(conn, 0.1)
    assert (len(r1.got), len(r2.got)) == (2, 2)


def test_per_consumer_prefetch_applies_to_later_consumers_only(conn):
    ch = conn.channel()
    q = new_queue(ch)
    c = conn.channel()
    c.basic_qos(prefetch_count=1)
    r1 = Recorder(c)
    c.basic_consume(q, r1)
    c.basic_qos(prefetch_count=3)
    r2 = Recorder(c)
    c.basic_consume(q, r2)
    for i in range(10):
        ch.basic_publish("", q, b"%d" % i)
    wait_until(conn, lambda: total([r1, r2]) == 4, what="4 deliveries")
    settle(conn, 0.1)
    assert (len(r1.got), len(r2.got)) == (1, 3)


def test_global_prefetch_shared_by_channel_consumers(conn):
    ch = conn.channel()
    q = new_queue(ch)
    c = conn.channel()
    c.basic_qos(prefetch_count=3, global_qos=True)
    recs = [Recorder(c) for _ in range(3)]
    for r in recs:
        c.basic_consume(q, r)
    for i in range(12):
        ch.basic_publish("", q, b"%d" % i)
    wait_until(conn, lambda: total(recs) == 3, what="3 deliveries")
    settle(conn, 0.1)
    assert total(recs) == 3
    # one ack frees one slot on the channel
    first = next(r for r in recs if r.got)
    c.basic_ack(first.got[0][0])
    wait_until(conn, lambda: total(recs) == 4, what="4th delivery")
    settle(conn, 0.1)
    assert total(recs) == 4


def test_global_and_per_consumer_limits_both_apply(conn):
    ch = conn.channel()
    q = new_queue(ch)
    c = conn.channel()
    c.basic_qos(prefetch_count=2, global_qos=False)
    c.basic_qos(prefetch_count=3, global_qos=True)
    recs = [Recorder(c) for _ in range(3)]
    for r in recs:
        c.basic_consume(q, r)
    for i in range(12):
        ch.basic_publish("", q, b"%d" % i)
    wait_until(conn, lambda: total(recs) == 3, what="3 deliveries")
    settle(conn, 0.1)
    assert total(recs) == 3
    assert max(len(r.got) for r in recs) <= 2


def test_global_prefetch_spans_queues(conn):
    ch = conn.channel()
    q1, q2 = new_queue(ch), new_queue(ch)
    c = conn.channel()
    c.basic_qos(prefetch_count=2, global_qos=True)
    r1, r2 = Recorder(c), Recorder(c)
    c.basic_consume(q1, r1)
    c.basic_consume(q2, r2)
    for i in range(5):
        ch.basic_publish("", q1, b"a%d" % i)
        ch.basic_publish("", q2, b"b%d" % i)
    wait_until(conn, lambda: total([r1, r2]) == 2, what="2 deliveries")
    settle(conn, 0.1)
    assert total([r1, r2]) == 2


def test_qos_prefetch_size_not_implemented(broker):
    raw = RawClient(broker)
    try:
        raw.send(spec.Basic.Qos(prefetch_size=10, prefetch_count=0))
        fr = raw.next_method()
        m = fr.method
        assert fr.channel_number == 0
        assert isinstance(m, spec.Connection.Close)
        assert (m.reply_code, m.reply_text, m.class_id, m.method_id) == (
            540, "NOT_IMPLEMENTED - prefetch_size!=0 (10)") + BASIC_QOS
    finally:
        raw.close()


def test_qos_ok(broker):
    raw = RawClient(broker)
    try:
        raw.rpc(spec.Basic.Qos(prefetch_count=65535), spec.Basic.QosOk)
        raw.rpc(spec.Basic.Qos(prefetch_count=5, global_qos=True), spec.Basic.QosOk)
        raw.rpc(spec.Basic.Qos(prefetch_count=0), spec.Basic.QosOk)
    finally:
        raw.close()


# ---------------------------------------------------------------- tags / cancel


def test_server_generated_consumer_tag(broker):
    raw = RawClient(broker)
    try:
        q = raw.rpc(spec.Queue.Declare(queue="", exclusive=True), spec.Queue.DeclareOk).queue
        tags = set()
        for _ in range(3):
            ok = raw.rpc(spec.Basic.Consume(queue=q, consumer_tag=""), spec.Basic.ConsumeOk)
            assert CTAG.match(ok.consumer_tag), ok.consumer_tag
            tags.add(ok.consumer_tag)
        assert len(tags) == 3
        # deliveries carry the generated tag
        raw.publish("", q, b"m")
        fr = raw.next_method()
        assert isinstance(fr.method, spec.Basic.Deliver)
        assert fr.method.consumer_tag in tags
    finally:
        raw.close()


def test_client_consumer_tag_echoed(ch):
    q = new_queue(ch)
    tag = ch.basic_consume(q, lambda *a: None, consumer_tag="my-tag")
    assert tag == "my-tag"
    ch.basic_publish("", q, b"m")
    got = []
    ch.basic_cancel("my-tag")
    ch.basic_consume(q, lambda c, m, p, b: got.append(m.consumer_tag), consumer_tag="tag-2")
    wait_until(ch.connection, lambda: got, what="delivery")
    assert got == ["tag-2"]


def test_duplicate_consumer_tag_same_channel_is_connection_error(broker):
    raw = RawClient(broker)
    try:
        q = raw.rpc(spec.Queue.Declare(queue="", exclusive=True), spec.Queue.DeclareOk).queue
        raw.rpc(spec.Basic.Consume(queue=q, consumer_tag="dup"), spec.Basic.ConsumeOk)
        raw.send(spec.Basic.Consume(queue=q, consumer_tag="dup"))
        fr = raw.next_method()
        m = fr.method
        assert fr.channel_number == 0 and isinstance(m, spec.Connection.Close)
        assert (m.reply_code, m.reply_text, m.class_id, m.method_id) == (
            530, "NOT_ALLOWED - attempt to reuse consumer tag 'dup'") + BASIC_CONSUME
    finally:
        raw.close()


def test_duplicate_consumer_tag_with_server_generated_tag(broker):
    raw = RawClient(broker)
    try:
        q = raw.rpc(spec.Queue.Declare(queue="", exclusive=True), spec.Queue.DeclareOk).queue
        tag = raw.rpc(spec.Basic.Consume(queue=q, consumer_tag=""), spec.Basic.ConsumeOk).consumer_tag
        raw.send(spec.Basic.Consume(queue=q, consumer_tag=tag))
        m = raw.next_method().method
        assert (m.NAME, m.reply_code, m.reply_text) == (
            "Connection.Close", 530, f"NOT_ALLOWED - attempt to reuse consumer tag '{tag}'")
    finally:
        raw.close()


def test_same_consumer_tag_on_other_channel_ok(conn):
    ch = conn.channel()
    q = new_queue(ch)
    ch.basic_consume(q, lambda *a: None, consumer_tag="shared-tag")
    other = conn.channel()
    assert other.basic_consume(q, lambda *a: None, consumer_tag="shared-tag") == "shared-tag"
    assert ch.queue_declare(q, passive=True).method.consumer_count == 2


def test_tag_reusable_after_cancel(broker):
    raw = RawClient(broker)
    try:
        q = raw.rpc(spec.Queue.Declare(queue="", exclusive=True), spec.Queue.DeclareOk).queue
        raw.rpc(spec.Basic.Consume(queue=q, consumer_tag="t"), spec.Basic.ConsumeOk)
        ok = raw.rpc(spec.Basic.Cancel(consumer_tag="t"), spec.Basic.CancelOk)
        assert ok.consumer_tag == "t"
        assert raw.rpc(spec.Basic.Consume(queue=q, consumer_tag="t"),
                       spec.Basic.ConsumeOk).consumer_tag == "t"
    finally:
        raw.close()


def test_cancel_unknown_tag_is_ok(broker):
    raw = RawClient(broker)
    try:
        ok = raw.rpc(spec.Basic.Cancel(consumer_tag="never-existed"), spec.Basic.CancelOk)
        assert ok.consumer_tag == "never-existed"
        # channel still usable
        raw.rpc(spec.Queue.Declare(queue="", exclusive=True), spec.Queue.DeclareOk)
    finally:
        raw.close()


def test_cancel_stops_deliveries_and_keeps_unacked(conn):
    pub = conn.channel()
    q = new_queue(pub)
    c = conn.channel()
    r = Recorder(c)
    tag = c.basic_consume(q, r)
    pub.basic_publish("", q, b"1")
    wait_until(conn, lambda: len(r.got) == 1, what="first delivery")
    assert c.basic_cancel(tag) == []
    assert pub.queue_declare(q, passive=True).method.consumer_count == 0
    pub.basic_publish("", q, b"2")
    settle(conn, 0.1)
    assert r.bodies == [b"1"]
    # the unacked message of the cancelled consumer can still be acked
    c.basic_ack(r.got[0][0])
    m, _p, b = pub.basic_get(q, auto_ack=True)
    assert (b, m.redelivered) == (b"2", False)
    assert pub.basic_get(q)[0] is None


def test_cancel_ok_frame(broker):
    raw = RawClient(broker)
    try:
        q = raw.rpc(spec.Queue.Declare(queue="", exclusive=True), spec.Queue.DeclareOk).queue
        raw.rpc(spec.Basic.Consume(queue=q, consumer_tag="c1"), spec.Basic.ConsumeOk)
        assert raw.rpc(spec.Basic.Cancel(consumer_tag="c1"), spec.Basic.CancelOk).consumer_tag == "c1"
    finally:
        raw.close()


def test_consume_missing_queue(conn, uniq):
    ch = conn.channel()
    name = uniq("missing")
    with channel_closed(404, not_found_queue(name), BASIC_CONSUME):
        ch.basic_consume(name, lambda *a: None)
    assert conn.is_open


def test_no_ack_consumer(conn):
    ch = conn.channel()
    q = new_queue(ch)
    r = Recorder(ch)
    ch.basic_consume(q, r, auto_ack=True)
    for i in range(5):
        ch.basic_publish("", q, b"%d" % i)
    wait_until(conn, lambda: len(r.got) == 5, what="5 deliveries")
    assert [t for t, _, _ in r.got] == [1, 2, 3, 4, 5]
    # nothing is left in the queue and nothing needs acking
    assert ch.queue_declare(q, passive=True).method.message_count == 0
    ch.basic_recover(requeue=True)
    settle(conn, 0.1)
    assert len(r.got) == 5


def test_delivery_fields(conn, uniq, cleanup):
    ch = conn.channel()
    x = cleanup.exchange(uniq("x"))
    ch.exchange_declare(x, "topic")
    q = new_queue(ch)
    ch.queue_bind(q, x, routing_key="a.*")
    got = []
    tag = ch.basic_consume(q, lambda c, m, p, b: got.append((m, p, b)), consumer_tag="ctag-x")
    ch.basic_publish(x, "a.b", b"body", pika.BasicProperties(message_id="id1"))
    wait_until(conn, lambda: got, what="delivery")
    m, p, b = got[0]
    assert isinstance(m, spec.Basic.Deliver)
    assert (m.consumer_tag, m.delivery_tag, m.redelivered, m.exchange, m.routing_key) == (
        tag, 1, False, x, "a.b")
    assert (p.message_id, b) == ("id1", b"body")


# ---------------------------------------------------------------- exclusive consumers


def test_exclusive_consumer_blocks_others(conn):
    ch = conn.channel()
    q = new_queue(ch)
    ch.basic_consume(q, lambda *a: None, exclusive=True)
    other = conn.channel()
    text = f"ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use"
    with channel_closed(403, text, BASIC_CONSUME):
        other.basic_consume(q, lambda *a: None)
    assert conn.is_open


def test_exclusive_consume_refused_when_queue_has_consumers(conn):
    ch = conn.channel()
    q = new_queue(ch)
    ch.basic_consume(q, lambda *a: None)
    other = conn.channel()
    text = f"ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use"
    with channel_closed(403, text, BASIC_CONSUME):
        other.basic_consume(q, lambda *a: None, exclusive=True)


def test_exclusive_consumer_from_same_channel_also_blocked(conn):
    ch = conn.channel()
    q = new_queue(ch)
    ch.basic_consume(q, lambda *a: None, exclusive=True)
    text = f"ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use"
    with channel_closed(403, text, BASIC_CONSUME):
        ch.basic_consume(q, lambda *a: None)


def test_exclusive_consumer_released_on_cancel(conn):
    ch = conn.channel()
    q = new_queue(ch)
    tag = ch.basic_consume(q, lambda *a: None, exclusive=True)
    ch.basic_cancel(tag)
    other = conn.channel()
    assert other.basic_consume(q, lambda *a: None)


def test_get_allowed_while_exclusive_consumer(conn):
    ch = conn.channel()
    q = new_queue(ch)
    ch.basic_qos(prefetch_count=1)
    ch.basic_consume(q, lambda *a: None, exclusive=True)
    ch.basic_publish("", q, b"held")
    ch.basic_publish("", q, b"free")
    other = conn.channel()
    m, _p, b = other.basic_get(q, auto_ack=True)
    assert b == b"free"


# ---------------------------------------------------------------- priorities


def test_consumer_priority_prefers_higher(conn):
    pub = conn.channel()
    q = new_queue(pub)
    c = conn.channel()
    low, high = Recorder(c), Recorder(c)
    c.basic_consume(q, low, arguments={"x-priority": 1})
    c.basic_consume(q, high, arguments={"x-priority": 10})
    for i in range(10):
        pub.basic_publish("", q, b"%d" % i)
    wait_until(conn, lambda: total([low, high]) == 10, what="10 deliveries")
    assert low.got == []
    assert high.bodies == [b"%d" % i for i in range(10)]


def test_consumer_priority_falls_back_when_blocked(conn):
    pub = conn.channel()
    q = new_queue(pub)
    c = conn.channel()
    c.basic_qos(prefetch_count=100)
    low = Recorder(c)
    c.basic_consume(q, low)  # default priority 0
    c.basic_qos(prefetch_count=2)
    high = Recorder(c)
    c.basic_consume(q, high, arguments={"x-priority": 5})
    for i in range(10):
        pub.basic_publish("", q, b"%d" % i)
    wait_until(conn, lambda: total([low, high]) == 10, what="10 deliveries")
    assert high.bodies == [b"0", b"1"]
    assert low.bodies == [b"%d" % i for i in range(2, 10)]


def test_negative_priority_below_default(conn):
    pub = conn.channel()
    q = new_queue(pub)
    c = conn.channel()
    neg, default = Recorder(c), Recorder(c)
    c.basic_consume(q, neg, arguments={"x-priority": -5})
    c.basic_consume(q, default)
    for i in range(4):
        pub.basic_publish("", q, b"%d" % i)
    wait_until(conn, lambda: total([neg, default]) == 4, what="4 deliveries")
    assert neg.got == [] and len(default.got) == 4


def test_equal_priorities_round_robin(conn):
    pub = conn.channel()
    q = new_queue(pub)
    c = conn.channel()
    a, b = Recorder(c), Recorder(c)
    c.basic_consume(q, a, arguments={"x-priority": 3})
    c.basic_consume(q, b, arguments={"x-priority": 3})
    for i in range(6):
        pub.basic_publish("", q, b"%d" % i)
    wait_until(conn, lambda: total([a, b]) == 6, what="6 deliveries")
    assert a.bodies == [b"0", b"2", b"4"]
    assert b.bodies == [b"1", b"3", b"5"]
