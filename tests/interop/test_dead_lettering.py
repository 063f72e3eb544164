"""Dead letter exchanges: x-dead-letter-exchange / x-dead-letter-routing-key, the reasons
`rejected` and `expired` (`maxlen` is in test_max_length.py, `delivery_limit` in
test_delivery_limit.py), the x-death header and cycle detection.

Recorded against RabbitMQ 3.10.8:
- x-death is an array of tables, most recent first, one per (queue, reason); a repeated
  death for the same (queue, reason) increments its `count` (type long) and moves it to
  the front; fields: count, reason, queue, time (timestamp), exchange (the exchange the
  message had been published to), routing-keys (its routing key followed by its CC keys,
  never BCC), original-expiration (only if the message had an expiration, which is
  removed from the dead-lettered message);
- x-first-death-reason / -queue / -exchange are set by the first death and never change
  (RabbitMQ 3.13 adds x-last-death-*: asserted against Warren only);
- without x-dead-letter-routing-key the message is republished with its original
  routing keys (routing key + CC + BCC) and keeps its CC header; with one, that key
  alone is used and the CC header is removed;
- a message is dropped rather than dead-lettered into a queue that it already died in
  when no death since then was a rejection (a "fully automatic" cycle); the other
  target queues still get it; a cycle with a rejection goes on;
- a missing dead-letter exchange drops the message; purge and queue deletion do not
  dead-letter; requeue=true does not dead-letter.
"""

import datetime

import pika
import pika.compat
import pytest

from helpers import (
    Arrivals,
    cleanup,  # noqa: F401  (fixture)
    deaths,
    settle,
    skip_on_reference,
    wait_message,
    wait_until,
    x_death,
)

REQUIRED_FIELDS = {"count", "reason", "queue", "time", "exchange", "routing-keys"}


def new_queue(ch, name="", **args):
    return ch.queue_declare(name, exclusive=True, arguments=args or None).method.queue


def to_queue(dl):
    """Arguments dead-lettering into queue `dl` through the default exchange."""
    return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dl}


def reject_one(ch, q, how="reject"):
    m, p, b = ch.basic_get(q, auto_ack=False)
    assert m is not None, f"nothing in {q}"
    if how == "reject":
        ch.basic_reject(m.delivery_tag, requeue=False)
    else:
        ch.basic_nack(m.delivery_tag, requeue=False)
    return b


def is_long(v):
    """Encoded as AMQP long-long ('l'), as RabbitMQ does for x-death counts."""
    return isinstance(v, pika.compat.long)


# ---------------------------------------------------------------- reasons


@pytest.mark.parametrize("how", ["reject", "nack"])
def test_rejected_requeue_false_is_dead_lettered(conn, how):
    ch = conn.channel()
    dl = new_queue(ch)
    q = new_queue(ch, **to_queue(dl))
    ch.basic_publish("", q, b"m")
    reject_one(ch, q, how)
    m, p, b = wait_message(ch, dl)
    assert b == b"m"
    assert deaths(p) == [(q, "rejected", 1)]
    assert (m.exchange, m.routing_key, m.redelivered) == ("", dl, False)


def test_nack_multiple_dead_letters_each(conn):
    ch = conn.channel()
    dl = new_queue(ch)
    q = new_queue(ch, **to_queue(dl))
    for i in range(3):
        ch.basic_publish("", q, b"%d" % i)
    tags = [ch.basic_get(q, auto_ack=False)[0].delivery_tag for _ in range(3)]
    ch.basic_nack(tags[-1], multiple=True, requeue=False)
    got = [wait_message(ch, dl) for _ in range(3)]
    assert [b for _m, _p, b in got] == [b"0", b"1", b"2"]
    assert all(deaths(p) == [(q, "rejected", 1)] for _m, p, _b in got)


def test_requeue_true_is_not_dead_lettered(conn):
    ch = conn.channel()
    dl = new_queue(ch)
    q = new_queue(ch, **to_queue(dl))
    ch.basic_publish("", q, b"m")
    m, _p, _b = ch.basic_get(q, auto_ack=False)
    ch.basic_reject(m.delivery_tag, requeue=True)
    ch.basic_recover(requeue=True)
    settle(conn, 0.1)
    assert ch.basic_get(dl)[0] is None
    m, _p, b = ch.basic_get(q, auto_ack=True)
    assert (b, m.redelivered) == (b"m", True)


