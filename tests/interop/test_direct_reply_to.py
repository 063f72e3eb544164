"""Direct reply-to: the pseudo-queue amq.rabbitmq.reply-to.

Recorded against RabbitMQ 3.10.8:
- the requester consumes from amq.rabbitmq.reply-to in no-ack mode, then publishes its
  request with reply_to=amq.rabbitmq.reply-to on the SAME channel; the server sees
  reply_to rewritten to amq.rabbitmq.reply-to.<token>; a reply published to the default
  exchange with that routing key (from any connection) reaches the consumer: exchange "",
  routing key = the full reply-to name, properties and body unchanged;
- basic.consume with ack mode: 406 PRECONDITION_FAILED - reply consumer cannot acknowledge;
  a second reply consumer on the channel: 406 PRECONDITION_FAILED - reply consumer already
  set; a request with reply_to=amq.rabbitmq.reply-to on a channel without a reply
  consumer (including after basic.cancel): 406 PRECONDITION_FAILED - fast reply consumer
  does not exist (basic.publish);
- a reply for a channel that is closed or no longer consumes, for an unknown token, or
  to the bare name is unroutable: dropped, returned 312 NO_ROUTE if mandatory
  (RabbitMQ 3.10 also returns a mandatory reply that it did deliver, a quirk not tested);
- queue.declare of amq.rabbitmq.reply-to (passive or not) is OK with 0 messages and 1
  consumer; of amq.rabbitmq.reply-to.<token>: the same while that reply consumer exists,
  else 404.
"""

import re

import pika
import pytest

from helpers import (
    BASIC_CONSUME,
    BASIC_PUBLISH,
    QUEUE_DECLARE,
    Arrivals,
    channel_closed,
    not_found_queue,
    settle,
    wait_channel_closed,
    wait_message,
    wait_until,
)

REPLY_TO = "amq.rabbitmq.reply-to"
TOKEN_NAME = re.compile(r"^amq\.rabbitmq\.reply-to\.[!-~]+$")
NO_CONSUMER = "PRECONDITION_FAILED - fast reply consumer does not exist"


def server_queue(ch):
    return ch.queue_declare("", exclusive=True).method.queue


def request(requester_ch, server_ch, q, body=b"req", **props):
    """Publish a request on the requester's channel; return the request as the server sees
    it (method, props, body)."""
    requester_ch.basic_publish("", q, body, pika.BasicProperties(reply_to=REPLY_TO, **props))
    return wait_message(server_ch, q)


@pytest.fixture
def rpc(conn):
    """(requester channel, its reply Arrivals, server channel, server queue)."""
    req = conn.channel()
    replies = Arrivals(conn, REPLY_TO, ch=req, auto_ack=True, consumer_tag="replies")
    srv = conn.channel()
    return req, replies, srv, server_queue(srv)


def test_round_trip(rpc):
    req, replies, srv, q = rpc
    _m, p, b = request(req, srv, q, b"ping", correlation_id="c1")
    assert b == b"ping"
    assert TOKEN_NAME.match(p.reply_to), p.reply_to
    assert p.correlation_id == "c1"
    srv.basic_publish("", p.reply_to, b"pong", pika.BasicProperties(
        correlation_id="c1", headers={"h": 1}, content_type="text/plain"))
    _t, m, rp, rb = replies.wait(1)[0]
    assert rb == b"pong"
    assert (m.consumer_tag, m.exchange, m.routing_key, m.redelivered) == (
        "replies", "", p.reply_to, False)
    assert (rp.correlation_id, rp.headers, rp.content_type) == ("c1", {"h": 1}, "text/plain")


def test_reply_from_another_connection(broker, rpc):
    req, replies, srv, q = rpc
    _m, p, _b = request(req, srv, q)
    other = broker.connect()
    try:
        other.channel().basic_publish("", p.reply_to, b"from elsewhere")
    finally:
        other.close()
    assert replies.wait(1)[0][3] == b"from elsewhere"


def test_many_requests_share_the_reply_name(rpc):
    req, replies, srv, q = rpc
    names = set()
    for i in range(5):
        _m, p, _b = request(req, srv, q, b"%d" % i, correlation_id=str(i))
        names.add(p.reply_to)
        srv.basic_publish("", p.reply_to, b"r%d" % i, pika.BasicProperties(correlation_id=str(i)))
    assert len(names) == 1
    replies.wait(5)
    assert [(p.correlation_id, b) for _t, _m, p, b in replies.items] == [
        (str(i), b"r%d" % i) for i in range(5)]


def test_each_channel_has_its_own_reply_name(conn):
    srv = conn.channel()
    q = server_queue(srv)
    names = []
    for _ in range(2):
        ch = conn.channel()
        ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
        names.append(request(ch, srv, q)[1].reply_to)
    assert names[0] != names[1]


def test_reply_consumer_must_be_no_ack(conn):
    ch = conn.channel()
    with channel_closed(406, "PRECONDITION_FAILED - reply consumer cannot acknowledge",
                        BASIC_CONSUME):
        ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=False)
    assert conn.is_open


