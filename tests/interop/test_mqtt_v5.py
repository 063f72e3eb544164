"""MQTT 5 with paho-mqtt: session and message expiry, subscription identifiers and
options (No Local, Retain As Published, Retain Handling), topic aliases,
request/response, user properties, reason codes, Maximum Packet Size, Receive Maximum,
will delay, assigned client ids. Warren only (RabbitMQ 3.10 has no MQTT 5)."""

import time

import pytest

from test_cross_protocol_fixtures import *  # noqa: F401,F403
from test_cross_protocol_fixtures import (connect_packet, mqtt_string, publish_packet, raw_mqtt,
                                         spawn_proto, var_int)


@pytest.fixture(autouse=True)
def _warren_only(proto):
    require_warren(proto, "RabbitMQ 3.10 has no MQTT 5")


def props(kind, **kw):
    p = Properties(kind)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def v5(proto, client_id=None, **kw):
    return proto.mqtt(client_id=client_id, version=5, **kw)


def test_assigned_client_identifier(proto):
    c = v5(proto, client_id="")
    assert c.rc == 0
    assert len(c.connack_properties.AssignedClientIdentifier) == 22
    assert c.connack_properties.MaximumQoS == 1
    c.disconnect()


def test_session_expiry(proto, uniq_topic):
    cid = f"se-{uniq_topic[-8:]}"
    c = v5(proto, cid, clean_start=False,
           properties=props(PacketTypes.CONNECT, SessionExpiryInterval=2))
    c.subscribe(f"{uniq_topic}/s", 1)
    c.disconnect()
    pub = v5(proto)
    pub.publish(f"{uniq_topic}/s", b"kept", qos=1)
    c = v5(proto, cid, clean_start=False,
           properties=props(PacketTypes.CONNECT, SessionExpiryInterval=2))
    assert c.session_present
    assert c.get().payload == b"kept"
    c.disconnect()
    time.sleep(3.5)
    pub.publish(f"{uniq_topic}/s", b"too late", qos=1)
    c = v5(proto, cid, clean_start=False,
           properties=props(PacketTypes.CONNECT, SessionExpiryInterval=2))
    assert not c.session_present
    c.expect_none()
    c.disconnect()
    pub.disconnect()


def test_session_expiry_zero_ends_the_session_at_disconnect(proto, uniq_topic):
    cid = f"se0-{uniq_topic[-8:]}"
    c = v5(proto, cid, clean_start=False)
    c.subscribe(f"{uniq_topic}/z", 1)
    c.disconnect()
    c = v5(proto, cid, clean_start=False)
    assert not c.session_present
    c.disconnect()


def test_message_expiry(proto, uniq_topic):
    cid = f"me-{uniq_topic[-8:]}"
    c = v5(proto, cid, clean_start=False,
           properties=props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    c.subscribe(f"{uniq_topic}/m", 1)
    c.disconnect()
    pub = v5(proto)
    pub.publish(f"{uniq_topic}/m", b"short", qos=1,
                properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=1))
    pub.publish(f"{uniq_topic}/m", b"long", qos=1,
                properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=100))
    time.sleep(1.5)
    c = v5(proto, cid, clean_start=False,
           properties=props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    m = c.get()
    assert m.payload == b"long"
    assert 90 <= m.properties.MessageExpiryInterval <= 100
    c.expect_none()
    c.disconnect()
    v5(proto, cid, clean_start=True).disconnect()
    pub.disconnect()


def test_subscription_identifiers(proto, uniq_topic):
    c = v5(proto)
    c.subscribe(f"{uniq_topic}/+/x", 1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7))
    c.subscribe(f"{uniq_topic}/a/#", 1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=9))
    c.publish(f"{uniq_topic}/a/x", b"both", qos=1)
    m = c.get()
    assert sorted(m.properties.SubscriptionIdentifier) == [7, 9]
    c.publish(f"{uniq_topic}/a/y", b"one", qos=1)
    assert c.get().properties.SubscriptionIdentifier == [9]
    c.disconnect()


