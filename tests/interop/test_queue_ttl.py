"""Queue TTL: x-expires deletes a queue that has been unused for that long.

Recorded against RabbitMQ 3.10.8 (x-expires 300 ms, deletion seen 307..318 ms later):
- "unused" = no consumer, and no basic.get, queue.declare (active or passive) during the
  period: those renew the lease; publishing, purging and binding do not;
- cancelling the last consumer (or closing its channel) starts the countdown;
- the queue's messages go with it: they are not dead-lettered.

Existence is probed with a mandatory publish on a confirm channel (QueueProbe), never
with a passive declare, which would itself renew the lease.
(Invalid x-expires values are in test_queue_declare.py.)
"""

import time

import pytest

from helpers import (
    QueueProbe,
    bodies,
    cleanup,  # noqa: F401  (fixture)
    settle,
)

EXPIRES = 300
EARLY = 0.010
SLACK = 0.200  # polling adds a round trip per probe


def assert_gone_on_time(gone_at, since, expires_ms=EXPIRES):
    elapsed = gone_at - since
    assert expires_ms / 1000 - EARLY <= elapsed <= expires_ms / 1000 + SLACK, (
        f"deleted after {elapsed * 1000:.0f} ms, x-expires {expires_ms} ms")


def declare(ch, cleanup, uniq, expires=EXPIRES, **args):
    q = cleanup.queue(uniq("q"))
    ch.queue_declare(q, arguments={"x-expires": expires, **args})
    return q, time.monotonic()


def test_unused_queue_deleted_after_expires(conn, uniq, cleanup):
    ch = conn.channel()
    q, t0 = declare(ch, cleanup, uniq)
    assert_gone_on_time(QueueProbe(conn).wait_gone(q), t0)


def test_durable_queue_expires_too(conn, uniq, cleanup):
    ch = conn.channel()
    q = cleanup.queue(uniq("q"))
    ch.queue_declare(q, durable=True, arguments={"x-expires": EXPIRES})
    t0 = time.monotonic()
    assert_gone_on_time(QueueProbe(conn).wait_gone(q), t0)


RENEW = {
    "basic.get": lambda ch, q: ch.basic_get(q),
    "queue.declare": lambda ch, q: ch.queue_declare(q, arguments={"x-expires": EXPIRES}),
    "queue.declare-passive": lambda ch, q: ch.queue_declare(q, passive=True),
}


@pytest.mark.parametrize("op", list(RENEW))
def test_use_renews_the_lease(conn, uniq, cleanup, op):
    ch = conn.channel()
    q, _t0 = declare(ch, cleanup, uniq)
    time.sleep(0.2)  # time is the subject
    RENEW[op](ch, q)
    renewed = time.monotonic()
    assert_gone_on_time(QueueProbe(conn).wait_gone(q), renewed)


NO_RENEW = {
    "basic.publish": lambda ch, q: ch.basic_publish("", q, b"m"),
    "queue.purge": lambda ch, q: ch.queue_purge(q),
    "queue.bind": lambda ch, q: ch.queue_bind(q, "amq.fanout"),
}


@pytest.mark.parametrize("op", list(NO_RENEW))
def test_other_operations_do_not_renew(conn, uniq, cleanup, op):
    ch = conn.channel()
    q, t0 = declare(ch, cleanup, uniq)
    time.sleep(0.2)  # time is the subject
    NO_RENEW[op](ch, q)
    assert_gone_on_time(QueueProbe(conn).wait_gone(q), t0)


def test_consumer_keeps_queue_alive_and_cancel_starts_countdown(conn, uniq, cleanup):
    ch = conn.channel()
    q, _t0 = declare(ch, cleanup, uniq)
    tag = ch.basic_consume(q, lambda *a: None, auto_ack=True)
    probe = QueueProbe(conn)
    settle(conn, 0.6)  # twice the lease
    assert probe.exists(q)
    ch.basic_cancel(tag)
    cancelled = time.monotonic()
    assert_gone_on_time(probe.wait_gone(q), cancelled)


@pytest.mark.parametrize("how", ["channel", "connection"])
def test_consumer_closing_starts_countdown(broker, conn, uniq, cleanup, how):
    ch = conn.channel()
    q, _t0 = declare(ch, cleanup, uniq)
    other = broker.connect()
    och = other.channel()
    och.basic_consume(q, lambda *a: None)
    ch.basic_publish("", q, b"unacked")
    probe = QueueProbe(conn)
    settle(other, 0.5)
    assert probe.exists(q)
    if how == "channel":
        och.close()
    else:
        other.close()
    closed = time.monotonic()
    assert_gone_on_time(probe.wait_gone(q), closed)
    if other.is_open:
        other.close()


def test_messages_of_an_expired_queue_are_not_dead_lettered(conn, uniq, cleanup):
    ch = conn.channel()
    dl = ch.queue_declare("", exclusive=True).method.queue
    q, t0 = declare(ch, cleanup, uniq, **{"x-dead-letter-exchange": "",
                                          "x-dead-letter-routing-key": dl})
    for i in range(3):
        ch.basic_publish("", q, b"%d" % i)
    QueueProbe(conn).wait_gone(q)
    settle(conn, 0.2)
    assert bodies(ch, dl) == []
