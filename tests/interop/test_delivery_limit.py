"""Delivery limit (x-delivery-limit) and the x-delivery-count header, as RabbitMQ's quorum
queues have them.

Against the reference the scenarios run on quorum queues (x-queue-type=quorum, durable);
against Warren on a queue declared x-queue-type=quorum (which Warren accepts) and on a
classic queue with x-delivery-limit (RabbitMQ 3.10 refuses that argument on classic
queues).

Recorded against RabbitMQ 3.10.8:
- each return of a delivered message (basic.reject/nack with requeue, basic.recover,
  closing the channel with it unacknowledged) counts one failed delivery; redeliveries
  carry the header x-delivery-count = that count (a long), and redelivered=true; a first
  delivery to a consumer has no such header;
- with x-delivery-limit N a message is delivered at most N+1 times: the return that
  brings the count to N+1 dead-letters it (reason delivery_limit) or, without a
  dead-letter exchange, drops it; the dead-lettered copy has no x-delivery-count;
- x-delivery-limit 0: the first return drops / dead-letters it.
- (quirk, not asserted: the first delivery by basic.get carries x-delivery-count 0.)
"""

import pika
import pika.compat
import pytest

from helpers import (
    Arrivals,
    cleanup,  # noqa: F401  (fixture)
    deaths,
    message_count,
    settle,
    wait_message,
    wait_until,
    x_death,
)

KINDS = ["quorum", "classic"]


@pytest.fixture(params=KINDS)
def limited(request, broker, conn, uniq, cleanup):
    """limited(limit, **extra_args) -> name of a queue with that delivery limit."""
    kind = request.param
    if kind == "classic" and broker.is_reference:
        pytest.skip("RabbitMQ 3.10 has x-delivery-limit on quorum queues only")

    def make(limit, **extra):
        q = cleanup.queue(uniq(kind))
        args = {"x-delivery-limit": limit, **extra}
        if kind == "quorum":
            args["x-queue-type"] = "quorum"
        conn.channel().queue_declare(q, durable=True, arguments=args)
        return q

    return make


def count_header(props):
    return (props.headers or {}).get("x-delivery-count")


def get(ch, q):
    m, p, b = wait_message(ch, q, no_ack=False)
    return m, p, b


def test_delivery_count_on_consumer_redeliveries(conn, limited):
    q = limited(5)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish("", q, b"m", pika.BasicProperties(headers={"h": 1}))
    seen = []

    def on_message(c, m, p, b):
        seen.append((m.redelivered, count_header(p), (p.headers or {}).get("h")))
        if len(seen) < 4:
            c.basic_nack(m.delivery_tag, requeue=True)
        else:
            c.basic_ack(m.delivery_tag)

    cch = conn.channel()
    cch.basic_consume(q, on_message)
    wait_until(conn, lambda: len(seen) == 4)
    assert seen == [(False, None, 1), (True, 1, 1), (True, 2, 1), (True, 3, 1)]
    settle(conn, 0.1)
    assert len(seen) == 4


def test_every_kind_of_return_counts(conn, limited):
    q = limited(10)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish("", q, b"m")
    m, _p, _b = get(ch, q)
    ch.basic_reject(m.delivery_tag, requeue=True)
    m, p, _b = get(ch, q)
    assert (m.redelivered, count_header(p)) == (True, 1)
    assert isinstance(count_header(p), pika.compat.long)
    ch.basic_nack(m.delivery_tag, requeue=True)
    m, p, _b = get(ch, q)
    assert count_header(p) == 2
    ch.basic_recover(requeue=True)
    m, p, _b = get(ch, q)
    assert count_header(p) == 3
    other = conn.channel()
    got = Arrivals(conn, q, ch=other, auto_ack=False)
    ch.basic_reject(m.delivery_tag, requeue=True)
    got.wait(1)
    assert count_header(got.items[0][2]) == 4
    other.close()  # unacked on a closing channel
    m, p, _b = get(ch, q)
    assert count_header(p) == 5
    ch.basic_ack(m.delivery_tag)


def test_over_the_limit_is_dead_lettered(conn, limited):
    ch = conn.channel()
    dl = ch.queue_declare("", exclusive=True).method.queue
    q = limited(2, **{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dl})
    ch.confirm_delivery()
    ch.basic_publish("", q, b"m", pika.BasicProperties(headers={"h": "v"}))
    counts = []
    for _ in range(3):  # limit 2: three deliveries
        m, p, _b = get(ch, q)
        counts.append(count_header(p) or 0)
        ch.basic_nack(m.delivery_tag, requeue=True)
    assert counts == [0, 1, 2]
    m, p, b = wait_message(ch, dl)
    assert b == b"m"
    assert deaths(p) == [(q, "delivery_limit", 1)]
    [d] = x_death(p)
    assert (d["exchange"], d["routing-keys"]) == ("", [q])
    assert p.headers["x-first-death-reason"] == "delivery_limit"
    assert p.headers["h"] == "v"
    assert "x-delivery-count" not in p.headers
    assert ch.basic_get(q)[0] is None


def test_over_the_limit_without_dlx_is_dropped(conn, limited):
    q = limited(1)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish("", q, b"m")
    got = Arrivals(conn, q, auto_ack=False)
    got.wait(1)
    got.ch.basic_nack(got.items[0][1].delivery_tag, requeue=True)
    got.wait(2)
    got.ch.basic_nack(got.items[1][1].delivery_tag, requeue=True)
    settle(conn, 0.3)
    assert len(got.items) == 2
    assert message_count(ch, q) == 0


def test_limit_zero(conn, limited):
    ch = conn.channel()
    dl = ch.queue_declare("", exclusive=True).method.queue
    q = limited(0, **{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dl})
    ch.confirm_delivery()
    ch.basic_publish("", q, b"m")
    m, _p, _b = get(ch, q)
    ch.basic_reject(m.delivery_tag, requeue=True)
    _m, p, b = wait_message(ch, dl)
    assert (b, deaths(p)) == (b"m", [(q, "delivery_limit", 1)])


def test_requeue_false_is_rejected_not_delivery_limit(conn, limited):
    ch = conn.channel()
    dl = ch.queue_declare("", exclusive=True).method.queue
    q = limited(5, **{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dl})
    ch.confirm_delivery()
    ch.basic_publish("", q, b"m")
    m, _p, _b = get(ch, q)
    ch.basic_reject(m.delivery_tag, requeue=True)
    m, _p, _b = get(ch, q)
    ch.basic_reject(m.delivery_tag, requeue=False)
    _m, p, _b = wait_message(ch, dl)
    assert deaths(p) == [(q, "rejected", 1)]


def test_acked_within_limit(conn, limited):
    q = limited(1)
    ch = conn.channel()
    ch.confirm_delivery()
    for b in [b"a", b"b"]:
        ch.basic_publish("", q, b)
    m, _p, _b = get(ch, q)
    ch.basic_nack(m.delivery_tag, requeue=True)
    m2, p, b = get(ch, q)
    # quorum queues return a message to the head of the queue
    assert (b, count_header(p)) == (b"a", 1)
    ch.basic_ack(m2.delivery_tag)
    m3, p, b = get(ch, q)
    assert (b, count_header(p) or 0) == (b"b", 0)
    ch.basic_ack(m3.delivery_tag)
    assert message_count(ch, q) == 0