def test_no_local(proto, uniq_topic):
    c = v5(proto)
    c.subscribe(f"{uniq_topic}/nl", options=SubscribeOptions(qos=1, noLocal=True))
    other = v5(proto)
    c.publish(f"{uniq_topic}/nl", b"mine", qos=1)
    other.publish(f"{uniq_topic}/nl", b"theirs", qos=1)
    assert c.get().payload == b"theirs"
    c.expect_none()
    c.disconnect()
    other.disconnect()


def test_retain_as_published(proto, uniq_topic):
    c = v5(proto)
    c.subscribe(f"{uniq_topic}/rap", options=SubscribeOptions(qos=1, retainAsPublished=True))
    plain = v5(proto)
    plain.subscribe(f"{uniq_topic}/rap", 1)
    p = v5(proto)
    p.publish(f"{uniq_topic}/rap", b"kept", qos=1, retain=True)
    assert c.get().retain is True
    assert plain.get().retain is False
    p.publish(f"{uniq_topic}/rap", b"", qos=1, retain=True)
    for x in (c, plain, p):
        x.disconnect()


def test_retain_handling(proto, uniq_topic):
    p = v5(proto)
    p.publish(f"{uniq_topic}/rh", b"state", qos=1, retain=True)
    never = v5(proto)
    never.subscribe(f"{uniq_topic}/rh", options=SubscribeOptions(qos=1, retainHandling=2))
    never.expect_none()
    new_only = v5(proto)
    new_only.subscribe(f"{uniq_topic}/rh", options=SubscribeOptions(qos=1, retainHandling=1))
    assert new_only.get().payload == b"state"
    new_only.subscribe(f"{uniq_topic}/rh", options=SubscribeOptions(qos=1, retainHandling=1))
    new_only.expect_none()
    p.publish(f"{uniq_topic}/rh", b"", qos=1, retain=True)
    for x in (p, never, new_only):
        x.disconnect()


def test_topic_alias(proto, uniq_topic):
    s = v5(proto)
    s.subscribe(f"{uniq_topic}/alias", 1)
    p = v5(proto)
    p.publish(f"{uniq_topic}/alias", b"first", qos=1, properties=props(PacketTypes.PUBLISH, TopicAlias=3))
    p.publish("", b"second", qos=1, properties=props(PacketTypes.PUBLISH, TopicAlias=3))
    assert [(m.topic, m.payload) for m in s.get_all(2)] == [
        (f"{uniq_topic}/alias", b"first"), (f"{uniq_topic}/alias", b"second")]
    s.disconnect()
    p.disconnect()


def test_request_response_and_user_properties(proto, uniq_topic):
    server = v5(proto)
    server.subscribe(f"{uniq_topic}/req", 1)
    client = v5(proto)
    client.subscribe(f"{uniq_topic}/resp", 1)
    client.publish(f"{uniq_topic}/req", b"question", qos=1, properties=props(
        PacketTypes.PUBLISH, ResponseTopic=f"{uniq_topic}/resp", CorrelationData=b"\x01\x02id",
        UserProperty=[("k1", "v1"), ("k2", "v2")], ContentType="text/plain"))
    req = server.get()
    assert req.properties.ResponseTopic == f"{uniq_topic}/resp"
    assert req.properties.CorrelationData == b"\x01\x02id"
    assert sorted(req.properties.UserProperty) == [("k1", "v1"), ("k2", "v2")]
    assert req.properties.ContentType == "text/plain"
    server.publish(req.properties.ResponseTopic, b"answer", qos=1, properties=props(
        PacketTypes.PUBLISH, CorrelationData=req.properties.CorrelationData))
    resp = client.get()
    assert (resp.payload, resp.properties.CorrelationData) == (b"answer", b"\x01\x02id")
    server.disconnect()
    client.disconnect()


def test_puback_says_no_matching_subscribers(proto, uniq_topic):
    acks = []
    c = v5(proto)
    c.c.on_publish = lambda cl, ud, mid, rc, pr: acks.append(rc)
    c.publish(f"{uniq_topic}/nobody", b"x", qos=1)
    time.sleep(0.2)
    assert acks and acks[0].value == 0x10
    c.disconnect()


def test_shared_subscriptions_are_refused(proto, uniq_topic):
    c = v5(proto)
    assert c.subscribe(f"$share/g/{uniq_topic}/s", 1) == [0x9E]
    c.disconnect()