@pytest.mark.parametrize("kind", ["x-message-ttl", "expiration"])
def test_expired_is_dead_lettered(conn, kind):
    ch = conn.channel()
    dl = new_queue(ch)
    args = to_queue(dl)
    props = pika.BasicProperties(expiration="50") if kind == "expiration" else None
    if kind == "x-message-ttl":
        args["x-message-ttl"] = 50
    q = new_queue(ch, **args)
    ch.basic_publish("", q, b"m", props)
    _m, p, b = wait_message(ch, dl)
    assert b == b"m"
    assert deaths(p) == [(q, "expired", 1)]


def test_purge_and_delete_do_not_dead_letter(conn, uniq):
    ch = conn.channel()
    dl = new_queue(ch)
    q = new_queue(ch, uniq("src"), **to_queue(dl))
    ch.basic_publish("", q, b"purged")
    assert ch.queue_purge(q).method.message_count == 1
    ch.basic_publish("", q, b"deleted")
    assert ch.queue_delete(q).method.message_count == 1
    settle(conn, 0.2)
    assert ch.basic_get(dl)[0] is None


# ---------------------------------------------------------------- the x-death header


def test_x_death_fields(conn, uniq, cleanup):
    ch = conn.channel()
    x = cleanup.exchange(uniq("x"))
    ch.exchange_declare(x, "direct")
    dl = new_queue(ch)
    q = new_queue(ch, **to_queue(dl))
    ch.queue_bind(q, x, "rk")
    before = datetime.datetime.now(datetime.timezone.utc)
    ch.basic_publish(x, "rk", b"m", pika.BasicProperties(
        headers={"CC": ["cc1", "cc2"], "BCC": ["bcc"], "h": "v"}))
    reject_one(ch, q)
    _m, p, _b = wait_message(ch, dl)
    [d] = x_death(p)
    assert set(d) == REQUIRED_FIELDS
    assert (d["count"], d["reason"], d["queue"], d["exchange"]) == (1, "rejected", q, x)
    assert is_long(d["count"])
    assert d["routing-keys"] == ["rk", "cc1", "cc2"]  # BCC keys are never shown
    assert isinstance(d["time"], datetime.datetime)
    # a timestamp has one-second resolution
    assert before.replace(microsecond=0) - datetime.timedelta(seconds=2) <= d["time"]
    assert d["time"] <= datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
    # the other headers are kept; CC is removed (a dead-letter routing key is set), BCC
    # was never delivered
    assert p.headers["h"] == "v"
    assert "CC" not in p.headers and "BCC" not in p.headers


def test_original_expiration_recorded_and_expiration_removed(conn):
    ch = conn.channel()
    dl = new_queue(ch)
    q = new_queue(ch, **to_queue(dl))
    ch.basic_publish("", q, b"m", pika.BasicProperties(expiration="60000"))
    reject_one(ch, q)
    _m, p, _b = wait_message(ch, dl)
    assert p.expiration is None
    [d] = x_death(p)
    assert set(d) == REQUIRED_FIELDS | {"original-expiration"}
    assert d["original-expiration"] == "60000"


def test_x_first_death_headers(conn):
    ch = conn.channel()
    dl2 = new_queue(ch)
    q2 = new_queue(ch, **to_queue(dl2))
    q1 = new_queue(ch, **to_queue(q2))
    ch.basic_publish("", q1, b"m")
    reject_one(ch, q1)
    _m, p, _b = wait_message(ch, q2, no_ack=False)
    expected = {"x-first-death-reason": "rejected", "x-first-death-queue": q1,
                "x-first-death-exchange": ""}
    assert {k: p.headers.get(k) for k in expected} == expected
    ch.basic_recover(requeue=True)
    reject_one(ch, q2, "nack")
    _m, p, _b = wait_message(ch, dl2)
    assert {k: p.headers.get(k) for k in expected} == expected  # unchanged by later deaths
    assert deaths(p) == [(q2, "rejected", 1), (q1, "rejected", 1)]


def test_x_last_death_headers(broker, conn):
    """RabbitMQ 3.13+ (not 3.10) also keeps x-last-death-reason / -queue / -exchange,
    updated by every death."""
    skip_on_reference(broker, "x-last-death-* headers appeared in RabbitMQ 3.13")
    ch = conn.channel()
    dl2 = new_queue(ch)
    q2 = new_queue(ch, **{**to_queue(dl2), "x-message-ttl": 50})
    q1 = new_queue(ch, **to_queue(q2))
    ch.basic_publish("", q1, b"m")
    reject_one(ch, q1)
    _m, p, _b = wait_message(ch, dl2)
    assert deaths(p) == [(q2, "expired", 1), (q1, "rejected", 1)]
    assert {k: p.headers.get(k) for k in ("x-last-death-reason", "x-last-death-queue",
                                          "x-last-death-exchange")} == {
        "x-last-death-reason": "expired", "x-last-death-queue": q2,
        "x-last-death-exchange": ""}
    assert p.headers["x-first-death-reason"] == "rejected"


