"""Priority queues: x-max-priority.

Recorded against RabbitMQ 3.10.8:
- higher priority first, FIFO within a priority; no priority property = 0; a priority
  above x-max-priority counts as x-max-priority (it is delivered unchanged);
- x-max-priority 1..255 (0 is accepted and behaves as a plain FIFO queue); 256 and
  negative values and non-integers are refused;
- requeued messages go back to their priority, ahead of the messages of that priority
  that were never delivered, in their original order;
- drop-head (x-max-length) drops the head, i.e. the highest-priority message.

(A priority on a plain queue is in test_message_properties.py; inequivalent
x-max-priority in test_queue_declare.py.)
"""

import pika
import pytest

from helpers import (
    QUEUE_DECLARE,
    Arrivals,
    channel_closed,
    get_all,
    message_count,
    wait_until,
)


def new_queue(ch, max_priority=5, **args):
    return ch.queue_declare("", exclusive=True,
                            arguments={"x-max-priority": max_priority, **args}).method.queue


def publish(ch, q, items):
    for body, prio in items:
        ch.basic_publish("", q, body.encode(), pika.BasicProperties(priority=prio))


def confirming(conn):
    """A confirm-mode channel: its publishes are enqueued when basic_publish returns."""
    ch = conn.channel()
    ch.confirm_delivery()
    return ch


def drain(ch, q):
    return [(b.decode(), p.priority) for _m, p, b in get_all(ch, q)]


def test_higher_priority_first_fifo_within_priority(ch):
    q = new_queue(ch, 10)
    publish(ch, q, [("a1", 1), ("b5", 5), ("c1", 1), ("d9", 9), ("e5", 5), ("f10", 10)])
    assert drain(ch, q) == [("f10", 10), ("d9", 9), ("b5", 5), ("e5", 5), ("a1", 1), ("c1", 1)]


def test_no_priority_is_zero_and_above_max_is_max(ch):
    q = new_queue(ch, 5)
    publish(ch, q, [("none", None), ("p9", 9), ("p5", 5), ("p0", 0), ("p7", 7), ("p3", 3)])
    # 9, 5 and 7 all count as 5 (FIFO among them); priorities are delivered unchanged
    assert drain(ch, q) == [("p9", 9), ("p5", 5), ("p7", 7), ("p3", 3), ("none", None),
                            ("p0", 0)]


def test_max_priority_255(ch):
    q = new_queue(ch, 255)
    publish(ch, q, [("none", None), ("p255", 255), ("p254", 254), ("p1", 1)])
    assert [b for b, _p in drain(ch, q)] == ["p255", "p254", "p1", "none"]


@pytest.mark.parametrize("max_priority", [1, 2])
def test_small_max_priority(ch, max_priority):
    q = new_queue(ch, max_priority)
    publish(ch, q, [("a0", 0), ("b1", 1), ("c2", 2), ("d1", 1)])
    expected = ["b1", "c2", "d1", "a0"] if max_priority == 1 else ["c2", "b1", "d1", "a0"]
    assert [b for b, _p in drain(ch, q)] == expected


def test_max_priority_zero_is_fifo(ch):
    q = new_queue(ch, 0)
    publish(ch, q, [("a", None), ("b", 9), ("c", 0)])
    assert [b for b, _p in drain(ch, q)] == ["a", "b", "c"]


def test_message_count_and_purge_span_priorities(conn, ch):
    q = new_queue(ch, 5)
    publish(confirming(conn), q, [("a", 1), ("b", 2), ("c", None), ("d", 5)])
    assert message_count(ch, q) == 4
    m, _p, b = ch.basic_get(q, auto_ack=True)
    assert (b, m.message_count) == (b"d", 3)
    assert ch.queue_purge(q).method.message_count == 3
    assert message_count(ch, q) == 0


# ---------------------------------------------------------------- requeue


def test_requeued_messages_return_to_their_priority(ch):
    q = new_queue(ch, 10)
    publish(ch, q, [("a5", 5), ("b5", 5), ("c1", 1), ("d5", 5)])
    first, _p, _b = ch.basic_get(q, auto_ack=False)   # a5
    second, _p, _b = ch.basic_get(q, auto_ack=False)  # b5
    ch.basic_reject(second.delivery_tag, requeue=True)
    ch.basic_reject(first.delivery_tag, requeue=True)
    got = [(b, m.redelivered) for m, _p, b in get_all(ch, q)]
    assert got == [(b"a5", True), (b"b5", True), (b"d5", False), (b"c1", False)]


def test_recover_requeues_into_priorities(ch):
    q = new_queue(ch, 5)
    publish(ch, q, [("a1", 1), ("b2", 2), ("c3", 3)])
    for _ in range(3):
        ch.basic_get(q, auto_ack=False)
    publish(ch, q, [("d2", 2)])
    ch.basic_recover(requeue=True)
    assert [(b, m.redelivered) for m, _p, b in get_all(ch, q)] == [
        (b"c3", True), (b"b2", True), (b"d2", False), (b"a1", True)]


def test_consumer_gets_highest_priority_first(conn):
    ch = confirming(conn)
    q = new_queue(ch, 5)
    publish(ch, q, [("p1", 1), ("p5a", 5), ("p3", 3), ("p5b", 5), ("p2", 2)])
    cch = conn.channel()
    cch.basic_qos(prefetch_count=1)
    got = []

    def on_message(c, m, p, b):
        got.append(b)
        if len(got) == 2:  # enqueued (confirmed) while p3 is the next in line
            ch.basic_publish("", q, b"p4", pika.BasicProperties(priority=4))
        c.basic_ack(m.delivery_tag)

    cch.basic_consume(q, on_message)
    wait_until(conn, lambda: len(got) == 6)
    assert got == [b"p5a", b"p5b", b"p4", b"p3", b"p2", b"p1"]


def test_unacked_consumer_deliveries_requeued_on_channel_close(conn):
    ch = conn.channel()
    q = new_queue(ch, 5)
    publish(ch, q, [("lo", 1), ("hi", 5)])
    got = Arrivals(conn, q, auto_ack=False, prefetch=2)
    got.wait(2)
    assert got.bodies == [b"hi", b"lo"]
    publish(ch, q, [("mid", 3)])
    got.ch.close()  # both go back, each to its priority
    wait_until(conn, lambda: message_count(ch, q) == 3, what="requeue")
    assert [(b, m.redelivered) for m, _p, b in get_all(ch, q)] == [
        (b"hi", True), (b"mid", False), (b"lo", True)]


# ---------------------------------------------------------------- limits


def test_drop_head_drops_the_highest_priority(ch):
    q = new_queue(ch, 5, **{"x-max-length": 2})
    publish(ch, q, [("lo", 1), ("hi", 5), ("mid", 3)])
    assert [b for b, _p in drain(ch, q)] == ["mid", "lo"]


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize("value,detail", [
    (256, "{max_value_exceeded,256}"),
    (-1, "{value_negative,-1}"),
    ("5", '"expected integer, got longstr"'),
], ids=["256", "negative", "string"])
def test_invalid_max_priority(conn, uniq, value, detail):
    name = uniq("q")
    ch = conn.channel()
    with channel_closed(406, f"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue "
                             f"'{name}' in vhost '/': {detail}", QUEUE_DECLARE):
        ch.queue_declare(name, arguments={"x-max-priority": value})
    assert conn.is_open
