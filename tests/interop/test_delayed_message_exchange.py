"""Delayed messages with the interface of the rabbitmq-delayed-message-exchange plugin
(Warren only: the reference has no such plugin).

The interface (from the plugin's source and README, v3.12+):
- exchange type x-delayed-message with the required argument x-delayed-type naming the
  routing type (direct, topic, fanout, headers); without it: 406 PRECONDITION_FAILED -
  Invalid argument, 'x-delayed-type' must be an existing exchange type; x-delayed-type
  x-delayed-message: 406 PRECONDITION_FAILED - Invalid argument, 'x-delayed-message'
  can't be used for 'x-delayed-type'; an unknown type: as for exchange.declare (503
  COMMAND_INVALID - unknown exchange type '<t>', a connection error);
- header x-delay (ms): routed when due with the exchange's routing type, against the
  bindings that exist then; absent or <= 0: routed at once; the delivered message
  carries x-delay = -delay (the plugin's marker that it was delayed);
- delayed messages of a durable exchange survive a restart.
Timing: a message is never routed before it is due and at most ~50 ms after.
"""

import os
import random
import threading
import time

import pika
import pytest

from conftest import spawn_warren
from helpers import (
    EXCHANGE_DECLARE,
    Arrivals,
    channel_closed,
    cleanup,  # noqa: F401  (fixture)
    connection_closed,
    settle,
    wait_until,
)

SLACK = 0.050
EARLY = 0.005


@pytest.fixture(autouse=True)
def warren_only(broker):
    if broker.is_reference:
        pytest.skip("the reference has no rabbitmq-delayed-message-exchange plugin")


@pytest.fixture
def delayed(ch, uniq, cleanup):
    def make(routing_type="direct", durable=False, suffix="dx"):
        x = cleanup.exchange(uniq(suffix))
        ch.exchange_declare(x, "x-delayed-message", durable=durable,
                            arguments={"x-delayed-type": routing_type})
        return x

    return make


def delay_props(ms, **props):
    headers = dict(props.pop("headers", {}) or {})
    if ms is not None:
        headers["x-delay"] = ms
    return pika.BasicProperties(headers=headers, **props)


def new_queue(ch, x=None, key="", arguments=None):
    q = ch.queue_declare("", exclusive=True).method.queue
    if x:
        ch.queue_bind(q, x, key, arguments=arguments)
    return q


def assert_due(elapsed, delay_ms):
    assert delay_ms / 1000 - EARLY <= elapsed <= delay_ms / 1000 + SLACK, (
        f"routed after {elapsed * 1000:.0f} ms, x-delay {delay_ms} ms")


# ---------------------------------------------------------------- declaration


def test_declare_without_delayed_type(conn, uniq):
    ch = conn.channel()
    with channel_closed(406, "PRECONDITION_FAILED - Invalid argument, 'x-delayed-type' must be "
                             "an existing exchange type", EXCHANGE_DECLARE):
        ch.exchange_declare(uniq("dx"), "x-delayed-message")
    assert conn.is_open


def test_delayed_type_cannot_be_itself(conn, uniq):
    ch = conn.channel()
    with channel_closed(406, "PRECONDITION_FAILED - Invalid argument, 'x-delayed-message' "
                             "can't be used for 'x-delayed-type'", EXCHANGE_DECLARE):
        ch.exchange_declare(uniq("dx"), "x-delayed-message",
                            arguments={"x-delayed-type": "x-delayed-message"})


def test_unknown_delayed_type(broker, uniq):
    c = broker.connect()
    ch = c.channel()
    with connection_closed(503, "COMMAND_INVALID - unknown exchange type 'nope'",
                           EXCHANGE_DECLARE):
        ch.exchange_declare(uniq("dx"), "x-delayed-message", arguments={"x-delayed-type": "nope"})


def test_passive_redeclare(ch, delayed):
    x = delayed("topic")
    ch.exchange_declare(x, "x-delayed-message", passive=True)
    ch.exchange_declare(x, "x-delayed-message", arguments={"x-delayed-type": "topic"})


# ---------------------------------------------------------------- routing when due


