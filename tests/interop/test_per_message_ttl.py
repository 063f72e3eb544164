"""Message TTL: the queue argument x-message-ttl and the per-message `expiration`
property (RabbitMQ's "Per-Queue Message TTL" and "Per-Message TTL in Publishers").

Recorded against RabbitMQ 3.10.8:
- an expired message is dead-lettered (reason `expired`) or dropped; RabbitMQ does it on
  time for the message at the head of the queue (measured: TTL + 1..4 ms);
- the effective TTL is the lower of x-message-ttl and the message's expiration;
- TTL 0 (either kind): the message is delivered only if a consumer can take it at once;
- the TTL runs from the publish: a requeue does not restart it, and a message that
  expired while unacknowledged is dead-lettered as soon as it is requeued;
- a delivered message keeps its `expiration` property; x-message-ttl adds none.

Better than RabbitMQ (Warren only): a message expires on time wherever it is in the
queue; RabbitMQ 3.10 only expires messages when they reach the head.

(Parsing of invalid `expiration` values and expiration "0" without a consumer are in
test_message_properties.py; invalid x-message-ttl values in test_queue_declare.py.)
"""

import time

import pika
import pytest

from helpers import Arrivals, deaths, settle, skip_on_reference, wait_until

TTL_SLACK = 0.100  # an expired message is gone within 100 ms of its TTL
EARLY = 0.010      # clock granularity: never more than this before its TTL


def new_queue(ch, **args):
    return ch.queue_declare("", exclusive=True, arguments=args or None).method.queue


def dead_letter_setup(conn):
    """A capture queue with a recording consumer; returns (arrivals, args-for-a-source-queue)."""
    ch = conn.channel()
    dl = new_queue(ch)
    arrivals = Arrivals(conn, dl)
    return arrivals, {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dl}


def assert_on_time(elapsed, ttl_ms):
    ttl = ttl_ms / 1000
    assert ttl - EARLY <= elapsed <= ttl + TTL_SLACK, (
        f"expired after {elapsed * 1000:.0f} ms, TTL {ttl_ms} ms")


# ---------------------------------------------------------------- expiry on time


@pytest.mark.parametrize("ttl", [100, 300])
@pytest.mark.parametrize("kind", ["x-message-ttl", "expiration"])
def test_expired_message_dead_lettered_on_time(conn, kind, ttl):
    arrivals, args = dead_letter_setup(conn)
    ch = conn.channel()
    props = None
    if kind == "x-message-ttl":
        args["x-message-ttl"] = ttl
    else:
        props = pika.BasicProperties(expiration=str(ttl))
    q = new_queue(ch, **args)
    t0 = time.monotonic()
    ch.basic_publish("", q, b"m", props)
    t, m, p, b = arrivals.wait(1, timeout=ttl / 1000 + 3)[0]
    assert_on_time(t - t0, ttl)
    assert b == b"m"
    assert deaths(p) == [(q, "expired", 1)]


@pytest.mark.parametrize("kind", ["x-message-ttl", "expiration"])
def test_expired_message_without_dlx_is_dropped(conn, kind):
    ch = conn.channel()
    q = new_queue(ch, **({"x-message-ttl": 100} if kind == "x-message-ttl" else {}))
    props = pika.BasicProperties(expiration="100") if kind == "expiration" else None
    ch.basic_publish("", q, b"gone", props)
    assert ch.basic_get(q, auto_ack=False)[2] == b"gone"  # alive before its TTL ...
    ch.basic_recover(requeue=True)
    time.sleep(0.1 + TTL_SLACK)  # time is the subject
    assert ch.basic_get(q)[0] is None  # ... gone after it
    assert ch.queue_declare(q, passive=True).method.message_count == 0


@pytest.mark.parametrize("queue_ttl,message_ttl", [(100, 5000), (5000, 100)],
                         ids=["queue-lower", "message-lower"])
def test_lower_of_queue_and_message_ttl_applies(conn, queue_ttl, message_ttl):
    arrivals, args = dead_letter_setup(conn)
    ch = conn.channel()
    q = new_queue(ch, **args, **{"x-message-ttl": queue_ttl})
    t0 = time.monotonic()
    ch.basic_publish("", q, b"m", pika.BasicProperties(expiration=str(message_ttl)))
    t, _m, p, _b = arrivals.wait(1)[0]
    assert_on_time(t - t0, 100)
    assert deaths(p) == [(q, "expired", 1)]


def test_expired_head_is_skipped(conn):
    """Behind an expired message a live one is still delivered (the expired one is not)."""
    arrivals, args = dead_letter_setup(conn)
    ch = conn.channel()
    q = new_queue(ch, **args)
    ch.basic_publish("", q, b"short", pika.BasicProperties(expiration="100"))
    ch.basic_publish("", q, b"long", pika.BasicProperties(expiration="60000"))
    arrivals.wait(1)
    assert arrivals.bodies == [b"short"]
    assert ch.queue_declare(q, passive=True).method.message_count == 1
    m, p, b = ch.basic_get(q, auto_ack=True)
    assert (b, p.expiration) == (b"long", "60000")


# ---------------------------------------------------------------- TTL 0