def test_second_reply_consumer_on_channel(conn):
    ch = conn.channel()
    ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    with channel_closed(406, "PRECONDITION_FAILED - reply consumer already set", BASIC_CONSUME):
        ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)


def test_request_without_reply_consumer(conn):
    ch = conn.channel()
    q = server_queue(ch)
    ch.basic_publish("", q, b"req", pika.BasicProperties(reply_to=REPLY_TO))
    wait_channel_closed(conn, ch, 406, NO_CONSUMER, BASIC_PUBLISH)
    assert conn.is_open
    assert conn.channel().basic_get(q)[0] is None  # the request was not enqueued


def test_request_must_be_published_on_the_consuming_channel(conn):
    consuming = conn.channel()
    consuming.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    other = conn.channel()
    q = server_queue(other)
    other.basic_publish("", q, b"req", pika.BasicProperties(reply_to=REPLY_TO))
    wait_channel_closed(conn, other, 406, NO_CONSUMER, BASIC_PUBLISH)
    assert consuming.is_open


def test_request_after_cancel(conn):
    ch = conn.channel()
    tag = ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    ch.basic_cancel(tag)
    q = server_queue(conn.channel())
    ch.basic_publish("", q, b"req", pika.BasicProperties(reply_to=REPLY_TO))
    wait_channel_closed(conn, ch, 406, NO_CONSUMER, BASIC_PUBLISH)


def test_other_reply_to_values_are_not_rewritten(rpc):
    req, _replies, srv, q = rpc
    req.basic_publish("", q, b"x", pika.BasicProperties(reply_to="my-own-queue"))
    req.basic_publish("", q, b"y", pika.BasicProperties(reply_to=REPLY_TO + "x"))
    assert wait_message(srv, q)[1].reply_to == "my-own-queue"
    assert wait_message(srv, q)[1].reply_to == REPLY_TO + "x"


# ---------------------------------------------------------------- undeliverable replies


@pytest.fixture
def returns_channel(conn):
    ch = conn.channel()
    got = []
    ch.add_on_return_callback(
        lambda c, m, p, b: got.append((m.reply_code, m.reply_text, m.exchange, m.routing_key, b)))
    return ch, got


@pytest.mark.parametrize("how", ["channel-closed", "cancelled"])
def test_reply_to_gone_requester_is_dropped(broker, conn, rpc, returns_channel, how):
    req, replies, srv, q = rpc
    _m, p, _b = request(req, srv, q)
    if how == "channel-closed":
        req.close()
    else:
        replies.cancel()
    pub, returned = returns_channel
    pub.basic_publish("", p.reply_to, b"late")
    pub.basic_publish("", p.reply_to, b"late-mandatory", mandatory=True)
    wait_until(conn, lambda: returned, what="basic.return")
    settle(conn, 0.1)
    assert returned == [(312, "NO_ROUTE", "", p.reply_to, b"late-mandatory")]
    assert replies.items == []
    assert pub.is_open and conn.is_open


@pytest.mark.parametrize("name", [REPLY_TO, REPLY_TO + ".bogus-token"], ids=["bare", "bogus"])
def test_reply_to_unknown_name_is_unroutable(conn, returns_channel, name):
    pub, returned = returns_channel
    pub.basic_publish("", name, b"x", mandatory=True)
    settle(conn, 0.3)
    assert returned == [(312, "NO_ROUTE", "", name, b"x")]
    assert pub.is_open


def test_confirmed_reply_is_acked(broker, rpc):
    req, replies, srv, q = rpc
    _m, p, _b = request(req, srv, q)
    pub = srv.connection.channel()
    pub.confirm_delivery()
    pub.basic_publish("", p.reply_to, b"confirmed")
    assert replies.wait(1)[0][3] == b"confirmed"


# ---------------------------------------------------------------- queue.declare


@pytest.mark.parametrize("passive", [True, False])
def test_declare_reply_to_pseudo_queue(conn, passive):
    ok = conn.channel().queue_declare(REPLY_TO, passive=passive)
    assert (ok.method.queue, ok.method.message_count, ok.method.consumer_count) == (REPLY_TO, 0, 1)


def test_declare_reply_to_token(broker, rpc):
    req, replies, srv, q = rpc
    _m, p, _b = request(req, srv, q)
    other = broker.connect()
    try:
        ok = other.channel().queue_declare(p.reply_to, passive=True)
        assert (ok.method.queue, ok.method.message_count, ok.method.consumer_count) == (
            p.reply_to, 0, 1)
        req.close()
        ch = other.channel()
        with channel_closed(404, not_found_queue(p.reply_to), QUEUE_DECLARE):
            ch.queue_declare(p.reply_to, passive=True)
    finally:
        other.close()


def test_declare_unknown_reply_to_token(conn):
    name = REPLY_TO + ".foo"
    with channel_closed(404, not_found_queue(name), QUEUE_DECLARE):
        conn.channel().queue_declare(name, passive=True)
