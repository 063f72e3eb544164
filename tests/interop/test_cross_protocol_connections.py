"""MQTT and STOMP connections in the management API, as RabbitMQ lists them: GET
/api/connections shows each with RabbitMQ's `protocol` ("MQTT 3.1.1", "MQTT 3.1.0",
"STOMP 1.2"...), its user and vhost, one channel, `frame_max` 0, and for MQTT the client
id in `client_properties`; DELETE /api/connections/{name} closes it the way RabbitMQ
does (MQTT 3.x: the socket closes; STOMP: RabbitMQ 3.10's "AMQP channel died" ERROR).

Recorded against RabbitMQ 3.10.8 (which lists a new connection after its next stats
emission, hence the polling). Warren-only: MQTT 5 ("MQTT 5-0", as RabbitMQ 3.13 shows
it), Web-MQTT and Web-STOMP.
"""

import time
import urllib.parse
import uuid

import pytest

from test_cross_protocol_fixtures import *  # noqa: F401,F403
from test_cross_protocol_fixtures import raw_stomp, require_warren


def listed(proto, pred, timeout=15):
    return proto.api.connection_where(pred, timeout)


def gone(proto, name, timeout=15):
    deadline = time.time() + timeout
    while any(c["name"] == name for c in proto.api.connections()):
        assert time.time() < deadline, f"{name} still listed"
        time.sleep(0.25)


def by_client_id(cid):
    return lambda c: (c.get("client_properties") or {}).get("client_id") == cid


def local_port(sock):
    return sock.getsockname()[1]


@pytest.mark.parametrize("version,protocol", [(4, "MQTT 3.1.1"), (3, "MQTT 3.1.0")])
def test_mqtt_connection_is_listed(proto, version, protocol):
    c = proto.mqtt(version=version, keepalive=30)
    try:
        info = listed(proto, by_client_id(c.client_id))
        assert info["protocol"] == protocol
        assert (info["user"], info["vhost"]) == ("guest", "/")
        assert info["client_properties"] == {"client_id": c.client_id, "product": "MQTT client"}
        assert (info["channels"], info["channel_max"], info["frame_max"]) == (1, 1, 0)
        port = local_port(c.c.socket())
        assert info["name"] == f"127.0.0.1:{port} -> 127.0.0.1:{proto.mqtt_port}"
        assert (info["peer_port"], info["port"]) == (port, proto.mqtt_port)
    finally:
        c.disconnect()
    gone(proto, info["name"])


def test_mqtt_v5_connection_is_listed(proto):
    require_warren(proto, "no MQTT 5")
    c = proto.mqtt(version=5)
    try:
        assert listed(proto, by_client_id(c.client_id))["protocol"] == "MQTT 5-0"
    finally:
        c.disconnect()


def test_mqtt_connection_to_another_vhost_shows_it(proto):
    vhost = f"conn-{uuid.uuid4().hex[:8]}"
    proto.api.ok("PUT", f"/api/vhosts/{vhost}")
    try:
        proto.api.ok("PUT", f"/api/permissions/{vhost}/guest",
                     {"configure": ".*", "write": ".*", "read": ".*"})
        c = proto.mqtt(username=f"{vhost}:guest")
        try:
            info = listed(proto, by_client_id(c.client_id))
            assert (info["user"], info["vhost"]) == ("guest", vhost)
        finally:
            c.disconnect()
    finally:
        proto.api.request("DELETE", f"/api/vhosts/{vhost}")


def test_mqtt_connection_closed_through_the_api(proto, uniq_topic):
    c = proto.mqtt(will={"topic": f"{uniq_topic}/will", "payload": b"bye", "qos": 1})
    watcher = proto.mqtt()
    assert watcher.subscribe(f"{uniq_topic}/will", 1) == [1]
    info = listed(proto, by_client_id(c.client_id))
    assert proto.api.close_connection(info["name"]) == 204
    rc, _ = c.disconnects.get(timeout=10)
    assert rc != 0
    c.c.loop_stop()
    if proto.is_reference:
        # RabbitMQ 3.10 drops the will of a connection closed this way; Warren sends it,
        # as RabbitMQ 3.13 does and MQTT says (the client did not DISCONNECT).
        watcher.expect_none(1.0)
    else:
        assert watcher.get(10).payload == b"bye"
    watcher.disconnect()
    gone(proto, info["name"])