@pytest.mark.parametrize("kind", ["x-message-ttl", "expiration"])
def test_ttl_zero_delivered_to_waiting_consumer(conn, kind):
    ch = conn.channel()
    q = new_queue(ch, **({"x-message-ttl": 0} if kind == "x-message-ttl" else {}))
    props = pika.BasicProperties(expiration="0") if kind == "expiration" else None
    ch.basic_publish("", q, b"dropped", props)  # nobody is waiting: expires at once
    got = Arrivals(conn, q)
    ch.basic_publish("", q, b"taken", props)
    got.wait(1)
    settle(conn, 0.1)
    assert got.bodies == [b"taken"]
    assert got.items[0][2].expiration == ("0" if kind == "expiration" else None)


def test_ttl_zero_expires_when_consumer_cannot_take_it(conn):
    arrivals, args = dead_letter_setup(conn)
    ch = conn.channel()
    q = new_queue(ch, **args, **{"x-message-ttl": 0})
    busy = Arrivals(conn, q, auto_ack=False, prefetch=1)
    ch.basic_publish("", q, b"first")
    busy.wait(1)
    ch.basic_publish("", q, b"second")  # the consumer is at its prefetch limit
    arrivals.wait(1)
    assert arrivals.bodies == [b"second"]
    assert deaths(arrivals.items[0][2]) == [(q, "expired", 1)]
    busy.ack_all()
    settle(conn, 0.2)
    assert busy.bodies == [b"first"]


# ---------------------------------------------------------------- properties


def test_expiration_property_delivered_unchanged(conn):
    ch = conn.channel()
    q = new_queue(ch, **{"x-message-ttl": 60000})
    ch.basic_publish("", q, b"a", pika.BasicProperties(expiration="30000"))
    ch.basic_publish("", q, b"b")
    got = Arrivals(conn, q)
    got.wait(2)
    assert [(p.expiration, b) for _t, _m, p, b in got.items] == [("30000", b"a"), (None, b"b")]


# ---------------------------------------------------------------- requeue


def test_ttl_runs_from_publish_not_from_requeue(conn):
    arrivals, args = dead_letter_setup(conn)
    ch = conn.channel()
    q = new_queue(ch, **args, **{"x-message-ttl": 500})
    t0 = time.monotonic()
    ch.basic_publish("", q, b"m")
    m, _p, _b = ch.basic_get(q, auto_ack=False)
    time.sleep(0.2)  # time is the subject: hold it a while, then give it back
    ch.basic_reject(m.delivery_tag, requeue=True)
    t, _m, p, _b = arrivals.wait(1)[0]
    assert_on_time(t - t0, 500)
    assert deaths(p) == [(q, "expired", 1)]


def test_message_expired_while_unacked_dead_lettered_on_requeue(conn):
    arrivals, args = dead_letter_setup(conn)
    ch = conn.channel()
    q = new_queue(ch, **args, **{"x-message-ttl": 100})
    ch.basic_publish("", q, b"m")
    m, _p, _b = ch.basic_get(q, auto_ack=False)
    time.sleep(0.3)  # time is the subject: an unacked message does not expire ...
    assert arrivals.items == []
    t_requeue = time.monotonic()
    ch.basic_reject(m.delivery_tag, requeue=True)  # ... until it is back in the queue
    t, _m, p, b = arrivals.wait(1)[0]
    assert t - t_requeue <= TTL_SLACK
    assert (b, deaths(p)) == (b"m", [(q, "expired", 1)])
    assert ch.basic_get(q)[0] is None


# ---------------------------------------------------------------- Warren only


def test_expired_message_behind_a_live_one_is_dead_lettered_on_time(broker, conn):
    """Warren expires a message on time wherever it is in the queue. (RabbitMQ 3.10 only
    looks at the head: there the short-TTL messages would wait 1 s behind the first.)"""
    skip_on_reference(broker, "RabbitMQ 3.10 expires messages only at the head of the queue")
    arrivals, args = dead_letter_setup(conn)
    ch = conn.channel()
    q = new_queue(ch, **args)
    t0 = time.monotonic()
    for body, ttl in [(b"long", 1000), (b"300", 300), (b"100", 100), (b"200", 200)]:
        ch.basic_publish("", q, body, pika.BasicProperties(expiration=str(ttl)))
    arrivals.wait(3)
    assert arrivals.bodies[:3] == [b"100", b"200", b"300"]
    for t, _m, p, b in arrivals.items[:3]:
        assert_on_time(t - t0, int(b))
        assert deaths(p) == [(q, "expired", 1)]
    # the long one is still there until its own TTL
    wait_until(conn, lambda: len(arrivals.items) == 4, timeout=3)
    t, _m, _p, b = arrivals.items[3]
    assert b == b"long"
    assert_on_time(t - t0, 1000)


def test_expired_message_behind_unacked_and_live_ones(broker, conn):
    """Warren: a short-TTL message behind a long-TTL one is dead-lettered within 100 ms
    of its TTL, and the message count drops at once."""
    skip_on_reference(broker, "RabbitMQ 3.10 expires messages only at the head of the queue")
    arrivals, args = dead_letter_setup(conn)
    ch = conn.channel()
    q = new_queue(ch, **args, **{"x-message-ttl": 60000})
    ch.basic_publish("", q, b"held")
    held, _p, _b = ch.basic_get(q, auto_ack=False)
    t0 = time.monotonic()
    ch.basic_publish("", q, b"live")
    ch.basic_publish("", q, b"short", pika.BasicProperties(expiration="150"))
    t, _m, p, b = arrivals.wait(1)[0]
    assert b == b"short"
    assert_on_time(t - t0, 150)
    assert ch.queue_declare(q, passive=True).method.message_count == 1
    ch.basic_ack(held.delivery_tag)
    assert ch.basic_get(q, auto_ack=True)[2] == b"live"
