"""MQTT will messages: published when a connection ends without DISCONNECT (a dropped
socket, a keep-alive timeout), not after a clean DISCONNECT; retained wills are kept."""

import time

from test_cross_protocol_fixtures import *  # noqa: F401,F403
from test_cross_protocol_fixtures import connect_packet, mqtt_string, raw_mqtt, var_int


def test_will_is_published_when_the_socket_drops(proto, uniq_topic):
    watcher = proto.mqtt()
    watcher.subscribe(f"{uniq_topic}/will", 1)
    c = proto.mqtt(will={"topic": f"{uniq_topic}/will", "payload": b"gone", "qos": 1})
    c.drop()
    m = watcher.get(timeout=10)
    assert (m.topic, m.payload, m.qos) == (f"{uniq_topic}/will", b"gone", 1)
    watcher.disconnect()


def test_no_will_after_disconnect(proto, uniq_topic):
    watcher = proto.mqtt()
    watcher.subscribe(f"{uniq_topic}/will", 1)
    c = proto.mqtt(will={"topic": f"{uniq_topic}/will", "payload": b"gone", "qos": 1})
    c.disconnect()
    watcher.expect_none(1.0)
    watcher.disconnect()


def test_will_on_keepalive_timeout(proto, uniq_topic):
    watcher = proto.mqtt()
    watcher.subscribe(f"{uniq_topic}/will", 0)
    # A raw client with keep-alive 1 s and a will, that then says nothing.
    topic = f"{uniq_topic}/will".encode()
    body = mqtt_string(b"MQTT") + bytes([4, 0x02 | 0x04 | 0xC0]) + (1).to_bytes(2, "big")
    body += mqtt_string("silent") + mqtt_string(topic) + mqtt_string(b"timeout")
    body += mqtt_string("guest") + mqtt_string("guest")
    r = raw_mqtt(proto)
    r.send(bytes([0x10]) + var_int(len(body)) + body)
    assert r.recv_packet() == (0x20, b"\x00\x00")
    start = time.time()
    assert r.closed(timeout=10)
    elapsed = time.time() - start
    assert 1.0 <= elapsed < 5, elapsed
    assert watcher.get(timeout=5).payload == b"timeout"
    watcher.disconnect()


def test_retained_will_is_kept_for_later_subscribers(proto, uniq_topic):
    c = proto.mqtt(will={"topic": f"{uniq_topic}/status", "payload": b"offline",
                         "qos": 1, "retain": True})
    c.drop()
    time.sleep(0.5)
    late = proto.mqtt()
    late.subscribe(f"{uniq_topic}/status", 1)
    m = late.get(timeout=5)
    assert (m.payload, m.retain) == (b"offline", True)
    late.publish(f"{uniq_topic}/status", b"", qos=1, retain=True)  # clear it
    late.disconnect()


def test_keepalive_zero_means_no_timeout(proto):
    r = raw_mqtt(proto)
    r.send(connect_packet("ka0", keepalive=0))
    assert r.recv_packet() == (0x20, b"\x00\x00")
    assert not r.closed(timeout=3)
    r.send(b"\xc0\x00")  # PINGREQ
    assert r.recv_packet() == (0xD0, b"")
    r.close()
