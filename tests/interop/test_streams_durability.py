"""Streams across broker restarts: a graceful restart and kill -9 after confirms. Every
confirmed message is replayed from `first` with its offset, offsets continue where
they stopped, and retention settings survive.

Private brokers per test (see durability_helpers); against the reference RabbitMQ only
with WARREN_TEST_RESTART_REFERENCE=1 (and WARREN_TEST_KILL_REFERENCE=1 for kill9).
"""

import pytest
from pika import spec

from durability_helpers import (
    Content,
    RawConn,
    bounce,
    publish_confirmed,
    restartable,  # noqa: F401  (fixture)
)

HOW = pytest.mark.parametrize("how", ["graceful", "kill9"])
STREAM = {"x-queue-type": "stream"}


def read_stream(rb, queue, n, offset="first", prefetch=500, timeout=30.0):
    """Consumes `n` messages from `offset`, acking as credit; returns the Contents."""
    c = RawConn.to(rb.broker)
    out = []
    try:
        c.open_channel(1, prefetch=prefetch)
        c.rpc(1, spec.Basic.Consume(queue=queue, consumer_tag="r",
                                    arguments={"x-stream-offset": offset}),
              spec.Basic.ConsumeOk)
        while len(out) < n:
            ev = c.next_event(timeout=timeout)
            assert isinstance(ev, Content), f"unexpected {ev!r}"
            out.append(ev)
            if len(out) % 100 == 0:
                c.send_method(1, spec.Basic.Ack(delivery_tag=ev.method.delivery_tag, multiple=True))
        return out
    finally:
        c.close()


def declare(rb, name, **args):
    conn = rb.connect()
    conn.channel().queue_declare(name, durable=True, arguments={**STREAM, **args})
    conn.close()


@HOW
def test_confirmed_messages_replay_after_restart(restartable, uniq, how):
    rb = restartable
    q = uniq("s")
    declare(rb, q)
    bodies = [b"m%05d" % i + b"x" * (i % 300) for i in range(3000)]
    publish_confirmed(rb, q, [(None, b) for b in bodies])

    bounce(rb, how)

    got = read_stream(rb, q, 3000)
    assert [c.body for c in got] == bodies
    assert [c.props.headers["x-stream-offset"] for c in got] == list(range(3000))
    # The log goes on where it stopped.
    publish_confirmed(rb, q, [(None, b"after")])
    tail = read_stream(rb, q, 1, offset="last")
    assert tail[0].body == b"after"
    assert tail[0].props.headers["x-stream-offset"] == 3000


@HOW
def test_retention_settings_and_kept_tail_survive(restartable, uniq, how):
    rb = restartable
    q = uniq("s")
    declare(rb, q, **{"x-max-length-bytes": 30000, "x-stream-max-segment-size-bytes": 6000})
    publish_confirmed(rb, q, [(None, b"%05d" % i + b"." * 95) for i in range(1000)])

    bounce(rb, how)

    conn = rb.connect()
    ok = conn.channel().queue_declare(q, durable=True, arguments={
        **STREAM, "x-max-length-bytes": 30000, "x-stream-max-segment-size-bytes": 6000})
    kept = ok.method.message_count
    conn.close()
    assert 0 < kept < 1000
    got = read_stream(rb, q, kept)
    first = int(got[0].body[:5])
    assert [int(c.body[:5]) for c in got] == list(range(first, 1000))
    # Retention still applies after the restart.
    publish_confirmed(rb, q, [(None, b"%05d" % i + b"." * 95) for i in range(1000, 2000)])
    got = read_stream(rb, q, 1)
    assert int(got[0].body[:5]) > first
