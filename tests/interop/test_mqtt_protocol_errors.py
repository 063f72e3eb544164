"""Malformed MQTT input closes that connection and nothing else: 3.x by closing the
socket (it has no way to say why), MQTT 5 with DISCONNECT and the reason code."""

import pytest

from test_cross_protocol_fixtures import *  # noqa: F401,F403
from test_cross_protocol_fixtures import connect_packet, mqtt_string, raw_mqtt, var_int

BAD_PACKETS = {
    "reserved packet type 0": b"\x00\x00",
    "remaining length over 4 bytes": b"\x30\xff\xff\xff\xff\x01",
    "publish with qos 3": b"\x36\x05" + mqtt_string("a") + b"\x00\x01",
    "wildcard in publish topic": b"\x30\x05" + mqtt_string("a/#"),
    "subscribe with wrong flags": b"\x80\x06\x00\x01" + mqtt_string("a")[:2],
    "subscribe without filters": b"\x82\x02\x00\x01",
    "invalid utf-8 topic": b"\x30\x04\x00\x02\xc3\x28",
    "qos 1 publish with packet id 0": b"\x32\x05" + mqtt_string("a") + b"\x00\x00",
}


# What RabbitMQ 3.10 does instead of closing (a deliberate difference: Warren follows
# the spec, which says the connection MUST be closed): it waits for more bytes that never
# come, or accepts the packet (PUBACK to packet id 0, SUBACK to an empty SUBSCRIBE).
REFERENCE_KEEPS_OPEN = set(BAD_PACKETS) - {"publish with qos 3"}


@pytest.mark.parametrize("name", sorted(BAD_PACKETS))
def test_malformed_packet_closes_only_that_connection(proto, uniq_topic, name):
    bystander = proto.mqtt()
    bystander.subscribe(f"{uniq_topic}/ok", 1)
    r = raw_mqtt(proto)
    r.send(connect_packet(f"bad-{name[:10].replace(' ', '')}"))
    assert r.recv_packet() == (0x20, b"\x00\x00")
    r.send(BAD_PACKETS[name])
    if proto.is_reference and name in REFERENCE_KEEPS_OPEN:
        r.close()
    else:
        assert r.closed(), "the broker must close the connection"
    bystander.publish(f"{uniq_topic}/ok", b"still fine", qos=1)
    assert bystander.get().payload == b"still fine"
    bystander.disconnect()


def test_garbage_instead_of_connect_is_closed(proto):
    r = raw_mqtt(proto)
    r.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    if proto.is_reference:
        r.close()  # RabbitMQ 3.10 waits for more bytes until its login timeout
    else:
        assert r.closed()


def v5_connect(client_id):
    return connect_packet(client_id, version=5)


V5_BAD = {
    "reserved packet type 0": (BAD_PACKETS["reserved packet type 0"], 0x81),
    "publish with qos 3": (BAD_PACKETS["publish with qos 3"], 0x81),
    "wildcard in publish topic": (b"\x30\x06" + mqtt_string("a/#") + b"\x00", 0x90),
    "subscribe without filters": (b"\x82\x03\x00\x01\x00", 0x82),
    "subscribe without property length": (b"\x82\x02\x00\x01", 0x81),
    "topic alias 0": (b"\x30\x07" + mqtt_string("a") + b"\x03\x23\x00\x00", 0x94),
    "unknown topic alias": (b"\x30\x06\x00\x00\x03\x23\x00\x05", 0x82),
    "qos 2 publish": (b"\x34\x07" + mqtt_string("a") + b"\x00\x01\x00x", 0x9B),
}


@pytest.mark.parametrize("name", sorted(V5_BAD))
def test_mqtt5_malformed_packet_gets_disconnect_with_reason(proto, name):
    require_warren(proto, "RabbitMQ 3.10 has no MQTT 5")
    r = raw_mqtt(proto)
    packet, code = V5_BAD[name]
    r.send(v5_connect(f"bad5-{code}"))
    first, body = r.recv_packet()
    assert first == 0x20 and body[:2] == b"\x00\x00"
    r.send(packet)
    first, body = r.recv_packet()
    assert first == 0xE0 and body[0] == code, (hex(first), body)
    # Properties: a Reason String (0x1F) saying what was wrong.
    assert body[2] == 0x1F and len(body) > 5, body
    assert r.closed()


def test_mqtt5_malformed_connect_gets_connack_with_reason(proto):
    require_warren(proto, "RabbitMQ 3.10 has no MQTT 5")
    r = raw_mqtt(proto)
    pkt = bytearray(v5_connect("badprops"))
    # Property length says 5 bytes of properties, but the packet ends before them.
    body = mqtt_string(b"MQTT") + bytes([5, 0x02]) + (60).to_bytes(2, "big") + b"\x05\x11"
    pkt = bytes([0x10]) + var_int(len(body)) + body
    r.send(pkt)
    first, body = r.recv_packet()
    assert first == 0x20 and body[1] == 0x81
    assert r.closed()


def test_oversized_connect_is_refused(proto):
    require_warren(proto, "RabbitMQ 3.10 has no MQTT 5")
    # Before authentication a packet may be 64 KiB at most (RabbitMQ 3.13's
    # mqtt.max_packet_size_unauthenticated); the fixed header alone is enough to refuse.
    r = raw_mqtt(proto)
    start = connect_packet("big", version=5)
    body = start[2:]
    r.send(b"\x10" + var_int(100_000) + body)
    first, body = r.recv_packet()
    assert first == 0x20 and body[1] == 0x95
    assert r.closed()


def test_connack_announces_limits(proto):
    require_warren(proto, "RabbitMQ 3.10 has no MQTT 5")
    r = raw_mqtt(proto)
    r.send(v5_connect("limits"))
    first, body = r.recv_packet()
    props = connack_properties(body)
    assert props[0x24] == 1          # Maximum QoS 1
    assert props[0x2A] == 0          # no shared subscriptions
    assert props[0x22] == 16         # Topic Alias Maximum
    assert props[0x27] == 268435455  # Maximum Packet Size
    r.close()


def connack_properties(body):
    """The CONNACK's MQTT 5 properties as {id: raw value} (fixed-size ones only)."""
    sizes = {0x11: 4, 0x13: 2, 0x21: 2, 0x22: 2, 0x24: 1, 0x25: 1, 0x27: 4, 0x28: 1,
             0x29: 1, 0x2A: 1}
    n, i, mult = 0, 2, 1
    while True:
        b = body[i]
        i += 1
        n += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            break
    end, out = i + n, {}
    while i < end:
        pid = body[i]
        i += 1
        if pid in sizes:
            out[pid] = int.from_bytes(body[i:i + sizes[pid]], "big")
            i += sizes[pid]
        else:
            ln = int.from_bytes(body[i:i + 2], "big")
            out[pid] = body[i + 2:i + 2 + ln]
            i += 2 + ln
    return out
