"""basic.publish mandatory / immediate and basic.return."""

import decimal

import pika
from pika import spec

from helpers import (
    BASIC_PUBLISH,
    RawClient,
    bodies,
    cleanup,  # noqa: F401  (fixture)
    not_found_exchange,
    settle,
    wait_channel_closed,
    wait_until,
)


def returns_of(ch):
    got = []
    ch.add_on_return_callback(lambda c, m, p, b: got.append((m, p, b)))
    return got


def test_mandatory_no_route_returns_message(conn, uniq):
    ch = conn.channel()
    got = returns_of(ch)
    key = uniq("nowhere")
    props = pika.BasicProperties(
        content_type="application/octet-stream", content_encoding="gzip",
        headers={"a": 1, "b": "two", "c": [1, "x"], "d": {"n": True},
                 "e": decimal.Decimal("1.25"), "f": None, "g": b"\x00\x01"},
        delivery_mode=2, priority=7, correlation_id="corr", reply_to="rq",
        expiration="60000", message_id="mid", timestamp=1700000000, type="t",
        user_id="guest", app_id="app", cluster_id="cl")
    body = bytes(range(256)) * 4
    ch.basic_publish("", key, body, props, mandatory=True)
    wait_until(conn, lambda: got, what="basic.return")
    m, p, b = got[0]
    assert isinstance(m, spec.Basic.Return)
    assert (m.reply_code, m.reply_text, m.exchange, m.routing_key) == (312, "NO_ROUTE", "", key)
    assert b == body
    for attr in ["content_type", "content_encoding", "headers", "delivery_mode", "priority",
                 "correlation_id", "reply_to", "expiration", "message_id", "timestamp", "type",
                 "user_id", "app_id", "cluster_id"]:
        assert getattr(p, attr) == getattr(props, attr), attr


def test_mandatory_exchange_without_bindings(conn, uniq, cleanup):
    ch = conn.channel()
    x = cleanup.exchange(uniq("x"))
    ch.exchange_declare(x, "topic")
    got = returns_of(ch)
    ch.basic_publish(x, "a.b", b"m", mandatory=True)
    wait_until(conn, lambda: got, what="basic.return")
    m, _p, b = got[0]
    assert (m.reply_code, m.reply_text, m.exchange, m.routing_key, b) == (
        312, "NO_ROUTE", x, "a.b", b"m")


def test_mandatory_routed_is_not_returned(conn):
    ch = conn.channel()
    got = returns_of(ch)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"m", mandatory=True)
    assert bodies(ch, q) == [b"m"]
    settle(conn, 0.1)
    assert got == []


def test_mandatory_routed_through_exchange_chain_dead_end(conn, uniq, cleanup):
    ch = conn.channel()
    a = cleanup.exchange(uniq("a"))
    b = cleanup.exchange(uniq("b"))
    ch.exchange_declare(a, "fanout")
    ch.exchange_declare(b, "direct")
    ch.exchange_bind(destination=b, source=a)
    got = returns_of(ch)
    ch.basic_publish(a, "k", b"m", mandatory=True)
    wait_until(conn, lambda: got, what="basic.return")
    assert (got[0][0].exchange, got[0][0].routing_key) == (a, "k")


def test_non_mandatory_unroutable_dropped_silently(conn, uniq):
    ch = conn.channel()
    got = returns_of(ch)
    ch.basic_publish("", uniq("nowhere"), b"m", mandatory=False)
    # a later round trip proves the channel is fine and nothing came back
    q = ch.queue_declare("", exclusive=True).method.queue
    settle(conn, 0.1)
    assert got == [] and ch.is_open and q


def test_returns_keep_publish_order(conn, uniq):
    ch = conn.channel()
    got = returns_of(ch)
    for i in range(20):
        ch.basic_publish("", uniq("nowhere"), b"%d" % i, mandatory=True)
    wait_until(conn, lambda: len(got) == 20, what="20 returns")
    assert [b for _, _, b in got] == [b"%d" % i for i in range(20)]


def test_mandatory_to_missing_exchange_is_channel_error(conn, uniq):
    ch = conn.channel()
    x = uniq("nox")
    ch.basic_publish(x, "k", b"m", mandatory=True)
    wait_channel_closed(conn, ch, 404, not_found_exchange(x), BASIC_PUBLISH)


def test_return_arrives_before_confirm_ack(broker, uniq):
    raw = RawClient(broker)
    try:
        raw.rpc(spec.Confirm.Select(), spec.Confirm.SelectOk)
        raw.publish("", uniq("nowhere"), b"returned",
                    spec.BasicProperties(content_type="t/p", headers={"a": 1}), mandatory=True)
        raw.publish("", uniq("nowhere"), b"dropped")  # not mandatory
        _c, m, p, b = raw.next_event()
        assert isinstance(m, spec.Basic.Return), m
        assert (m.reply_code, m.reply_text, b, p.content_type, p.headers) == (
            312, "NO_ROUTE", b"returned", "t/p", {"a": 1})
        _c, m, _p, _b = raw.next_event()
        assert isinstance(m, spec.Basic.Ack) and m.delivery_tag == 1 and not m.multiple, m
        _c, m, _p, _b = raw.next_event()
        assert isinstance(m, spec.Basic.Ack) and m.delivery_tag == 2, m
    finally:
        raw.close()


def test_mandatory_with_confirms_via_pika(conn, uniq):
    ch = conn.channel()
    ch.confirm_delivery()
    try:
        ch.basic_publish("", uniq("nowhere"), b"m", mandatory=True)
        raise AssertionError("expected UnroutableError")
    except pika.exceptions.UnroutableError as e:
        (msg,) = e.messages
        assert (msg.method.reply_code, msg.method.reply_text, msg.body) == (312, "NO_ROUTE", b"m")


def test_return_of_multi_frame_body(broker, uniq):
    raw = RawClient(broker, frame_max=4096)
    try:
        body = bytes(i % 251 for i in range(100_000))
        raw.publish("", uniq("nowhere"), body, mandatory=True)
        _c, m, _p, b = raw.next_event()
        assert isinstance(m, spec.Basic.Return)
        assert b == body
    finally:
        raw.close()


def test_immediate_not_implemented(broker):
    raw = RawClient(broker)
    try:
        q = raw.rpc(spec.Queue.Declare(queue="", exclusive=True), spec.Queue.DeclareOk).queue
        raw.sock.sendall(b"".join([
            pika.frame.Method(1, spec.Basic.Publish(exchange="", routing_key=q,
                                                    immediate=True)).marshal(),
            pika.frame.Header(1, 1, spec.BasicProperties()).marshal(),
            pika.frame.Body(1, b"x").marshal(),
        ]))
        fr = raw.next_method()
        m = fr.method
        assert fr.channel_number == 0 and isinstance(m, spec.Connection.Close), m
        assert (m.reply_code, m.reply_text, (m.class_id, m.method_id)) == (
            540, "NOT_IMPLEMENTED - immediate=true", BASIC_PUBLISH)
    finally:
        raw.close()
