"""Retained messages: kept per topic (the last one), sent with RETAIN to new
subscribers at the lower QoS, cleared by an empty retained publish, stored durably
(they survive a broker restart, against Warren)."""

import time

from test_cross_protocol_fixtures import *  # noqa: F401,F403
from test_cross_protocol_fixtures import spawn_proto


def test_new_subscriber_gets_the_last_retained_message(proto, uniq_topic):
    p = proto.mqtt()
    p.publish(f"{uniq_topic}/r", b"first", qos=1, retain=True)
    p.publish(f"{uniq_topic}/r", b"last", qos=1, retain=True)
    s = proto.mqtt()
    s.subscribe(f"{uniq_topic}/r", 1)
    m = s.get()
    assert (m.payload, m.retain, m.qos) == (b"last", True, 1)
    s.expect_none()
    p.publish(f"{uniq_topic}/r", b"", qos=1, retain=True)
    p.disconnect()
    s.disconnect()


def test_live_delivery_of_a_retained_publish_has_retain_clear(proto, uniq_topic):
    s = proto.mqtt()
    s.subscribe(f"{uniq_topic}/live", 1)
    p = proto.mqtt()
    p.publish(f"{uniq_topic}/live", b"now", qos=1, retain=True)
    m = s.get()
    assert (m.payload, m.retain) == (b"now", False)
    p.publish(f"{uniq_topic}/live", b"", qos=1, retain=True)
    p.disconnect()
    s.disconnect()


def test_empty_retained_publish_clears(proto, uniq_topic):
    p = proto.mqtt()
    p.publish(f"{uniq_topic}/c", b"x", qos=1, retain=True)
    p.publish(f"{uniq_topic}/c", b"", qos=1, retain=True)
    s = proto.mqtt()
    s.subscribe(f"{uniq_topic}/c", 1)
    s.expect_none()
    p.disconnect()
    s.disconnect()


def test_retained_qos_is_the_lower_of_message_and_subscription(proto, uniq_topic):
    p = proto.mqtt()
    p.publish(f"{uniq_topic}/q", b"q1", qos=1, retain=True)
    s = proto.mqtt()
    s.subscribe(f"{uniq_topic}/q", 0)
    m = s.get()
    assert (m.payload, m.qos, m.retain) == (b"q1", 0, True)
    p.publish(f"{uniq_topic}/q", b"", qos=1, retain=True)
    p.disconnect()
    s.disconnect()


def test_wildcard_subscription_gets_matching_retained_messages(proto, uniq_topic):
    p = proto.mqtt()
    p.publish(f"{uniq_topic}/w/a", b"a", qos=1, retain=True)
    p.publish(f"{uniq_topic}/w/b", b"b", qos=1, retain=True)
    s = proto.mqtt()
    s.subscribe(f"{uniq_topic}/w/+", 1)
    if proto.is_reference:
        # RabbitMQ 3.10 looks retained messages up by the exact filter only.
        s.expect_none()
    else:
        # MQTT 3.3.1.3: every retained message matching the filter is sent.
        assert sorted(m.payload for m in s.get_all(2)) == [b"a", b"b"]
    for t in ("a", "b"):
        p.publish(f"{uniq_topic}/w/{t}", b"", qos=1, retain=True)
    p.disconnect()
    s.disconnect()


def test_retained_messages_survive_a_broker_restart(proto):
    require_warren(proto, "cannot restart the reference broker")
    with spawn_proto() as h:
        p = h["p"].mqtt()
        p.publish("ret/keep", b"durable state", qos=1, retain=True)
        p.publish("ret/gone", b"cleared", qos=1, retain=True)
        p.publish("ret/gone", b"", qos=1, retain=True)
        p.disconnect()
        time.sleep(0.5)
        h["p"] = h["p"].restart()
        s = h["p"].mqtt()
        s.subscribe("ret/#", 1)
        m = s.get()
        assert (m.topic, m.payload, m.retain) == ("ret/keep", b"durable state", True)
        s.expect_none()
        s.disconnect()
