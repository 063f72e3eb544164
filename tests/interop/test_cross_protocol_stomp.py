"""STOMP with AMQP and MQTT on one broker: headers mapped to and from AMQP properties as
RabbitMQ maps them (persistent, content-type, correlation-id, reply-to, expiration,
priority, custom headers), and MQTT and STOMP meeting on amq.topic."""

import signal
import time
import uuid

import pika
import pytest

from test_cross_protocol_fixtures import *  # noqa: F401,F403
from test_cross_protocol_fixtures import spawn_proto


def uid():
    return uuid.uuid4().hex[:10]


def amqp_get(ch, q, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m, props, body = ch.basic_get(q, auto_ack=True)
        if m:
            return m, props, body
        time.sleep(0.02)
    raise AssertionError("nothing arrived on the AMQP queue")


def test_stomp_send_headers_become_amqp_properties(proto):
    q = f"stomp-to-amqp-{uid()}"
    conn = proto.amqp()
    ch = conn.channel()
    ch.queue_declare(q, durable=True)
    s = proto.stomp()
    s.conn.send(f"/queue/{q}", "payload", headers={
        "persistent": "true", "content-type": "text/plain", "correlation-id": "corr-1",
        "reply-to": "replies", "expiration": "60000", "priority": "4", "x-custom": "abc",
        "receipt": "r"})
    s.receipt()
    m, props, body = amqp_get(ch, q)
    assert body == b"payload"
    assert (m.exchange, m.routing_key) == ("", q)
    assert props.delivery_mode == 2
    assert props.content_type == "text/plain"
    assert props.correlation_id == "corr-1"
    assert props.reply_to == "replies"
    assert props.expiration == "60000"
    assert props.priority == 4
    assert props.headers["x-custom"] == "abc"
    assert "destination" not in props.headers
    s.disconnect()
    ch.queue_delete(q)
    conn.close()


def test_amqp_properties_become_stomp_headers(proto):
    q = f"amqp-to-stomp-{uid()}"
    s = proto.stomp()
    s.conn.subscribe(f"/queue/{q}", id="x", receipt="r")
    s.receipt()
    conn = proto.amqp()
    ch = conn.channel()
    ch.basic_publish("", q, b"from amqp", pika.BasicProperties(
        delivery_mode=2, content_type="application/json", correlation_id="c9",
        reply_to="amq.gen-reply", priority=3, message_id="mid-1", type="t", app_id="app",
        expiration="60000", timestamp=1700000000, content_encoding="gzip", user_id="guest",
        headers={"h-str": "v", "h-int": 42}))
    m = s.get()
    h = m.headers
    assert m.body == "from amqp"
    assert h["persistent"] == "true"
    assert h["content-type"] == "application/json"
    assert h["correlation-id"] == "c9"
    assert h["reply-to"] == "/reply-queue/amq.gen-reply"
    assert h["priority"] == "3"
    assert h["amqp-message-id"] == "mid-1"
    assert (h["type"], h["app-id"]) == ("t", "app")
    assert (h["expiration"], h["timestamp"]) == ("60000", "1700000000")
    assert (h["content-encoding"], h["user-id"]) == ("gzip", "guest")
    assert (h["h-str"], h["h-int"]) == ("v", "42")
    assert h["destination"] == f"/queue/{q}"
    s.disconnect()
    ch.queue_delete(q)
    conn.close()


def test_stomp_topic_reaches_amqp_and_mqtt(proto, uniq_topic):
    key = uniq_topic.replace("/", ".")
    m = proto.mqtt()
    m.subscribe(f"{uniq_topic}/news", 1)
    conn = proto.amqp()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "amq.topic", routing_key=f"{key}.news")
    s = proto.stomp()
    s.conn.send(f"/topic/{key}.news", "headline", headers={"receipt": "r"})
    s.receipt()
    got = m.get()
    assert (got.topic, got.payload) == (f"{uniq_topic}/news", b"headline")
    _, _, body = amqp_get(ch, q)
    assert body == b"headline"
    s.disconnect()
    m.disconnect()
    conn.close()


def test_mqtt_publish_reaches_stomp_topic_subscriber(proto, uniq_topic):
    key = uniq_topic.replace("/", ".")
    s = proto.stomp()
    s.conn.subscribe(f"/topic/{key}.#", id="m", receipt="r")
    s.receipt()
    c = proto.mqtt()
    c.publish(f"{uniq_topic}/a/b", b"from mqtt", qos=1)
    got = s.get()
    assert got.body == "from mqtt"
    assert got.headers["destination"] == f"/topic/{key}.a.b"
    assert got.headers["persistent"] == "true"
    # The MQTT adapter's AMQP headers (x-mqtt-publish-qos, a byte, and x-mqtt-dup, a
    # boolean) are not carried: as RabbitMQ, only string and integer headers become
    # STOMP headers.
    assert not {"x-mqtt-publish-qos", "x-mqtt-dup"} & set(got.headers)
    c.disconnect()
    s.disconnect()


def test_host_header_selects_the_vhost(proto):
    vhost = f"stomp-vh-{uid()}"
    proto.api.ok("PUT", f"/api/vhosts/{vhost}")
    try:
        proto.api.ok("PUT", f"/api/permissions/{vhost}/guest",
                     {"configure": ".*", "write": ".*", "read": ".*"})
        q = f"stomp-in-vhost-{uid()}"
        s = proto.stomp(vhost=vhost)
        s.conn.send(f"/queue/{q}", "in the vhost", headers={"receipt": "r"})
        s.receipt()
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            host=proto.host, port=proto.amqp_port, virtual_host=vhost,
            credentials=pika.PlainCredentials("guest", "guest")))
        _, _, body = amqp_get(conn.channel(), q)
        assert body == b"in the vhost"
        conn.close()
        # Not in vhost "/".
        default = proto.amqp()
        ch = default.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
            ch.queue_declare(q, passive=True)
        assert e.value.reply_code == 404
        default.close()
        s.disconnect()
    finally:
        proto.api.request("DELETE", f"/api/vhosts/{vhost}")


def test_receipted_persistent_sends_survive_a_crash(proto):
    # A RECEIPT for a persistent SEND to a durable queue comes after the fsync, as a
    # publisher confirm: a broker killed right after still has every receipted message.
    require_warren(proto, "cannot kill the reference broker")
    with spawn_proto() as h:
        p = h["p"]
        s = p.stomp()
        for i in range(100):
            s.conn.send("/queue/stomp-crash", str(i), headers={"persistent": "true",
                                                               "receipt": f"r{i}"})
        for _ in range(100):
            s.receipt()
        h["p"] = p = p.restart(signal.SIGKILL)
        conn = p.amqp()
        ch = conn.channel()
        got = [amqp_get(ch, "stomp-crash")[2] for _ in range(100)]
        assert got == [str(i).encode() for i in range(100)]
        conn.close()