def test_qos2_publish_is_refused_with_reason_155(proto, uniq_topic):
    c = v5(proto)
    c.c.publish(f"{uniq_topic}/q2", b"x", qos=2)
    rc, _ = c.disconnects.get(timeout=5)
    assert rc.value == 0x9B
    c.c.loop_stop()


def test_maximum_packet_size_drops_larger_messages(proto, uniq_topic):
    s = v5(proto, properties=props(PacketTypes.CONNECT, MaximumPacketSize=200))
    s.subscribe(f"{uniq_topic}/mps", 1)
    p = v5(proto)
    p.publish(f"{uniq_topic}/mps", b"x" * 500, qos=1)
    p.publish(f"{uniq_topic}/mps", b"small", qos=1)
    assert s.get().payload == b"small"
    s.expect_none()
    s.disconnect()
    p.disconnect()


def test_receive_maximum_limits_unacked_deliveries(proto, uniq_topic):
    topic = f"{uniq_topic}/rm"
    r = raw_mqtt(proto)
    connect_props = b"\x21\x00\x02"  # Receive Maximum 2
    body = mqtt_string(b"MQTT") + bytes([5, 0x02]) + (60).to_bytes(2, "big")
    body += var_int(len(connect_props)) + connect_props + mqtt_string("rm-client")
    body += b""
    r.send(bytes([0x10]) + var_int(len(body)) + body)
    assert r.recv_packet()[0] == 0x20
    sub = (1).to_bytes(2, "big") + b"\x00" + mqtt_string(topic) + b"\x01"
    r.send(bytes([0x82]) + var_int(len(sub)) + sub)
    assert r.recv_packet()[0] == 0x90
    p = v5(proto)
    for i in range(5):
        p.publish(topic, f"m{i}".encode(), qos=1)
    got = [r.recv_packet() for _ in range(2)]
    assert all(f & 0xF0 == 0x30 for f, _ in got)
    r.s.settimeout(0.7)
    try:
        extra = r.s.recv(1)
    except OSError:
        extra = b""
    assert extra == b"", "a third delivery exceeded Receive Maximum"
    # PUBACK the first: one more may come.
    first_pid = got[0][1][2 + len(topic):4 + len(topic)]
    r.send(b"\x40\x02" + first_pid)
    nxt = r.recv_packet()
    assert nxt[0] & 0xF0 == 0x30 and nxt[1].endswith(b"m2")
    r.close()
    p.disconnect()


def test_will_delay(proto, uniq_topic):
    watcher = v5(proto)
    watcher.subscribe(f"{uniq_topic}/will", 1)
    will = {"topic": f"{uniq_topic}/will", "payload": b"late", "qos": 1,
            "properties": props(PacketTypes.WILLMESSAGE, WillDelayInterval=2)}
    c = v5(proto, "will-delay-1", will=will,
           properties=props(PacketTypes.CONNECT, SessionExpiryInterval=30))
    c.drop()
    watcher.expect_none(1.0)
    m = watcher.get(timeout=5)
    assert m.payload == b"late"
    # Reconnecting within the delay cancels the will.
    c = v5(proto, "will-delay-2", will=will,
           properties=props(PacketTypes.CONNECT, SessionExpiryInterval=30))
    c.drop()
    time.sleep(0.5)
    c = v5(proto, "will-delay-2", clean_start=False,
           properties=props(PacketTypes.CONNECT, SessionExpiryInterval=30))
    watcher.expect_none(3.0)
    c.disconnect()
    watcher.disconnect()


def test_disconnect_with_will_message(proto, uniq_topic):
    watcher = v5(proto)
    watcher.subscribe(f"{uniq_topic}/w4", 1)
    c = v5(proto, will={"topic": f"{uniq_topic}/w4", "payload": b"asked", "qos": 1})
    c.disconnect(reasoncode=0x04)
    assert watcher.get().payload == b"asked"
    watcher.disconnect()


def test_v5_and_v3_clients_interoperate(proto, uniq_topic):
    old = proto.mqtt(version=4)
    old.subscribe(f"{uniq_topic}/mix", 1)
    new = v5(proto)
    new.publish(f"{uniq_topic}/mix", b"hi", qos=1,
                properties=props(PacketTypes.PUBLISH, UserProperty=[("a", "b")]))
    m = old.get()
    assert (m.payload, m.qos) == (b"hi", 1)
    old.disconnect()
    new.disconnect()