def test_count_accumulates_per_queue_and_reason(conn, uniq):
    """A queue that dead-letters into itself: one x-death entry whose count grows; the
    original expiration stays recorded from the first death."""
    ch = conn.channel()
    q = uniq("self")
    new_queue(ch, q, **to_queue(q))
    ch.basic_publish("", q, b"m", pika.BasicProperties(expiration="60000"))
    for n in range(1, 4):
        reject_one(ch, q)
        m, p, b = wait_message(ch, q, no_ack=False)
        ch.basic_recover(requeue=True)
        [d] = x_death(p)
        assert (d["queue"], d["reason"], d["count"]) == (q, "rejected", n)
        assert is_long(d["count"])
        assert d["original-expiration"] == "60000"
        assert p.expiration is None
        assert p.headers["x-first-death-reason"] == "rejected"


# ---------------------------------------------------------------- routing of dead letters


@pytest.fixture
def keyed_dlx(ch, uniq, cleanup):
    """A direct DLX with one queue bound per key in 'a', 'b', 'c', 'z'; a source
    exchange `src` (direct) for publishing."""
    dlx = cleanup.exchange(uniq("dlx"))
    src = cleanup.exchange(uniq("src"))
    ch.exchange_declare(dlx, "direct")
    ch.exchange_declare(src, "direct")
    queues = {}
    for key in "abcz":
        queues[key] = new_queue(ch)
        ch.queue_bind(queues[key], dlx, key)
    return dlx, src, queues


def test_without_routing_key_original_keys_are_used(conn, ch, keyed_dlx):
    dlx, src, queues = keyed_dlx
    q = new_queue(ch, **{"x-dead-letter-exchange": dlx})
    ch.queue_bind(q, src, "a")
    ch.basic_publish(src, "a", b"m", pika.BasicProperties(headers={"CC": ["b"], "BCC": ["c"]}))
    reject_one(ch, q)
    for key in "abc":
        m, p, b = wait_message(ch, queues[key])
        assert (m.exchange, m.routing_key, b) == (dlx, "a", b"m")
        assert p.headers["CC"] == ["b"] and "BCC" not in p.headers
        assert x_death(p)[0]["routing-keys"] == ["a", "b"]
    settle(conn, 0.1)
    assert ch.basic_get(queues["z"])[0] is None


