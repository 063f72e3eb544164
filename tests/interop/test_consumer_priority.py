"""Consumer priorities: the x-priority consumer argument, beyond the basics in
test_consumer_dispatch.py (higher first, fallback when blocked, negative, equal).

Recorded against RabbitMQ 3.10.8:
- priorities apply across channels and connections of the same queue;
- with prefetch limits, each level takes what it can before the next level gets any;
- cancelling (or closing) the high-priority consumer hands the flow to the next level;
  messages requeued when it closes go to the highest-priority consumer with room;
- x-priority must be an integer: 406 PRECONDITION_FAILED - invalid arg 'x-priority' for
  queue '<q>' in vhost '/': "expected integer, got longstr" (basic.consume); any integer
  width is accepted (a long-long too).
"""

import pytest

from helpers import (
    BASIC_CONSUME,
    Arrivals,
    channel_closed,
    cleanup,  # noqa: F401  (fixture)
    settle,
    wait_until,
)


def total(arrivals):
    return sum(len(a.items) for a in arrivals)


@pytest.fixture
def queue(ch, uniq, cleanup):
    q = cleanup.queue(uniq("q"))
    ch.queue_declare(q)
    return q


def publish(ch, q, n, start=0):
    for i in range(start, start + n):
        ch.basic_publish("", q, b"%d" % i)


def test_priority_across_connections(broker, ch, queue):
    conns = [broker.connect() for _ in range(3)]
    try:
        low = Arrivals(conns[0], queue, arguments={"x-priority": 1})
        high = Arrivals(conns[1], queue, arguments={"x-priority": 9})
        mid = Arrivals(conns[2], queue, arguments={"x-priority": 5})
        publish(ch, queue, 6)
        high.wait(6)
        for c in conns:
            settle(c, 0.05)
        assert (len(low.items), len(mid.items)) == (0, 0)
    finally:
        for c in conns:
            c.close()


def test_each_level_takes_what_it_can(conn, ch, queue):
    high = Arrivals(conn, queue, auto_ack=False, prefetch=1, arguments={"x-priority": 10})
    mid = Arrivals(conn, queue, auto_ack=False, prefetch=2, arguments={"x-priority": 5})
    low = Arrivals(conn, queue, auto_ack=False, prefetch=0)
    publish(ch, queue, 10)
    wait_until(conn, lambda: total([high, mid, low]) == 10)
    assert (high.bodies, mid.bodies) == ([b"0"], [b"1", b"2"])
    assert low.bodies == [b"%d" % i for i in range(3, 10)]


def test_cancel_high_priority_hands_over(conn, ch, queue):
    high = Arrivals(conn, queue, arguments={"x-priority": 10})
    low = Arrivals(conn, queue)
    publish(ch, queue, 2)
    wait_until(conn, lambda: len(high.items) == 2)
    high.cancel()
    publish(ch, queue, 2, start=2)
    wait_until(conn, lambda: len(low.items) == 2)
    assert (high.bodies, low.bodies) == ([b"0", b"1"], [b"2", b"3"])


def test_requeued_on_close_go_to_highest_with_room(broker, ch, queue):
    c1, c2 = broker.connect(), broker.connect()
    try:
        doomed = Arrivals(c1, queue, auto_ack=False, arguments={"x-priority": 20})
        publish(ch, queue, 3)
        doomed.wait(3)
        high = Arrivals(c2, queue, auto_ack=False, arguments={"x-priority": 10})
        low = Arrivals(c2, queue, auto_ack=False)
        c1.close()
        wait_until(c2, lambda: total([high, low]) == 3)
        assert high.bodies == [b"0", b"1", b"2"]
        assert all(m.redelivered for _t, m, _p, _b in high.items)
        assert low.items == []
    finally:
        for c in (c1, c2):
            if c.is_open:
                c.close()


def test_priority_with_long_integer(conn, ch, queue):
    high = Arrivals(conn, queue, arguments={"x-priority": 2 ** 40})
    low = Arrivals(conn, queue, arguments={"x-priority": 2 ** 31 - 1})
    publish(ch, queue, 3)
    wait_until(conn, lambda: total([high, low]) == 3)
    assert len(high.items) == 3


def test_priority_must_be_an_integer(conn, queue):
    ch = conn.channel()
    with channel_closed(406, f"PRECONDITION_FAILED - invalid arg 'x-priority' for queue "
                             f"'{queue}' in vhost '/': \"expected integer, got longstr\"",
                        BASIC_CONSUME):
        ch.basic_consume(queue, lambda *a: None, arguments={"x-priority": "high"})
    assert conn.is_open
