"""MQTT and AMQP on one broker: MQTT publishes go to amq.topic with '/' as '.', AMQP
publishes to amq.topic reach MQTT subscribers, headers and delivery mode as RabbitMQ
sets them."""

import pika

from test_cross_protocol_fixtures import *  # noqa: F401,F403


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
