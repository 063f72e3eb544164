"""STOMP access control: each destination needs the permissions of the AMQP operations
RabbitMQ's STOMP plugin performs for it (declare: configure; bind: write on the queue,
read on the exchange, topic read; consume: read; publish: write on the exchange, topic
write), checked in the same order, refused with RabbitMQ's ERROR frame
(`message:access_refused`, the AMQP error text as body) and the connection closed.

The users are `acl_users` (test_cross_protocol_fixtures.py). Recorded against RabbitMQ
3.10.8; the one difference: after such an ERROR, RabbitMQ still sends the RECEIPT the
failed frame asked for, Warren does not (so the tests read the ERROR, not the RECEIPT).
"""

import re
import uuid

import pika
import pytest

from test_cross_protocol_fixtures import *  # noqa: F401,F403
from test_cross_protocol_fixtures import acl_users, raw_stomp  # noqa: F401


def login(proto, acl_users, role):
    r = raw_stomp(proto)
    r.send(f"CONNECT\naccept-version:1.2\nhost:/\nlogin:{acl_users.name(role)}\n"
           f"passcode:pw\n\n\0".encode())
    cmd, headers, _ = r.frame()
    assert cmd == "CONNECTED", headers
    return r


def frame(command, body="", **headers):
    head = "".join(f"{k.replace('_', '-')}:{v}\n" for k, v in headers.items())
    return f"{command}\n{head}\n{body}\0".encode()


def refused(proto, acl_users, r, role, text, prefix=True):
    """The ERROR RabbitMQ sends when an AMQP operation is refused, then the close."""
    cmd, headers, body = r.frame()
    assert cmd == "ERROR", (cmd, headers, body)
    assert headers["message"] == "access_refused"
    expected = f"{text} in vhost '/' refused for user '{acl_users.name(role)}'"
    if prefix:
        expected = "ACCESS_REFUSED - " + expected
    if isinstance(text, re.Pattern):
        assert text.fullmatch(body.decode()), body
    else:
        assert body.decode() == expected
    assert r.closed()


