"""Single active consumer: x-single-active-consumer=true.

Recorded against RabbitMQ 3.10.8 (classic queues):
- only one consumer (the first registered) gets messages; the others wait, even when the
  active one is at its prefetch limit; consumer_count counts all of them;
- when the active consumer is cancelled, or its channel or connection closes, the next
  one in registration order becomes active; messages it had not acknowledged are
  requeued (when its channel or connection closes) and go to the new active consumer,
  first and flagged redelivered;
- x-priority does not change which consumer is active (classic queues, 3.10);
- the argument must be a boolean: 406 ... {unacceptable_type,longstr}.
Every consumer has its own connection here (pika requeues not yet dispatched deliveries
when a consumer on a shared connection is cancelled).
"""

import time

import pytest

from helpers import (
    QUEUE_DECLARE,
    Arrivals,
    channel_closed,
    cleanup,  # noqa: F401  (fixture)
    wait_until,
)

SAC = {"x-single-active-consumer": True}


@pytest.fixture
def sac_queue(ch, uniq, cleanup):
    q = cleanup.queue(uniq("sac"))
    ch.queue_declare(q, arguments=SAC)
    return q


@pytest.fixture
def consumers(broker):
    """consumers(queue, n, **kw) -> n Arrivals, each on its own connection, registered in
    order. All connections are closed at teardown."""
    conns = []

    def make(queue, n, **kw):
        out = []
        for _ in range(n):
            c = broker.connect()
            conns.append(c)
            out.append(Arrivals(c, queue, **kw))
        return out

    yield make
    for c in conns:
        if c.is_open:
            c.close()


def pump(arrivals, seconds=0.2):
    """Let every consumer's connection dispatch what it has (negative checks)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for a in arrivals:
            if a.conn.is_open:
                a.conn.process_data_events(time_limit=0.01)


def wait_total(arrivals, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    while sum(len(a.items) for a in arrivals) < n:
        assert time.monotonic() < deadline, f"timed out waiting for {n} deliveries"
        pump(arrivals, 0.02)


def publish(ch, q, bodies_):
    for b in bodies_:
        ch.basic_publish("", q, b)


def test_only_the_first_consumer_receives(ch, sac_queue, consumers):
    a, b, c = consumers(sac_queue, 3)
    publish(ch, sac_queue, [b"%d" % i for i in range(6)])
    a.wait(6)
    pump([a, b, c])
    assert a.bodies == [b"%d" % i for i in range(6)]
    assert b.items == [] and c.items == []
    ok = ch.queue_declare(sac_queue, passive=True)
    assert (ok.method.message_count, ok.method.consumer_count) == (0, 3)


def test_active_consumer_at_prefetch_limit_does_not_spill(ch, sac_queue, consumers):
    a, b = consumers(sac_queue, 2, auto_ack=False, prefetch=1)
    publish(ch, sac_queue, [b"0", b"1", b"2"])
    a.wait(1)
    pump([a, b])
    assert a.bodies == [b"0"] and b.items == []
    assert ch.queue_declare(sac_queue, passive=True).method.message_count == 2
    a.ack_all()
    a.wait(2)
    assert a.bodies == [b"0", b"1"] and b.items == []


def test_failover_on_cancel(ch, sac_queue, consumers):
    a, b, c = consumers(sac_queue, 3)
    publish(ch, sac_queue, [b"0", b"1"])
    a.wait(2)
    a.cancel()
    publish(ch, sac_queue, [b"2", b"3"])
    b.wait(2)
    pump([a, b, c])
    assert (a.bodies, b.bodies, c.bodies) == ([b"0", b"1"], [b"2", b"3"], [])


@pytest.mark.parametrize("how", ["channel", "connection"])
def test_failover_on_close_requeues_unacked(ch, sac_queue, consumers, how):
    a, b, c = consumers(sac_queue, 3, auto_ack=False)
    publish(ch, sac_queue, [b"0", b"1", b"2"])
    a.wait(3)
    a.ch.basic_ack(a.items[0][1].delivery_tag)  # 0 is done; 1 and 2 are not
    if how == "channel":
        a.ch.close()
    else:
        a.conn.close()
    b.wait(2)
    publish(ch, sac_queue, [b"3"])
    b.wait(3)
    pump([b, c])
    assert [(body, m.redelivered) for _t, m, _p, body in b.items] == [
        (b"1", True), (b"2", True), (b"3", False)]
    assert c.items == []


def test_next_consumer_takes_over_when_first_leaves_before_any_message(ch, sac_queue, consumers):
    a, b = consumers(sac_queue, 2)
    a.conn.close()
    wait_until(b.conn, lambda: ch.queue_declare(sac_queue, passive=True).method.consumer_count == 1)
    publish(ch, sac_queue, [b"x"])
    b.wait(1)
    assert b.bodies == [b"x"]


def test_consumer_priority_does_not_choose_the_active_consumer(ch, sac_queue, consumers):
    a = consumers(sac_queue, 1)[0]
    high = consumers(sac_queue, 1, arguments={"x-priority": 10})[0]
    publish(ch, sac_queue, [b"0", b"1"])
    a.wait(2)
    pump([a, high])
    assert high.items == []


def test_messages_waiting_before_first_consumer(ch, sac_queue, consumers):
    publish(ch, sac_queue, [b"0", b"1", b"2"])
    a, b = consumers(sac_queue, 2)
    a.wait(3)
    pump([a, b])
    assert a.bodies == [b"0", b"1", b"2"] and b.items == []


def test_false_means_round_robin(ch, uniq, cleanup, consumers):
    q = cleanup.queue(uniq("q"))
    ch.queue_declare(q, arguments={"x-single-active-consumer": False})
    a, b = consumers(q, 2)
    publish(ch, q, [b"0", b"1", b"2", b"3"])
    wait_total([a, b], 4)
    pump([a, b])
    assert len(a.items) == 2 and len(b.items) == 2


def test_argument_must_be_boolean(conn, uniq):
    name = uniq("q")
    ch = conn.channel()
    with channel_closed(406, f"PRECONDITION_FAILED - invalid arg 'x-single-active-consumer' for"
                             f" queue '{name}' in vhost '/': {{unacceptable_type,longstr}}",
                        QUEUE_DECLARE):
        ch.queue_declare(name, arguments={"x-single-active-consumer": "yes"})


@pytest.mark.parametrize("second,detail", [
    ({}, "received none but current is the value 'true' of type 'bool'"),
    ({"x-single-active-consumer": False}, "received 'false' but current is 'true'"),
], ids=["missing", "false"])
def test_inequivalent_redeclare(conn, sac_queue, second, detail):
    ch = conn.channel()
    with channel_closed(406, f"PRECONDITION_FAILED - inequivalent arg 'x-single-active-consumer'"
                             f" for queue '{sac_queue}' in vhost '/': {detail}", QUEUE_DECLARE):
        ch.queue_declare(sac_queue, arguments=second or None)