def test_routing_key_replaces_keys_and_removes_cc(conn, ch, keyed_dlx):
    dlx, src, queues = keyed_dlx
    q = new_queue(ch, **{"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "z"})
    ch.queue_bind(q, src, "a")
    ch.basic_publish(src, "a", b"m", pika.BasicProperties(
        headers={"CC": ["b"], "BCC": ["c"], "keep": 1}))
    reject_one(ch, q)
    m, p, b = wait_message(ch, queues["z"])
    assert (m.exchange, m.routing_key, b) == (dlx, "z", b"m")
    assert "CC" not in p.headers and p.headers["keep"] == 1
    assert x_death(p)[0]["routing-keys"] == ["a", "b"]
    settle(conn, 0.1)
    assert [ch.basic_get(queues[k])[0] for k in "abc"] == [None, None, None]


def test_dead_lettered_message_keeps_its_properties(conn):
    ch = conn.channel()
    dl = new_queue(ch)
    q = new_queue(ch, **to_queue(dl))
    props = pika.BasicProperties(content_type="text/plain", content_encoding="gzip",
                                 delivery_mode=2, priority=3, correlation_id="c1",
                                 reply_to="r", message_id="m1", timestamp=1234567890,
                                 type="t", app_id="a", headers={"h": 1})
    ch.basic_publish("", q, b"body", props)
    reject_one(ch, q)
    _m, p, b = wait_message(ch, dl)
    assert b == b"body"
    for field in ("content_type", "content_encoding", "delivery_mode", "priority",
                  "correlation_id", "reply_to", "message_id", "timestamp", "type", "app_id"):
        assert getattr(p, field) == getattr(props, field), field
    assert p.headers["h"] == 1


def test_missing_dead_letter_exchange_drops(conn, uniq):
    ch = conn.channel()
    q = new_queue(ch, **{"x-dead-letter-exchange": uniq("missing")})
    ch.basic_publish("", q, b"m")
    reject_one(ch, q)
    settle(conn, 0.1)
    assert ch.is_open
    assert ch.queue_declare(q, passive=True).method.message_count == 0


def test_dead_letter_exchange_without_matching_binding_drops(conn, uniq, cleanup):
    ch = conn.channel()
    dlx = cleanup.exchange(uniq("dlx"))
    ch.exchange_declare(dlx, "direct")
    q = new_queue(ch, **{"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "nobody"})
    ch.basic_publish("", q, b"m")
    reject_one(ch, q)
    settle(conn, 0.1)
    assert ch.is_open
    assert ch.queue_declare(q, passive=True).method.message_count == 0


# ---------------------------------------------------------------- cycles


def test_automatic_cycle_into_same_queue_is_dropped(conn, uniq, cleanup):
    """q expires into a fanout bound to q itself and to a monitor: the monitor gets the
    message once; q does not get it back (that would be a fully automatic cycle)."""
    ch = conn.channel()
    fan = cleanup.exchange(uniq("fan"))
    ch.exchange_declare(fan, "fanout")
    q = new_queue(ch, uniq("q"), **{"x-message-ttl": 50, "x-dead-letter-exchange": fan})
    monitor = new_queue(ch)
    ch.queue_bind(q, fan)
    ch.queue_bind(monitor, fan)
    ch.basic_publish("", q, b"m")
    seen = Arrivals(conn, monitor)
    seen.wait(1)
    assert deaths(seen.items[0][2]) == [(q, "expired", 1)]
    settle(conn, 0.4)  # had q got it back, it would expire again within 50 ms
    assert seen.bodies == [b"m"]
    assert ch.queue_declare(q, passive=True).method.message_count == 0


def test_automatic_cycle_through_two_queues_is_dropped(conn, uniq, cleanup):
    ch = conn.channel()
    fan = cleanup.exchange(uniq("fan"))
    ch.exchange_declare(fan, "fanout")
    q1, q2 = uniq("q1"), uniq("q2")
    new_queue(ch, q1, **{"x-message-ttl": 50, **to_queue(q2)})
    new_queue(ch, q2, **{"x-message-ttl": 50, "x-dead-letter-exchange": fan})
    monitor = new_queue(ch)
    ch.queue_bind(q1, fan)
    ch.queue_bind(monitor, fan)
    ch.basic_publish("", q1, b"m")
    seen = Arrivals(conn, monitor)
    seen.wait(1)
    p = seen.items[0][2]
    assert deaths(p) == [(q2, "expired", 1), (q1, "expired", 1)]
    assert x_death(p)[0]["routing-keys"] == [q2]
    settle(conn, 0.4)
    assert seen.bodies == [b"m"]
    assert [ch.queue_declare(q, passive=True).method.message_count for q in (q1, q2)] == [0, 0]


def test_cycle_with_a_rejection_continues(conn, uniq):
    """q1 (rejected by the client) -> q2 (expires) -> q1 -> ...: never dropped; each
    (queue, reason) entry counts its deaths, the latest first."""
    ch = conn.channel()
    q1, q2 = uniq("q1"), uniq("q2")
    new_queue(ch, q1, **to_queue(q2))
    new_queue(ch, q2, **{"x-message-ttl": 50, **to_queue(q1)})
    ch.basic_publish("", q1, b"m")
    reject_one(ch, q1)
    for n in (1, 2, 3):
        m, p, b = wait_message(ch, q1, no_ack=False)
        assert deaths(p) == [(q2, "expired", n), (q1, "rejected", n)]
        assert p.headers["x-first-death-queue"] == q1
        ch.basic_reject(m.delivery_tag, requeue=False)


def test_rejection_moves_entry_to_front(conn, uniq):
    """After its count increments, an entry is moved to the front of x-death."""
    ch = conn.channel()
    q1, q2 = uniq("q1"), uniq("q2")
    new_queue(ch, q1, **to_queue(q2))
    new_queue(ch, q2, **to_queue(q1))  # both dead-letter by rejection only
    ch.basic_publish("", q1, b"m")
    path = []
    for q in (q1, q2, q1, q2):
        reject_one(ch, q)
        nxt = q2 if q == q1 else q1
        _m, p, _b = wait_message(ch, nxt, no_ack=False)
        ch.basic_recover(requeue=True)
        path.append(deaths(p))
    assert path == [
        [(q1, "rejected", 1)],
        [(q2, "rejected", 1), (q1, "rejected", 1)],
        [(q1, "rejected", 2), (q2, "rejected", 1)],
        [(q2, "rejected", 2), (q1, "rejected", 2)],
    ]


def test_consumer_sees_dead_letters_in_order(conn):
    ch = conn.channel()
    dl = new_queue(ch)
    q = new_queue(ch, **to_queue(dl))
    got = Arrivals(conn, dl)
    for i in range(5):
        ch.basic_publish("", q, b"%d" % i)
    for _ in range(5):
        reject_one(ch, q)
    wait_until(conn, lambda: len(got.items) == 5)
    assert got.bodies == [b"%d" % i for i in range(5)]