ROUTING = {
    "direct": ("k", {}, [("k", None, True), ("other", None, False)]),
    "topic": ("a.*", {}, [("a.b", None, True), ("b.a", None, False)]),
    "fanout": ("", {}, [("anything", None, True)]),
    "headers": ("", {"x-match": "all", "h": "v"}, [("", {"h": "v"}, True),
                                                   ("", {"h": "w"}, False)]),
}


@pytest.mark.parametrize("routing_type", list(ROUTING))
def test_routed_when_due_with_the_delayed_type(conn, ch, delayed, routing_type):
    x = delayed(routing_type)
    binding_key, binding_args, cases = ROUTING[routing_type]
    q = new_queue(ch, x, binding_key, binding_args or None)
    got = Arrivals(conn, q)
    t0 = time.monotonic()
    for i, (key, headers, _routed) in enumerate(cases):
        ch.basic_publish(x, key, b"%d" % i, delay_props(200, headers=headers))
    expected = [b"%d" % i for i, (_k, _h, routed) in enumerate(cases) if routed]
    got.wait(len(expected), timeout=3)
    settle(conn, 0.1)
    assert got.bodies == expected
    for t, m, p, _b in got.items:
        assert_due(t - t0, 200)
        assert m.exchange == x
        assert p.headers["x-delay"] == -200


@pytest.mark.parametrize("delay", [None, 0, -100], ids=["absent", "zero", "negative"])
def test_no_positive_delay_routes_at_once(conn, ch, delayed, delay):
    x = delayed()
    q = new_queue(ch, x, "k")
    got = Arrivals(conn, q)
    t0 = time.monotonic()
    ch.basic_publish(x, "k", b"now", delay_props(delay))
    t, _m, p, _b = got.wait(1)[0]
    assert t - t0 <= SLACK
    assert (p.headers or {}).get("x-delay") == delay  # unchanged


def test_routing_uses_bindings_that_exist_when_due(conn, ch, delayed):
    x = delayed()
    q = ch.queue_declare("", exclusive=True).method.queue
    got = Arrivals(conn, q)
    t0 = time.monotonic()
    ch.basic_publish(x, "k", b"m", delay_props(300))
    settle(conn, 0.1)
    ch.queue_bind(q, x, "k")  # bound after the publish, before it is due
    t, _m, _p, _b = got.wait(1)[0]
    assert_due(t - t0, 300)


def test_unroutable_when_due_is_dropped(conn, ch, delayed):
    x = delayed()
    q = new_queue(ch, x, "k")
    ch.basic_publish(x, "k", b"m", delay_props(150))
    ch.queue_unbind(q, x, "k")
    settle(conn, 0.4)
    assert ch.basic_get(q)[0] is None
    assert ch.is_open


def test_ordering_by_due_time(conn, ch, delayed):
    x = delayed("fanout")
    q = new_queue(ch, x)
    got = Arrivals(conn, q)
    delays = [400, 100, 300, 0, 200, 100]
    t0 = time.monotonic()
    for i, d in enumerate(delays):
        ch.basic_publish(x, "", b"%d:%d" % (i, d), delay_props(d))
    got.wait(len(delays), timeout=3)
    # by due time; equal delays keep publish order
    assert got.bodies == [b"3:0", b"1:100", b"5:100", b"4:200", b"2:300", b"0:400"]
    for t, _m, _p, b in got.items:
        assert_due(t - t0, int(b.split(b":")[1]))


def test_same_delay_keeps_publish_order(conn, ch, delayed):
    x = delayed()
    q = new_queue(ch, x, "k")
    got = Arrivals(conn, q)
    for i in range(50):
        ch.basic_publish(x, "k", b"%d" % i, delay_props(200))
    got.wait(50, timeout=3)
    assert got.bodies == [b"%d" % i for i in range(50)]


def test_confirm_comes_at_publish_time(conn, ch, delayed):
    x = delayed()
    new_queue(ch, x, "k")
    pub = conn.channel()
    pub.confirm_delivery()
    t0 = time.monotonic()
    pub.basic_publish(x, "k", b"m", delay_props(2000))
    assert time.monotonic() - t0 < 0.5