def test_session_expiry_counts_across_a_restart(proto):
    # The expiry is a deadline kept on disk: a restart neither forgets it (the short
    # session still ends) nor ends a session early (the long one is still there).
    with spawn_proto() as h:
        p = h["p"]
        for cid, secs in (("exp-short", 3), ("exp-long", 600)):
            c = v5(p, cid, clean_start=False,
                   properties=props(PacketTypes.CONNECT, SessionExpiryInterval=secs))
            c.subscribe(f"expiry/{cid}", 1)
            c.disconnect()
        pub = v5(p)
        pub.publish("expiry/exp-long", b"waiting", qos=1)
        pub.disconnect()
        h["p"] = p = p.restart()
        time.sleep(4)
        queues = [q["name"] for q in p.api.ok("GET", "/api/queues/%2F")]
        assert "mqtt-subscription-exp-shortqos1" not in queues
        assert "mqtt-subscription-exp-longqos1" in queues
        short = v5(p, "exp-short", clean_start=False,
                   properties=props(PacketTypes.CONNECT, SessionExpiryInterval=3))
        assert not short.session_present
        short.disconnect()
        long = v5(p, "exp-long", clean_start=False,
                  properties=props(PacketTypes.CONNECT, SessionExpiryInterval=600))
        assert long.session_present
        assert long.get().payload == b"waiting"
        long.disconnect()
        v5(p, "exp-long", clean_start=True).disconnect()


def test_broker_maximum_packet_size(proto):
    # --mqtt-max-packet-size (RabbitMQ's mqtt.max_packet_size_authenticated) is
    # announced in CONNACK; a bigger packet ends the connection with 0x95.
    with spawn_proto(extra_args=("--mqtt-max-packet-size", "1024")) as h:
        p = h["p"]
        c = v5(p)
        assert c.connack_properties.MaximumPacketSize == 1024
        c.disconnect()
        r = raw_mqtt(p)
        r.send(connect_packet("mps-broker", version=5))
        assert r.recv_packet()[0] == 0x20
        r.send(publish_packet("mps/x", b"y" * 1100, qos=1, version=5))
        first, body = r.recv_packet()
        assert (first, body[0]) == (0xE0, 0x95)
        assert r.closed()
        # Up to the limit is fine, for 3.1.1 clients too (which are closed silently).
        r = raw_mqtt(p)
        r.send(connect_packet("mps-broker-4"))
        assert r.recv_packet()[0] == 0x20
        r.send(publish_packet("mps/x", b"y" * 900, qos=1))
        assert r.recv_packet() == (0x40, b"\x00\x01")
        r.send(publish_packet("mps/x", b"y" * 1100, qos=1))
        assert r.closed()


def test_session_expiry_is_capped_at_one_day(proto):
    # RabbitMQ's mqtt.max_session_expiry_interval_seconds (86400): CONNACK says so.
    c = v5(proto, "cap-expiry", properties=props(PacketTypes.CONNECT, SessionExpiryInterval=10**6))
    assert c.connack_properties.SessionExpiryInterval == 86400
    c.disconnect()
    v5(proto, "cap-expiry", clean_start=True).disconnect()


def test_mqtt5_properties_as_amqp_properties(proto, uniq_topic):
    conn = proto.amqp()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "amq.topic", routing_key=f"{uniq_topic}.props")
    p = v5(proto)
    p.publish(f"{uniq_topic}/props", b"{}", qos=1, properties=props(
        PacketTypes.PUBLISH, ContentType="application/json", CorrelationData=b"corr-7",
        MessageExpiryInterval=30, ResponseTopic=f"{uniq_topic}/reply",
        UserProperty=[("colour", "blue")]))
    deadline = time.time() + 5
    while True:
        m, pr, body = ch.basic_get(q, auto_ack=True)
        if m or time.time() > deadline:
            break
        time.sleep(0.02)
    assert body == b"{}"
    assert (pr.content_type, pr.correlation_id, pr.expiration) == (
        "application/json", "corr-7", "30000")
    assert pr.headers["x-reply-to-topic"] == f"{uniq_topic}.reply"
    assert pr.headers["colour"] == "blue"
    p.disconnect()
    conn.close()
