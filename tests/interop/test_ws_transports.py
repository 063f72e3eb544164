"""MQTT over WebSocket (ws://host:port/ws, subprotocol `mqtt`) and STOMP over
WebSocket (subprotocols `v1x.stomp`), as RabbitMQ's Web-MQTT and Web-STOMP plugins
serve them: paho-mqtt's WebSocket transport, and a STOMP client over `websocket-client`.
Sessions and topics are shared with the plain TCP listeners. Warren only: the reference
RabbitMQ here runs without the web plugins."""

import time
import uuid

import pytest
import websocket

from test_cross_protocol_fixtures import *  # noqa: F401,F403


@pytest.fixture(autouse=True)
def _warren_only(proto):
    require_warren(proto, "the reference runs without rabbitmq_web_mqtt/web_stomp")


def ws_url(port):
    return f"ws://127.0.0.1:{port}/ws"


@pytest.mark.parametrize("version", [4, 5])
def test_mqtt_over_websocket(proto, uniq_topic, version):
    sub = proto.mqtt(version=version, transport="websockets")
    sub.subscribe(f"{uniq_topic}/ws", 1)
    pub = proto.mqtt(version=version, transport="websockets")
    pub.publish(f"{uniq_topic}/ws", b"over ws", qos=1)
    m = sub.get()
    assert (m.payload, m.qos) == (b"over ws", 1)
    sub.disconnect()
    pub.disconnect()


def test_mqtt_websocket_and_tcp_share_topics_and_sessions(proto, uniq_topic):
    ws = proto.mqtt(client_id="ws-shared", transport="websockets", clean=False)
    ws.subscribe(f"{uniq_topic}/shared", 1)
    ws.disconnect()
    tcp_pub = proto.mqtt()
    tcp_pub.publish(f"{uniq_topic}/shared", b"from tcp", qos=1)
    # The same client id over TCP resumes the session made over WebSocket.
    tcp = proto.mqtt(client_id="ws-shared", clean=False)
    assert tcp.session_present
    assert tcp.get().payload == b"from tcp"
    tcp.disconnect()
    proto.mqtt(client_id="ws-shared", clean=True).disconnect()
    tcp_pub.disconnect()


def test_mqtt_subprotocol_is_echoed(proto):
    ws = websocket.create_connection(ws_url(proto.web_mqtt_port), subprotocols=["mqtt"])
    assert ws.getsubprotocol() == "mqtt"
    # CONNECT as one binary message, CONNACK back in one.
    ws.send_binary(connect_packet("raw-ws"))
    op, data = ws.recv_data()
    assert op == websocket.ABNF.OPCODE_BINARY and data == b"\x20\x02\x00\x00"
    ws.close()


def test_mqtt_packets_may_span_websocket_messages(proto):
    ws = websocket.create_connection(ws_url(proto.web_mqtt_port), subprotocols=["mqtt"])
    pkt = connect_packet("split-ws")
    for i in range(len(pkt)):
        ws.send_binary(pkt[i:i + 1])
    op, data = ws.recv_data()
    assert data == b"\x20\x02\x00\x00"
    ws.close()


def test_wrong_path_is_refused(proto):
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        websocket.create_connection(f"ws://127.0.0.1:{proto.web_mqtt_port}/nope", subprotocols=["mqtt"])
    assert e.value.status_code == 404


class WsStomp:
    """A minimal STOMP 1.2 client over websocket-client: one frame per message."""

    def __init__(self, proto, protocol="v12.stomp"):
        self.ws = websocket.create_connection(ws_url(proto.web_stomp_port), subprotocols=[protocol])
        self.protocol = self.ws.getsubprotocol()

    def send(self, command, headers=None, body=""):
        h = "".join(f"{k}:{v}\n" for k, v in (headers or {}).items())
        self.ws.send(f"{command}\n{h}\n{body}\0")

    def frame(self, timeout=5):
        self.ws.settimeout(timeout)
        while True:
            op, data = self.ws.recv_data()
            if data.strip(b"\n"):
                break
        head, _, body = data.partition(b"\n\n")
        lines = head.decode().split("\n")
        headers = dict(line.split(":", 1) for line in lines[1:])
        return lines[0], headers, body.rstrip(b"\n").rstrip(b"\0"), op


def test_stomp_over_websocket(proto):
    q = f"/queue/ws-stomp-{uuid.uuid4().hex[:8]}"
    c = WsStomp(proto)
    assert c.protocol == "v12.stomp"
    c.send("CONNECT", {"accept-version": "1.2", "host": "/", "login": "guest", "passcode": "guest"})
    cmd, headers, _, op = c.frame()
    assert cmd == "CONNECTED" and headers["version"] == "1.2"
    assert op == websocket.ABNF.OPCODE_TEXT
    c.send("SUBSCRIBE", {"destination": q, "id": "1", "receipt": "r1"})
    assert c.frame()[0] == "RECEIPT"
    c.send("SEND", {"destination": q}, "hello over ws")
    cmd, headers, body, _ = c.frame()
    assert (cmd, body) == ("MESSAGE", b"hello over ws")
    assert headers["subscription"] == "1"
    c.ws.close()


def test_stomp_websocket_reaches_tcp_stomp_and_mqtt(proto, uniq_topic):
    key = uniq_topic.replace("/", ".")
    tcp = proto.stomp()
    tcp.conn.subscribe(f"/topic/{key}.x", id="t", receipt="r")
    tcp.receipt()
    m = proto.mqtt()
    m.subscribe(f"{uniq_topic}/x", 1)
    c = WsStomp(proto, "v11.stomp")
    c.send("CONNECT", {"accept-version": "1.1", "host": "/", "login": "guest", "passcode": "guest"})
    assert c.frame()[0] == "CONNECTED"
    c.send("SEND", {"destination": f"/topic/{key}.x", "receipt": "s"}, "everyone")
    assert c.frame()[0] == "RECEIPT"
    assert tcp.get().body == "everyone"
    assert m.get().payload == b"everyone"
    c.ws.close()
    tcp.disconnect()
    m.disconnect()


def test_binary_stomp_body_goes_in_a_binary_message(proto):
    q = f"ws-bin-{uuid.uuid4().hex[:8]}"
    conn = proto.amqp()
    ch = conn.channel()
    ch.queue_declare(q, auto_delete=True)
    c = WsStomp(proto)
    c.send("CONNECT", {"accept-version": "1.2", "host": "/", "login": "guest", "passcode": "guest"})
    c.frame()
    c.send("SUBSCRIBE", {"destination": f"/amq/queue/{q}", "id": "b", "receipt": "r"})
    assert c.frame()[0] == "RECEIPT"
    ch.basic_publish("", q, b"\xff\xfe\x00binary")
    cmd, headers, body, op = c.frame()
    assert cmd == "MESSAGE" and op == websocket.ABNF.OPCODE_BINARY
    assert body == b"\xff\xfe\x00binary"
    c.ws.close()
    conn.close()


@pytest.mark.parametrize("protocol,version", [("v10.stomp", "1.0"), ("v11.stomp", "1.1")])
def test_stomp_subprotocols_are_echoed(proto, protocol, version):
    c = WsStomp(proto, protocol)
    assert c.protocol == protocol
    c.send("CONNECT", {"accept-version": version, "host": "/", "login": "guest",
                       "passcode": "guest"})
    cmd, headers, _, _ = c.frame()
    assert cmd == "CONNECTED" and headers.get("version", "1.0") == version
    c.ws.close()
