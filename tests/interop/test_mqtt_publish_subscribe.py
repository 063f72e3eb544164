"""MQTT publish and subscribe: QoS 0 and 1, `+` and `#` wildcards, the `$`-topic rule,
QoS 2 downgraded, overlapping subscriptions, unsubscribe. Runs against Warren and the
reference RabbitMQ; deliberate differences are asserted per broker."""

import time

import pytest

from test_cross_protocol_fixtures import *  # noqa: F401,F403
from test_cross_protocol_fixtures import connect_packet, publish_packet, raw_mqtt


@pytest.mark.parametrize("version", [3, 4])
@pytest.mark.parametrize("qos", [0, 1])
def test_publish_reaches_exact_subscriber(proto, uniq_topic, version, qos):
    sub = proto.mqtt(version=version)
    assert sub.subscribe(f"{uniq_topic}/a", qos) == [qos]
    pub = proto.mqtt(version=version)
    pub.publish(f"{uniq_topic}/a", b"hello", qos=qos)
    m = sub.get()
    assert (m.topic, m.payload, m.qos, m.retain) == (f"{uniq_topic}/a", b"hello", qos, False)
    sub.disconnect()
    pub.disconnect()


def test_delivery_qos_is_the_lower_of_publish_and_subscription(proto, uniq_topic):
    sub0 = proto.mqtt()
    sub0.subscribe(f"{uniq_topic}/q", 0)
    sub1 = proto.mqtt()
    sub1.subscribe(f"{uniq_topic}/q", 1)
    pub = proto.mqtt()
    pub.publish(f"{uniq_topic}/q", b"one", qos=1)
    pub.publish(f"{uniq_topic}/q", b"zero", qos=0)
    assert [(m.payload, m.qos) for m in sub0.get_all(2)] == [(b"one", 0), (b"zero", 0)]
    assert [(m.payload, m.qos) for m in sub1.get_all(2)] == [(b"one", 1), (b"zero", 0)]
    for c in (sub0, sub1, pub):
        c.disconnect()


def test_single_level_wildcard(proto, uniq_topic):
    sub = proto.mqtt()
    sub.subscribe(f"{uniq_topic}/+/temp", 0)
    pub = proto.mqtt()
    for t in ("kitchen/temp", "hall/temp", "kitchen/humidity", "a/b/temp", "temp"):
        pub.publish(f"{uniq_topic}/{t}", t.encode(), qos=1)
    got = sorted(m.payload for m in sub.get_all(2))
    assert got == [b"hall/temp", b"kitchen/temp"]
    sub.expect_none()
    sub.disconnect()
    pub.disconnect()


def test_multi_level_wildcard_matches_parent_and_descendants(proto, uniq_topic):
    sub = proto.mqtt()
    sub.subscribe(f"{uniq_topic}/sport/#", 1)
    pub = proto.mqtt()
    for t in ("sport", "sport/tennis", "sport/tennis/player1", "sports"):
        pub.publish(f"{uniq_topic}/{t}", t.encode(), qos=1)
    got = sorted(m.payload for m in sub.get_all(3))
    assert got == [b"sport", b"sport/tennis", b"sport/tennis/player1"]
    sub.expect_none()
    sub.disconnect()
    pub.disconnect()


def test_dot_in_topic_is_a_level_separator_as_in_rabbitmq(proto, uniq_topic):
    # RabbitMQ maps '/' to '.', so "a.b" and "a/b" are the same AMQP routing key.
    sub = proto.mqtt()
    sub.subscribe(f"{uniq_topic}/a/b", 0)
    pub = proto.mqtt()
    pub.publish(f"{uniq_topic}/a.b", b"dotted", qos=1)
    m = sub.get()
    assert m.payload == b"dotted"
    assert m.topic == f"{uniq_topic}/a/b"
    sub.disconnect()
    pub.disconnect()


def test_qos2_publish_is_downgraded_and_acked(proto, uniq_topic):
    sub = proto.mqtt()
    assert sub.subscribe(f"{uniq_topic}/x", 2) == [1]  # granted QoS 1
    pub = proto.mqtt()
    info = pub.c.publish(f"{uniq_topic}/x", b"two", qos=2)
    m = sub.get()
    assert (m.payload, m.qos) == (b"two", 1)
    sub.disconnect()
    pub.disconnect()
    del info


