"""MQTT sessions: clean and persistent; a persistent session's subscriptions and QoS 1
messages survive reconnects (and, against Warren, broker restarts); unacknowledged
messages come back with DUP set."""

import signal

import pytest

from test_cross_protocol_fixtures import *  # noqa: F401,F403
from test_cross_protocol_fixtures import connect_packet, mqtt_string, raw_mqtt, spawn_proto, var_int


def subscribe_packet(pid, topic, qos):
    body = pid.to_bytes(2, "big") + mqtt_string(topic) + bytes([qos])
    return bytes([0x82]) + var_int(len(body)) + body


def test_persistent_session_keeps_qos1_messages_while_offline(proto, uniq_topic):
    cid = f"ps-{uniq_topic[-8:]}"
    c = proto.mqtt(client_id=cid, clean=False)
    c.subscribe(f"{uniq_topic}/p", 1)
    c.disconnect()
    pub = proto.mqtt()
    for i in range(5):
        pub.publish(f"{uniq_topic}/p", f"m{i}".encode(), qos=1)
    pub.disconnect()
    c = proto.mqtt(client_id=cid, clean=False)
    assert c.session_present
    assert [m.payload for m in c.get_all(5)] == [f"m{i}".encode() for i in range(5)]
    c.disconnect()
    proto.mqtt(client_id=cid, clean=True).disconnect()


def test_clean_session_forgets_subscriptions(proto, uniq_topic):
    cid = f"cs-{uniq_topic[-8:]}"
    c = proto.mqtt(client_id=cid, clean=True)
    c.subscribe(f"{uniq_topic}/c", 1)
    c.disconnect()
    pub = proto.mqtt()
    pub.publish(f"{uniq_topic}/c", b"lost", qos=1)
    c = proto.mqtt(client_id=cid, clean=True)
    assert not c.session_present
    c.expect_none()
    c.disconnect()
    pub.disconnect()


def test_persistent_session_subscriptions_resume_without_resubscribing(proto, uniq_topic):
    cid = f"rs-{uniq_topic[-8:]}"
    c = proto.mqtt(client_id=cid, clean=False)
    c.subscribe(f"{uniq_topic}/+/x", 1)
    c.disconnect()
    c = proto.mqtt(client_id=cid, clean=False)
    pub = proto.mqtt()
    pub.publish(f"{uniq_topic}/a/x", b"live", qos=1)
    m = c.get()
    assert (m.payload, m.qos) == (b"live", 1)
    c.disconnect()
    pub.disconnect()
    proto.mqtt(client_id=cid, clean=True).disconnect()


def test_unacked_message_is_redelivered_with_dup(proto, uniq_topic):
    cid = f"dup-{uniq_topic[-8:]}"
    topic = f"{uniq_topic}/d"
    r = raw_mqtt(proto)
    r.send(connect_packet(cid, clean=False))
    assert r.recv_packet()[0] == 0x20
    r.send(subscribe_packet(1, topic, 1))
    assert r.recv_packet() == (0x90, b"\x00\x01\x01")
    pub = proto.mqtt()
    pub.publish(topic, b"unacked", qos=1)
    first, body = r.recv_packet()
    assert first & 0xF0 == 0x30 and (first >> 1) & 3 == 1 and not first & 0x08
    r.close()  # no PUBACK
    r = raw_mqtt(proto)
    r.send(connect_packet(cid, clean=False))
    assert r.recv_packet() == (0x20, b"\x01\x00")  # session present
    first, body = r.recv_packet()
    assert first & 0x08, "DUP must be set on the redelivery"
    assert body.endswith(b"unacked")
    r.close()
    pub.disconnect()
    proto.mqtt(client_id=cid, clean=True).disconnect()


def test_persistent_session_survives_broker_restart(proto, uniq_topic):
    require_warren(proto, "cannot restart the reference broker")
    with spawn_proto() as h:
        p = h["p"]
        c = p.mqtt(client_id="restart-me", clean=False)
        c.subscribe("r/+", 1)
        c.disconnect()
        pub = p.mqtt()
        pub.publish("r/a", b"kept", qos=1)
        pub.publish("r/b", b"kept too", qos=1)
        pub.disconnect()
        h["p"] = p = p.restart()
        c = p.mqtt(client_id="restart-me", clean=False)
        assert c.session_present
        assert sorted(m.payload for m in c.get_all(2)) == [b"kept", b"kept too"]
        pub = p.mqtt()
        pub.publish("r/c", b"after", qos=1)
        assert c.get().payload == b"after"
        c.disconnect()
        pub.disconnect()


@pytest.mark.parametrize("version", [3, 4])
def test_qos0_subscription_of_persistent_session(proto, uniq_topic, version):
    cid = f"q0-{version}-{uniq_topic[-8:]}"
    c = proto.mqtt(client_id=cid, clean=False, version=version)
    c.subscribe(f"{uniq_topic}/z", 0)
    pub = proto.mqtt()
    pub.publish(f"{uniq_topic}/z", b"online", qos=1)
    m = c.get()
    assert (m.payload, m.qos) == (b"online", 0)
    c.disconnect()
    pub.disconnect()
    proto.mqtt(client_id=cid, clean=True).disconnect()


def test_qos1_messages_acknowledged_to_the_publisher_survive_a_crash(proto):
    # PUBACK comes after the message is on disk (fsync), so a broker killed right after
    # the PUBACKs still has every one of them for the persistent session.
    require_warren(proto, "cannot kill the reference broker")
    with spawn_proto() as h:
        p = h["p"]
        c = p.mqtt(client_id="crash-me", clean=False)
        c.subscribe("crash/#", 1)
        c.disconnect()
        pub = p.mqtt()
        for i in range(200):
            pub.publish(f"crash/{i % 3}", str(i).encode(), qos=1, wait=False)
        pub.publish("crash/last", b"last", qos=1)  # waits for its PUBACK
        # PUBACKs come in order: every earlier one has arrived too.
        h["p"] = p = p.restart(signal.SIGKILL)
        c = p.mqtt(client_id="crash-me", clean=False)
        assert c.session_present
        got = [m.payload for m in c.get_all(201, timeout=10)]
        assert got == [str(i).encode() for i in range(200)] + [b"last"]
        c.disconnect()


def test_delivered_but_unacknowledged_message_survives_a_restart(proto):
    require_warren(proto, "cannot restart the reference broker")
    with spawn_proto() as h:
        p = h["p"]
        r = raw_mqtt(p)
        r.send(connect_packet("inflight-restart", clean=False))
        assert r.recv_packet()[0] == 0x20
        r.send(subscribe_packet(1, "inflight/x", 1))
        assert r.recv_packet() == (0x90, b"\x00\x01\x01")
        pub = p.mqtt()
        pub.publish("inflight/x", b"not yet acked", qos=1)
        first, body = r.recv_packet()
        assert first & 0xF0 == 0x30 and body.endswith(b"not yet acked")
        pub.disconnect()
        h["p"] = p = p.restart()  # the client never sent PUBACK
        r.close()
        r = raw_mqtt(p)
        r.send(connect_packet("inflight-restart", clean=False))
        assert r.recv_packet() == (0x20, b"\x01\x00")
        first, body = r.recv_packet()
        assert first & 0xF0 == 0x30 and body.endswith(b"not yet acked")
        # A message the broker delivered before is redelivered with DUP set.
        assert first & 0x08
        r.close()
