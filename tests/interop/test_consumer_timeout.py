"""Delivery acknowledgement timeout (consumer_timeout).

Recorded against RabbitMQ 3.10.8 with consumer_timeout = 1000 ms (and the channel tick
that checks it shortened from 60 s to 100 ms, both set with `rabbitmqctl eval` for the
duration of the module and restored afterwards; they apply to channels opened meanwhile):
- a delivery left unacknowledged longer than the timeout closes its channel:
  406 PRECONDITION_FAILED - delivery acknowledgement on channel N timed out. Timeout
  value used: 1000 ms. This timeout value can be configured, see consumers doc guide to
  learn more  (class 0, method 0); the connection stays open and the message is
  requeued (redelivered);
- it applies to basic.get with manual ack as well; no-ack deliveries never time out;
  deliveries acknowledged in time keep the channel open.
RabbitMQ 3.10 has only the global setting; the per-queue argument x-consumer-timeout
(RabbitMQ 3.12+) is tested against Warren only. Warren's global setting is the
--consumer-timeout flag (ms) of a private broker.
"""

import time

import pytest

from conftest import spawn_warren
from helpers import (
    Arrivals,
    cleanup,  # noqa: F401  (fixture)
    reference_app_env,
    settle,
    skip_on_reference,
    wait_message,
)

TIMEOUT_MS = 1000
# The check is periodic (RabbitMQ: every channel tick); accept a late close.
EARLIEST, LATEST = 0.95, 3.0


def timed_out(channel_number, ms=TIMEOUT_MS):
    return (f"PRECONDITION_FAILED - delivery acknowledgement on channel {channel_number} timed "
            f"out. Timeout value used: {ms} ms. This timeout value can be configured, see "
            f"consumers doc guide to learn more")


@pytest.fixture(scope="module")
def tbroker(broker):
    """A broker whose consumer timeout is TIMEOUT_MS."""
    if broker.is_reference:
        with reference_app_env(consumer_timeout=str(TIMEOUT_MS), channel_tick_interval="100"):
            yield broker
        return
    with spawn_warren("--consumer-timeout", str(TIMEOUT_MS)) as b:
        yield b


@pytest.fixture
def tconn(tbroker):
    c = tbroker.connect()
    yield c
    if c.is_open:
        c.close()


def wait_closed(conn, ch, timeout=LATEST + 1):
    deadline = time.monotonic() + timeout
    while ch.is_open and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.02)
    assert ch.is_closed, "channel still open"
    return time.monotonic()


def assert_timeout_close(ch, ms=TIMEOUT_MS):
    exc = ch._closing_reason
    assert (exc.reply_code, exc.reply_text) == (406, timed_out(ch.channel_number, ms))
    assert (exc.class_id, exc.method_id) == (0, 0)


def new_queue(ch, **args):
    return ch.queue_declare("", exclusive=True, arguments=args or None).method.queue


def test_unacked_delivery_closes_channel(tconn):
    setup = tconn.channel()
    q = new_queue(setup)
    setup.basic_publish("", q, b"m")
    got = Arrivals(tconn, q, auto_ack=False)
    got.wait(1)
    delivered = got.items[0][0]
    closed = wait_closed(tconn, got.ch)
    assert EARLIEST <= closed - delivered <= LATEST, closed - delivered
    assert_timeout_close(got.ch)
    assert tconn.is_open
    # the message went back to the queue
    m, _p, b = wait_message(setup, q)
    assert (b, m.redelivered) == (b"m", True)


def test_basic_get_with_manual_ack_times_out(tconn):
    ch = tconn.channel()
    q = new_queue(ch)
    ch.basic_publish("", q, b"m")
    m, _p, _b = ch.basic_get(q, auto_ack=False)
    got_at = time.monotonic()
    closed = wait_closed(tconn, ch)
    assert EARLIEST <= closed - got_at <= LATEST
    assert_timeout_close(ch)
    assert tconn.is_open


def test_close_names_the_channel(tconn):
    setup = tconn.channel()
    q = new_queue(setup)
    setup.basic_publish("", q, b"m")
    extra = [tconn.channel() for _ in range(3)]
    got = Arrivals(tconn, q, auto_ack=False)
    assert got.ch.channel_number not in (1, setup.channel_number)
    got.wait(1)
    wait_closed(tconn, got.ch)
    assert_timeout_close(got.ch)
    assert all(c.is_open for c in extra)


def test_acked_in_time_keeps_channel_open(tconn):
    setup = tconn.channel()
    q = new_queue(setup)
    ch = tconn.channel()
    got = []
    ch.basic_consume(q, lambda c, m, p, b: (got.append(b), c.basic_ack(m.delivery_tag)))
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < 2.0:  # time is the subject: twice the timeout
        setup.basic_publish("", q, b"%d" % i)
        i += 1
        settle(tconn, 0.2)
    assert ch.is_open
    assert len(got) == i


def test_no_ack_deliveries_never_time_out(tconn):
    setup = tconn.channel()
    q = new_queue(setup)
    got = Arrivals(tconn, q, auto_ack=True)
    setup.basic_publish("", q, b"m")
    got.wait(1)
    settle(tconn, 2.0)  # time is the subject: twice the timeout
    assert got.ch.is_open


def test_unacked_but_then_acked_in_time(tconn):
    setup = tconn.channel()
    q = new_queue(setup)
    setup.basic_publish("", q, b"m")
    got = Arrivals(tconn, q, auto_ack=False)
    got.wait(1)
    settle(tconn, 0.5)
    got.ack_all()
    settle(tconn, 1.5)  # past the moment it would have timed out
    assert got.ch.is_open


# ---------------------------------------------------------------- Warren: x-consumer-timeout


def test_per_queue_consumer_timeout(broker, conn):
    """x-consumer-timeout (RabbitMQ 3.12+) on the session broker (default timeout)."""
    skip_on_reference(broker, "x-consumer-timeout appeared in RabbitMQ 3.12")
    setup = conn.channel()
    q = new_queue(setup, **{"x-consumer-timeout": 500})
    setup.basic_publish("", q, b"m")
    got = Arrivals(conn, q, auto_ack=False)
    got.wait(1)
    delivered = got.items[0][0]
    closed = wait_closed(conn, got.ch)
    assert 0.45 <= closed - delivered <= 2.5, closed - delivered
    assert_timeout_close(got.ch, 500)
    m, _p, b = wait_message(setup, q)
    assert (b, m.redelivered) == (b"m", True)


def test_per_queue_consumer_timeout_overrides_global(tbroker, tconn):
    skip_on_reference(tbroker, "x-consumer-timeout appeared in RabbitMQ 3.12")
    setup = tconn.channel()
    q = new_queue(setup, **{"x-consumer-timeout": 3000})
    setup.basic_publish("", q, b"m")
    got = Arrivals(tconn, q, auto_ack=False)
    got.wait(1)
    settle(tconn, 1.8)  # past the global 1000 ms
    assert got.ch.is_open
    wait_closed(tconn, got.ch, timeout=4)
    assert_timeout_close(got.ch, 3000)