def test_properties_and_body_preserved(conn, ch, delayed):
    x = delayed()
    q = new_queue(ch, x, "k")
    got = Arrivals(conn, q)
    ch.basic_publish(x, "k", b"body", delay_props(50, headers={"h": 1}, correlation_id="c",
                                                    priority=3, delivery_mode=2))
    _t, m, p, b = got.wait(1)[0]
    assert (b, p.correlation_id, p.priority, p.delivery_mode, p.headers) == (
        b"body", "c", 3, 2, {"h": 1, "x-delay": -50})
    assert (m.exchange, m.routing_key) == (x, "k")


def test_delayed_exchange_to_exchange(conn, ch, delayed, uniq, cleanup):
    x = delayed("fanout")
    dst = cleanup.exchange(uniq("dst"))
    ch.exchange_declare(dst, "direct")
    ch.exchange_bind(dst, x)
    q = new_queue(ch, dst, "k")
    got = Arrivals(conn, q)
    t0 = time.monotonic()
    ch.basic_publish(x, "k", b"m", delay_props(150))
    t, _m, p, _b = got.wait(1)[0]
    assert_due(t - t0, 150)
    assert p.headers["x-delay"] == -150  # not delayed again by anything downstream


def test_many_pending_delayed_messages(broker, delayed, ch, uniq, cleanup):
    n = 10000
    x = delayed()
    q = cleanup.queue(uniq("q"))  # consumed from another connection: not exclusive
    ch.queue_declare(q)
    ch.queue_bind(q, x, "k")
    got = []
    stop = threading.Event()
    consumer = broker.connect()
    cch = consumer.channel()
    cch.basic_consume(q, lambda c, m, p, b: got.append((time.monotonic(), b)), auto_ack=True)

    def pump():  # the consumer's connection lives in this thread only
        while not stop.is_set():
            consumer.process_data_events(time_limit=0.02)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        rng = random.Random(4)
        delays = [rng.randint(500, 1500) for _ in range(n)]
        published = []
        for i, d in enumerate(delays):
            published.append(time.monotonic())
            ch.basic_publish(x, "k", b"%d" % i, delay_props(d))
        last_due = max(p + d / 1000 for p, d in zip(published, delays))
        deadline = last_due + 10
        while len(got) < n and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(5)
        consumer.close()
    assert sorted(int(b) for _t, b in got) == list(range(n))
    lateness = [t - (published[int(b)] + delays[int(b)] / 1000) for t, b in got]
    assert min(lateness) >= -EARLY, "a message was routed before it was due"
    assert max(lateness) <= 0.5, f"worst lateness {max(lateness):.3f} s"


# ---------------------------------------------------------------- durability


def test_persistent_delayed_messages_survive_restart(tmp_path, uniq):
    data = str(tmp_path / "data")
    os.makedirs(data)
    x, q = uniq("dx"), uniq("q")
    with spawn_warren(data_dir=data) as b:
        c = b.connect()
        ch = c.channel()
        ch.exchange_declare(x, "x-delayed-message", durable=True,
                            arguments={"x-delayed-type": "direct"})
        ch.queue_declare(q, durable=True)
        ch.queue_bind(q, x, "k")
        ch.confirm_delivery()
        t0 = time.time()
        ch.basic_publish(x, "k", b"later", delay_props(2500, delivery_mode=2))
        c.close()
    with spawn_warren(data_dir=data) as b:
        c = b.connect()
        ready = time.time()
        ch = c.channel()
        got = []
        ch.basic_consume(q, lambda c_, m, p, body: got.append((time.time(), body, p)),
                         auto_ack=True)
        wait_until(c, lambda: got, timeout=10)
        [(t, body, p)] = got
        assert body == b"later"
        # due at t0 + 2.5 s (wall clock): not before; on time, or at once if the restart
        # took longer than that
        assert t - t0 >= 2.5 - EARLY
        assert t <= max(t0 + 2.5, ready) + 0.5
        assert p.headers["x-delay"] == -2500
        c.close()
