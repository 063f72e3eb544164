"""MQTT and AMQP on one broker: MQTT publishes go to amq.topic with '/' as '.', AMQP
publishes to amq.topic reach MQTT subscribers, headers and delivery mode as RabbitMQ
sets them."""

import uuid

import pika

from test_cross_protocol_fixtures import *  # noqa: F401,F403
from test_cross_protocol_fixtures import definitions_with_users, spawn_proto


def amqp_queue_on(conn, key):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "amq.topic", routing_key=key)
    return ch, q


def get_one(ch, q, timeout=5):
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        m, props, body = ch.basic_get(q, auto_ack=True)
        if m:
            return m, props, body
        time.sleep(0.02)
    raise AssertionError("nothing arrived on the AMQP queue")


def test_mqtt_publish_reaches_amqp_consumer(proto, uniq_topic):
    conn = proto.amqp()
    ch, q = amqp_queue_on(conn, f"{uniq_topic}.sensors.*")
    c = proto.mqtt()
    c.publish(f"{uniq_topic}/sensors/t1", b"21.5", qos=1)
    c.publish(f"{uniq_topic}/sensors/t2", b"19.0", qos=0)
    m, props, body = get_one(ch, q)
    assert (m.exchange, m.routing_key, body) == ("amq.topic", f"{uniq_topic}.sensors.t1", b"21.5")
    assert props.delivery_mode == 2
    assert props.headers == {"x-mqtt-publish-qos": 1, "x-mqtt-dup": False}
    m, props, body = get_one(ch, q)
    assert (m.routing_key, body, props.delivery_mode) == (f"{uniq_topic}.sensors.t2", b"19.0", 1)
    assert props.headers["x-mqtt-publish-qos"] == 0
    c.disconnect()
    conn.close()


def test_amqp_publish_reaches_mqtt_subscriber(proto, uniq_topic):
    c = proto.mqtt()
    c.subscribe(f"{uniq_topic}/x/+", 1)
    conn = proto.amqp()
    ch = conn.channel()
    ch.basic_publish("amq.topic", f"{uniq_topic}.x.y", b"from amqp",
                     pika.BasicProperties(delivery_mode=2))
    ch.basic_publish("amq.topic", f"{uniq_topic}.x.z", b"transient")
    m = c.get()
    assert (m.topic, m.payload, m.qos) == (f"{uniq_topic}/x/y", b"from amqp", 1)
    m = c.get()
    # RabbitMQ 3.10: "non-MQTT publishes are assumed to be qos 1".
    assert (m.topic, m.payload, m.qos) == (f"{uniq_topic}/x/z", b"transient", 1)
    c.disconnect()
    conn.close()


def test_amqp_consumer_of_mqtt_session_queue_name(proto, uniq_topic):
    cid = f"qn-{uniq_topic[-8:]}"
    c = proto.mqtt(client_id=cid, clean=False)
    c.subscribe(f"{uniq_topic}/q", 1)
    c.disconnect()
    conn = proto.amqp()
    ch = conn.channel()
    ok = ch.queue_declare(f"mqtt-subscription-{cid}qos1", passive=True)
    assert ok.method.consumer_count == 0
    conn.close()
    proto.mqtt(client_id=cid, clean=True).disconnect()


def test_vhost_in_username_keeps_traffic_in_that_vhost(proto, uniq_topic):
    vhost = f"mqtt-vh-{uuid.uuid4().hex[:8]}"
    proto.api.ok("PUT", f"/api/vhosts/{vhost}")
    try:
        proto.api.ok("PUT", f"/api/permissions/{vhost}/guest",
                     {"configure": ".*", "write": ".*", "read": ".*"})
        inside = proto.mqtt(username=f"{vhost}:guest")
        inside.subscribe(f"{uniq_topic}/v", 1)
        outside = proto.mqtt()  # vhost "/"
        outside.subscribe(f"{uniq_topic}/v", 1)
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            host=proto.host, port=proto.amqp_port, virtual_host=vhost,
            credentials=pika.PlainCredentials("guest", "guest")))
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(q, "amq.topic", routing_key=f"{uniq_topic}.v")
        pub = proto.mqtt(username=f"{vhost}:guest")
        pub.publish(f"{uniq_topic}/v", b"in the vhost", qos=1)
        assert inside.get().payload == b"in the vhost"
        assert get_one(ch, q)[2] == b"in the vhost"
        outside.expect_none()
        ch.basic_publish("amq.topic", f"{uniq_topic}.v", b"from amqp in the vhost")
        assert inside.get().payload == b"from amqp in the vhost"
        outside.expect_none()
        for c in (inside, outside, pub):
            c.disconnect()
        conn.close()
    finally:
        proto.api.request("DELETE", f"/api/vhosts/{vhost}")


def test_configured_exchange(proto):
    # --mqtt-exchange (RabbitMQ's mqtt.exchange): publishes go there and subscriptions
    # bind there; amq.topic is left alone.
    require_warren(proto, "the reference runs with the default mqtt.exchange")
    defs = definitions_with_users([])
    defs["exchanges"] = [{"name": "mqtt.x", "vhost": "/", "type": "topic", "durable": True,
                          "auto_delete": False, "internal": False, "arguments": {}}]
    with spawn_proto(definitions=defs, extra_args=("--mqtt-exchange", "mqtt.x")) as h:
        p = h["p"]
        sub = p.mqtt(client_id="cfg-x", clean=False)
        sub.subscribe("cfg/+", 1)
        conn = p.amqp()
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(q, "mqtt.x", routing_key="cfg.*")
        other = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(other, "amq.topic", routing_key="cfg.*")
        pub = p.mqtt()
        pub.publish("cfg/a", b"via mqtt.x", qos=1)
        m, _, body = get_one(ch, q)
        assert (m.exchange, m.routing_key, body) == ("mqtt.x", "cfg.a", b"via mqtt.x")
        assert sub.get().payload == b"via mqtt.x"
        ch.basic_publish("amq.topic", "cfg.b", b"not for mqtt")
        ch.basic_publish("mqtt.x", "cfg.c", b"for mqtt")
        m = sub.get()
        assert (m.topic, m.payload) == ("cfg/c", b"for mqtt")
        sub.expect_none()
        assert ch.basic_get(other, auto_ack=True)[2] == b"not for mqtt"
        # The session's binding is on mqtt.x, and so it is after a restart.
        sub.disconnect()
        pub.disconnect()
        conn.close()
        h["p"] = p = p.restart()
        sub = p.mqtt(client_id="cfg-x", clean=False)
        assert sub.session_present
        conn = p.amqp()
        conn.channel().basic_publish("mqtt.x", "cfg.d", b"after restart")
        assert sub.get().payload == b"after restart"
        sub.disconnect()
        conn.close()