def uniq(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def queue_exists(proto, name):
    conn = proto.amqp()
    try:
        conn.channel().queue_declare(name, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if conn.is_open:
            conn.close()


def delete_queue(proto, name):
    conn = proto.amqp()
    conn.channel().queue_delete(name)
    conn.close()


@pytest.fixture
def existing_queue(proto):
    name = uniq("acl-q")
    conn = proto.amqp()
    conn.channel().queue_declare(name, durable=False, auto_delete=False)
    conn.close()
    yield name
    delete_queue(proto, name)


# -- CONNECT -------------------------------------------------------------------------

def test_connect_without_access_to_the_vhost_is_refused(proto, acl_users):
    r = raw_stomp(proto)
    r.send(f"CONNECT\naccept-version:1.2\nhost:/\nlogin:{acl_users.name('novhost')}\n"
           f"passcode:pw\n\n\0".encode())
    cmd, headers, body = r.frame()
    assert (cmd, headers["message"]) == ("ERROR", "Bad CONNECT")
    assert body == b"Virtual host '/' access denied"


# -- SEND ----------------------------------------------------------------------------

def test_send_to_queue_needs_configure_to_declare_it(proto, acl_users):
    q = uniq("acl-q")
    r = login(proto, acl_users, "noconf")
    r.send(frame("SEND", "x", destination=f"/queue/{q}", receipt="r1"))
    refused(proto, acl_users, r, "noconf", f"access to queue '{q}'")
    assert not queue_exists(proto, q)


def test_send_to_queue_needs_write_on_the_default_exchange(proto, acl_users):
    q = uniq("acl-q")
    r = login(proto, acl_users, "nowrite")
    r.send(frame("SEND", "x", destination=f"/queue/{q}", receipt="r1"))
    refused(proto, acl_users, r, "nowrite", "access to exchange 'amq.default'")
    # Declared before the publish was refused, as in RabbitMQ.
    assert queue_exists(proto, q)
    delete_queue(proto, q)


def test_send_to_amq_queue_needs_write_on_the_default_exchange(proto, acl_users,
                                                                existing_queue):
    r = login(proto, acl_users, "nowrite")
    r.send(frame("SEND", "x", destination=f"/amq/queue/{existing_queue}", receipt="r1"))
    refused(proto, acl_users, r, "nowrite", "access to exchange 'amq.default'")


def test_send_to_topic_needs_write_on_amq_topic(proto, acl_users):
    r = login(proto, acl_users, "nowrite")
    r.send(frame("SEND", "x", destination="/topic/a.b", receipt="r1"))
    refused(proto, acl_users, r, "nowrite", "access to exchange 'amq.topic'")


def test_send_to_exchange_needs_write_on_it(proto, acl_users):
    r = login(proto, acl_users, "nowrite")
    r.send(frame("SEND", "x", destination="/exchange/amq.direct/k", receipt="r1"))
    refused(proto, acl_users, r, "nowrite", "access to exchange 'amq.direct'")


@pytest.mark.parametrize("dest", ["/topic/x.y", "/exchange/amq.topic/x.y"])
def test_send_refused_by_the_topic_write_permission(proto, acl_users, dest):
    r = login(proto, acl_users, "topic")
    r.send(frame("SEND", "x", destination=dest, receipt="r1"))
    refused(proto, acl_users, r, "topic", "access to topic 'x.y' in exchange 'amq.topic'")


def test_send_allowed_by_the_topic_write_permission(proto, acl_users):
    key = f"w.{uuid.uuid4().hex[:8]}"
    sub = proto.stomp()
    sub.conn.subscribe(f"/topic/{key}", id="s1", headers={"receipt": "s1"})
    sub.receipt()
    r = login(proto, acl_users, "topic")
    r.send(frame("SEND", "allowed", destination=f"/topic/{key}", receipt="r1"))
    cmd, headers, _ = r.frame()
    assert (cmd, headers["receipt-id"]) == ("RECEIPT", "r1")
    assert sub.get().body == "allowed"
    r.close()
    sub.disconnect()


def test_send_with_temp_queue_reply_to_needs_configure(proto, acl_users):
    r = login(proto, acl_users, "noconf")
    r.send(frame("SEND", "x", destination="/topic/w.a", reply_to="/temp-queue/t1",
                 receipt="r1"))
    refused(proto, acl_users, r, "noconf", re.compile(
        r"ACCESS_REFUSED - access to queue 'amq\.gen-[\w-]+' in vhost '/' refused "
        r"for user 'noconf-\w+'"))


def test_transactional_send_is_checked_at_commit(proto, acl_users):
    r = login(proto, acl_users, "topic")
    r.send(frame("BEGIN", transaction="t1"))
    r.send(frame("SEND", "x", destination="/topic/x.y", transaction="t1", receipt="r1"))
    # Buffered: nothing refused yet.
    r.send(frame("COMMIT", transaction="t1"))
    refused(proto, acl_users, r, "topic", "access to topic 'x.y' in exchange 'amq.topic'")


# -- SUBSCRIBE -----------------------------------------------------------------------

def test_subscribe_to_queue_needs_configure(proto, acl_users):
    q = uniq("acl-q")
    r = login(proto, acl_users, "noconf")
    r.send(frame("SUBSCRIBE", id="1", destination=f"/queue/{q}"))
    refused(proto, acl_users, r, "noconf", f"access to queue '{q}'")
    assert not queue_exists(proto, q)


def test_subscribe_to_queue_needs_read_to_consume(proto, acl_users):
    q = uniq("acl-q")
    r = login(proto, acl_users, "noread")
    r.send(frame("SUBSCRIBE", id="1", destination=f"/queue/{q}"))
    refused(proto, acl_users, r, "noread", f"access to queue '{q}'")
    # Declared, then the consume was refused.
    assert queue_exists(proto, q)
    delete_queue(proto, q)


def test_subscribe_to_amq_queue_needs_read(proto, acl_users, existing_queue):
    r = login(proto, acl_users, "noread")
    r.send(frame("SUBSCRIBE", id="1", destination=f"/amq/queue/{existing_queue}"))
    refused(proto, acl_users, r, "noread", f"access to queue '{existing_queue}'")


def test_subscribe_to_exchange_needs_read_on_it(proto, acl_users):
    r = login(proto, acl_users, "noread")
    r.send(frame("SUBSCRIBE", id="1", destination="/exchange/amq.fanout"))
    refused(proto, acl_users, r, "noread", "access to exchange 'amq.fanout'")


@pytest.mark.parametrize("durable", [False, True])
def test_subscribe_refused_by_the_topic_read_permission(proto, acl_users, durable):
    r = login(proto, acl_users, "topic")
    extra = {"durable": "true", "auto_delete": "false"} if durable else {}
    r.send(frame("SUBSCRIBE", id="1", destination="/topic/x.y", **extra))
    # RabbitMQ 3.10 raises this one without the "ACCESS_REFUSED - " prefix.
    refused(proto, acl_users, r, "topic", "access to topic 'x.y' in exchange 'amq.topic'",
            prefix=False)


def test_subscribe_allowed_by_the_topic_read_permission(proto, acl_users):
    key = f"r.{uuid.uuid4().hex[:8]}"
    r = login(proto, acl_users, "topic")
    r.send(frame("SUBSCRIBE", id="1", destination=f"/topic/{key}", receipt="s1"))
    cmd, headers, _ = r.frame()
    assert (cmd, headers["receipt-id"]) == ("RECEIPT", "s1")
    conn = proto.amqp()
    conn.channel().basic_publish("amq.topic", key, b"to stomp")
    conn.close()
    cmd, headers, body = r.frame()
    assert (cmd, body) == ("MESSAGE", b"to stomp")
    r.close()


def test_subscribe_to_topic_needs_configure_on_its_queue(proto, acl_users):
    r = login(proto, acl_users, "noconf")
    r.send(frame("SUBSCRIBE", id="1", destination="/topic/a.b"))
    refused(proto, acl_users, r, "noconf", re.compile(
        r"ACCESS_REFUSED - access to queue 'stomp-subscription-[\w-]+' in vhost '/' "
        r"refused for user 'noconf-\w+'"))
