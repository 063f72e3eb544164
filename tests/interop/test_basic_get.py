"""basic.get: get-ok fields, get-empty, no-ack gets, errors."""

import pika
from pika import spec

from helpers import (  # noqa: F401
    BASIC_GET,
    RawClient,
    channel_closed,
    cleanup,
    not_found_queue,
    wait_until,
)


def test_get_ok_fields(ch, uniq, cleanup):
    x = cleanup.exchange(uniq("x"))
    ch.exchange_declare(x, "direct")
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, x, routing_key="rk")
    for i in range(3):
        ch.basic_publish(x, "rk", b"%d" % i, pika.BasicProperties(message_id=str(i)))
    for i in range(3):
        m, p, b = ch.basic_get(q, auto_ack=False)
        assert isinstance(m, spec.Basic.GetOk)
        assert (m.delivery_tag, m.redelivered, m.exchange, m.routing_key, m.message_count) == (
            i + 1, False, x, "rk", 2 - i)
        assert (p.message_id, b) == (str(i), b"%d" % i)
    ch.basic_nack(0, multiple=True, requeue=True)
    m, _p, b = ch.basic_get(q, auto_ack=True)
    assert (m.delivery_tag, m.redelivered, m.message_count, b) == (4, True, 2, b"0")


def test_get_empty(ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    assert ch.basic_get(q) == (None, None, None)


def test_get_empty_frame(broker):
    raw = RawClient(broker)
    try:
        q = raw.rpc(spec.Queue.Declare(queue="", exclusive=True), spec.Queue.DeclareOk).queue
        empty = raw.rpc(spec.Basic.Get(queue=q, no_ack=True), spec.Basic.GetEmpty)
        assert empty.cluster_id == ""
    finally:
        raw.close()


def test_get_no_ack_removes_message(ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"a")
    ch.basic_publish("", q, b"b")
    m, _p, b = ch.basic_get(q, auto_ack=True)
    assert (m.delivery_tag, m.message_count, b) == (1, 1, b"a")
    ch.basic_recover(requeue=True)  # nothing to recover
    m, _p, b = ch.basic_get(q, auto_ack=True)
    assert (m.delivery_tag, m.redelivered, m.message_count, b) == (2, False, 0, b"b")
    assert ch.basic_get(q)[0] is None


def test_message_count_excludes_unacked(ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    for i in range(4):
        ch.basic_publish("", q, b"%d" % i)
    counts = [ch.basic_get(q, auto_ack=False)[0].message_count for _ in range(4)]
    assert counts == [3, 2, 1, 0]


def test_get_and_consume_share_delivery_tags(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    q2 = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"g1")
    assert ch.basic_get(q)[0].delivery_tag == 1
    got = []
    ch.basic_consume(q2, lambda c, m, p, b: got.append(m.delivery_tag))
    ch.basic_publish("", q2, b"c1")
    wait_until(conn, lambda: got, what="delivery")
    assert got == [2]
    ch.basic_publish("", q, b"g2")
    assert ch.basic_get(q)[0].delivery_tag == 3


def test_delivery_tags_are_per_channel(conn):
    a, b = conn.channel(), conn.channel()
    q = a.queue_declare("", exclusive=True).method.queue
    for i in range(4):
        a.basic_publish("", q, b"%d" % i)
    assert a.basic_get(q)[0].delivery_tag == 1
    assert b.basic_get(q)[0].delivery_tag == 1
    assert a.basic_get(q)[0].delivery_tag == 2
    assert b.basic_get(q)[0].delivery_tag == 2


def test_get_missing_queue(conn, uniq):
    ch = conn.channel()
    name = uniq("missing")
    with channel_closed(404, not_found_queue(name), BASIC_GET):
        ch.basic_get(name)
    assert conn.is_open


def test_get_from_queue_with_consumer(conn):
    # basic.get competes with consumers for ready messages
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    c = conn.channel()
    c.basic_qos(prefetch_count=1)
    got = []
    c.basic_consume(q, lambda ch_, m, p, b: got.append(b))
    ch.basic_publish("", q, b"1")
    ch.basic_publish("", q, b"2")
    wait_until(conn, lambda: got, what="delivery")
    m, _p, b = ch.basic_get(q, auto_ack=True)
    assert (got, b, m.message_count) == ([b"1"], b"2", 0)