def test_overlapping_subscriptions_deliver_once(proto, uniq_topic):
    sub = proto.mqtt()
    sub.subscribe([(f"{uniq_topic}/o/#", 1), (f"{uniq_topic}/o/+", 1)])
    pub = proto.mqtt()
    pub.publish(f"{uniq_topic}/o/x", b"once", qos=1)
    assert sub.get().payload == b"once"
    sub.expect_none()
    sub.disconnect()
    pub.disconnect()


def test_unsubscribe_stops_delivery(proto, uniq_topic):
    sub = proto.mqtt()
    sub.subscribe(f"{uniq_topic}/u", 1)
    pub = proto.mqtt()
    pub.publish(f"{uniq_topic}/u", b"before", qos=1)
    assert sub.get().payload == b"before"
    sub.unsubscribe(f"{uniq_topic}/u")
    pub.publish(f"{uniq_topic}/u", b"after", qos=1)
    sub.expect_none()
    sub.disconnect()
    pub.disconnect()


def test_resubscribe_changes_qos(proto, uniq_topic):
    sub = proto.mqtt()
    sub.subscribe(f"{uniq_topic}/r", 0)
    assert sub.subscribe(f"{uniq_topic}/r", 1) == [1]
    pub = proto.mqtt()
    pub.publish(f"{uniq_topic}/r", b"q1", qos=1)
    if proto.is_reference:
        # RabbitMQ 3.10 keeps the QoS 0 subscription's queue bound too and delivers
        # twice (its own "todo: prevent duplicates").
        assert sorted(m.qos for m in sub.get_all(2)) == [0, 1]
    else:
        # MQTT 3.8.4: the new subscription replaces the old one.
        m = sub.get()
        assert (m.payload, m.qos) == (b"q1", 1)
    sub.expect_none()
    sub.disconnect()
    pub.disconnect()


def test_dollar_topics_are_not_matched_by_leading_wildcards(proto, uniq_topic):
    wild = proto.mqtt()
    wild.subscribe("#", 0)
    wild.subscribe("+/status", 0)
    explicit = proto.mqtt()
    explicit.subscribe(f"$x{uniq_topic}/#", 0)
    pub = proto.mqtt()
    pub.publish(f"$x{uniq_topic}/status", b"dollar", qos=1)
    assert explicit.get().topic == f"$x{uniq_topic}/status"
    got = []
    deadline = time.time() + 1.5
    while time.time() < deadline:
        try:
            m = wild.get(timeout=0.3)
        except Exception:
            continue
        if m.payload == b"dollar":
            got.append(m.topic)
    if proto.is_reference:
        # RabbitMQ 3.10 routes through amq.topic, where '#' matches '$' keys too.
        assert len(got) == 1
    else:
        # MQTT 4.7.2: a filter starting with a wildcard does not match a '$' topic.
        assert got == []
    for c in (wild, explicit, pub):
        c.disconnect()


def test_many_messages_in_order_with_qos1(proto, uniq_topic):
    sub = proto.mqtt()
    sub.subscribe(f"{uniq_topic}/n", 1)
    pub = proto.mqtt()
    for i in range(300):
        pub.publish(f"{uniq_topic}/n", str(i).encode(), qos=1, wait=False)
    got = [int(m.payload) for m in sub.get_all(300, timeout=10)]
    assert got == list(range(300))
    sub.disconnect()
    pub.disconnect()


def test_large_payload(proto, uniq_topic):
    sub = proto.mqtt()
    sub.subscribe(f"{uniq_topic}/big", 1)
    pub = proto.mqtt()
    body = bytes(range(256)) * 4096  # 1 MiB
    pub.publish(f"{uniq_topic}/big", body, qos=1)
    assert sub.get(timeout=10).payload == body
    sub.disconnect()
    pub.disconnect()


@pytest.mark.parametrize("version", [3, 4])
def test_qos2_publish_of_mqtt3_is_answered_with_puback(proto, uniq_topic, version):
    # RabbitMQ downgrades QoS 2 to 1 for MQTT 3.x: the publisher gets a PUBACK (not
    # PUBREC), the subscriber a QoS 1 message.
    sub = proto.mqtt(version=version)
    sub.subscribe(f"{uniq_topic}/two", 2)
    r = raw_mqtt(proto)
    r.send(connect_packet(f"q2-{version}-{uniq_topic[-8:]}", version=version))
    assert r.recv_packet() == (0x20, b"\x00\x00")
    r.send(publish_packet(f"{uniq_topic}/two", b"exactly once?", qos=2, packet_id=7))
    assert r.recv_packet() == (0x40, b"\x00\x07")
    m = sub.get()
    assert (m.payload, m.qos) == (b"exactly once?", 1)
    r.close()
    sub.disconnect()