def test_mqtt_v5_connection_closed_through_the_api_is_told_why(proto):
    require_warren(proto, "no MQTT 5")
    c = proto.mqtt(version=5)
    info = listed(proto, by_client_id(c.client_id))
    assert proto.api.close_connection(info["name"], reason="maintenance window") == 204
    rc, props = c.disconnects.get(timeout=10)
    assert getattr(rc, "value", rc) == 0x98  # Administrative action
    assert props.ReasonString == "maintenance window"
    c.c.loop_stop()


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_stomp_connection_is_listed(proto, version):
    s = proto.stomp(version=version)
    try:
        port = local_port(s.conn.transport.socket)
        name = f"127.0.0.1:{port} -> 127.0.0.1:{proto.stomp_port}"
        info = listed(proto, lambda c: c["name"] == name)
        assert info["protocol"] == f"STOMP {version}"
        assert (info["user"], info["vhost"]) == ("guest", "/")
        assert info["client_properties"] == {"product": "STOMP client"}
        assert (info["channels"], info["channel_max"], info["frame_max"]) == (1, 1, 0)
    finally:
        s.disconnect()
    gone(proto, name)


def test_stomp_heart_beat_is_the_timeout(proto):
    s = proto.stomp(heartbeats=(10000, 10000))
    try:
        port = local_port(s.conn.transport.socket)
        # The reference adds `timeout` at a later stats emission.
        info = listed(proto, lambda c: c["peer_port"] == port and "timeout" in c, timeout=30)
        assert info["timeout"] == 10
    finally:
        s.disconnect()


@pytest.mark.parametrize("reason", [None, "go away", "x" * 13, "x" * 29, "x" * 40])
def test_stomp_connection_closed_through_the_api(proto, reason):
    r = raw_stomp(proto)
    assert r.connect()[0] == "CONNECTED"
    name = f"127.0.0.1:{local_port(r.s)} -> 127.0.0.1:{proto.stomp_port}"
    listed(proto, lambda c: c["name"] == name)
    assert proto.api.close_connection(name, reason) == 204
    cmd, headers, body = r.frame(10)
    assert (cmd, headers["message"]) == ("ERROR", "AMQP channel died")
    why = '"' + (reason or "Closed via management plugin") + '"'
    # Erlang's ~p, which breaks the term over lines to fit 80 columns.
    expected = {
        None: "Reason: {shutdown,\n            {connection_closing,\n"
              "                {server_initiated_close,320," + why + "}}}",
        "go away": "Reason: {shutdown,{connection_closing,{server_initiated_close,320,"
                   + why + "}}}",
        "x" * 13: "Reason: {shutdown,\n            {connection_closing,"
                  "{server_initiated_close,320," + why + "}}}",
        "x" * 29: "Reason: {shutdown,\n            {connection_closing,\n"
                  "                {server_initiated_close,320," + why + "}}}",
        "x" * 40: "Reason: {shutdown,\n            {connection_closing,\n"
                  "                {server_initiated_close,320,\n                    "
                  + why + "}}}",
    }[reason]
    assert body.decode() == expected
    assert r.closed()
    gone(proto, name)


def test_web_connections_are_listed(proto):
    require_warren(proto, "no Web-MQTT / Web-STOMP listeners")
    m = proto.mqtt(transport="websockets")
    s = proto.stomp(ws=True)
    try:
        info = listed(proto, by_client_id(m.client_id))
        assert info["protocol"] == "Web MQTT 3.1.1"
        info = listed(proto, lambda c: c["protocol"] == "Web STOMP 1.2")
        assert info["port"] == proto.web_stomp_port
    finally:
        m.disconnect()
        s.disconnect()


def test_published_messages_are_counted_on_the_channel(proto, uniq_topic):
    require_warren(proto, "RabbitMQ reports channel stats on its own schedule")
    c = proto.mqtt()
    for i in range(3):
        c.publish(f"{uniq_topic}/n", b"x", qos=1)
    info = listed(proto, by_client_id(c.client_id))
    status, chans = proto.api.request(
        "GET", f"/api/connections/{urllib.parse.quote(info['name'], safe='')}/channels")
    assert status == 200 and len(chans) == 1
    assert chans[0]["message_stats"]["publish"] == 3
    assert chans[0]["prefetch_count"] == 10  # mqtt.prefetch
    c.disconnect()
