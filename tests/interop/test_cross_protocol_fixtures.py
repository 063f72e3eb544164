"""Fixtures and clients for the MQTT, STOMP and WebSocket interop tests (no tests here).

Test modules import what they use: `from test_cross_protocol_fixtures import *`.

Target selection (as conftest.py does for AMQP):
- default: start a private broker once per test session on free ports with a fresh data
  directory: `WARREN_PROTO_BIN` (default: `target/release/warren`).
- `REFERENCE_AMQP_URL=amqp://guest:guest@127.0.0.1:5673/%2f`: run the same scenarios
  against the reference RabbitMQ; its MQTT and STOMP ports are `REFERENCE_MQTT_PORT`
  (default 1884) and `REFERENCE_STOMP_PORT` (default 61614), its management API
  `REFERENCE_HTTP_URL` (default http://127.0.0.1:15673). The reference has no
  Web-MQTT/Web-STOMP listeners and no MQTT 5 (RabbitMQ 3.10): those tests are skipped
  there.

Users, permissions and topic permissions are set up through the management API on
both brokers alike (`proto.api`, `acl_users`), with names unique to the test session
(the reference is shared), and deleted afterwards.
"""

import base64
import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
import pika
import pytest
import stomp

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

__all__ = [
    "Proto", "MqttClient", "proto", "uniq_topic", "spawn_proto", "raw_mqtt",
    "mqtt", "Properties", "PacketTypes", "SubscribeOptions", "connect_packet",
    "mqtt_string", "var_int", "require_warren", "StompClient", "stomp", "raw_stomp",
    "Api", "acl_users", "AclUsers", "subscribe_packet", "publish_packet",
    "definitions_with_users",
]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port, proc=None, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")


def _proto_bin():
    env = os.environ.get("WARREN_PROTO_BIN")
    if env:
        return env
    # The most recently built of the usual places.
    found = [os.path.join(ROOT, p) for p in ("target/release/warren", "target/debug/warren")]
    found = [p for p in found if os.path.exists(p)]
    if not found:
        raise RuntimeError("warren not built: cargo build --release -p warren")
    return max(found, key=os.path.getmtime)


class Proto:
    """Where a broker's AMQP, MQTT and STOMP listeners are."""

    def __init__(self, amqp_port, mqtt_port, stomp_port, web_mqtt_port=None,
                 web_stomp_port=None, is_reference=False, proc=None, data_dir=None,
                 tmp_root=None, http_url=None):
        self.host = "127.0.0.1"
        # The management HTTP API (guest/guest).
        self.api = Api(http_url) if http_url else None
        self.amqp_port = amqp_port
        self.mqtt_port = mqtt_port
        self.stomp_port = stomp_port
        self.web_mqtt_port = web_mqtt_port
        self.web_stomp_port = web_stomp_port
        self.is_reference = is_reference
        self.proc = proc
        self.data_dir = data_dir
        self.tmp_root = tmp_root

    @property
    def name(self):
        return "rabbitmq" if self.is_reference else "warren"

    def amqp(self):
        return pika.BlockingConnection(pika.ConnectionParameters(
            host=self.host, port=self.amqp_port,
            credentials=pika.PlainCredentials("guest", "guest"), connection_attempts=1))

    def mqtt(self, client_id=None, **kw):
        c = MqttClient(self, f"c-{uuid.uuid4().hex[:12]}" if client_id is None else client_id, **kw)
        if kw.get("connect", True) is not False:
            c.connect()
        return c

    def stomp(self, version="1.2", **kw):
        return StompClient(self, version, **kw)

    def log(self):
        if not self.tmp_root:
            return ""
        with open(os.path.join(self.tmp_root, "broker.log"), "rb") as f:
            return f.read().decode(errors="replace")

    # -- private brokers -----------------------------------------------------------
    @staticmethod
    def start(tmp_root, data_dir=None, ports=None, extra_args=()):
        ports = ports or {k: _free_port() for k in
                          ("amqp", "mqtt", "stomp", "web_mqtt", "web_stomp", "http")}
        data_dir = data_dir or os.path.join(tmp_root, "data")
        os.makedirs(data_dir, exist_ok=True)
        log = open(os.path.join(tmp_root, "broker.log"), "ab")
        proc = subprocess.Popen(
            [_proto_bin(), "--bind", "127.0.0.1",
             "--amqp-port", str(ports["amqp"]), "--mqtt-port", str(ports["mqtt"]),
             "--stomp-port", str(ports["stomp"]), "--web-mqtt-port", str(ports["web_mqtt"]),
             "--web-stomp-port", str(ports["web_stomp"]),
             "--http-port", str(ports["http"]), "--prometheus-port", "0",
             "--data-dir", data_dir, *extra_args],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")})
        for k in ("amqp", "mqtt", "stomp", "web_mqtt", "web_stomp", "http"):
            _wait_port(ports[k], proc)
        p = Proto(ports["amqp"], ports["mqtt"], ports["stomp"], ports["web_mqtt"],
                  ports["web_stomp"], proc=proc, data_dir=data_dir, tmp_root=tmp_root,
                  http_url=f"http://127.0.0.1:{ports['http']}")
        p.ports = ports
        p.extra_args = tuple(extra_args)
        return p

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode

    def restart(self, sig=signal.SIGTERM):
        """Stops the broker and starts it again on the same ports and data."""
        self.stop(sig)
        return Proto.start(self.tmp_root, self.data_dir, self.ports, self.extra_args)


@contextlib.contextmanager
def spawn_proto(definitions=None, extra_args=()):
    """A private broker for one test (restarts, crashes). Warren only. `definitions`:
    a RabbitMQ definitions document it starts with (`--load-definitions`); `extra_args`:
    more command-line flags (kept across `restart`)."""
    tmp_root = tempfile.mkdtemp(prefix="warren-proto-")
    extra = tuple(extra_args)
    if definitions is not None:
        path = os.path.join(tmp_root, "definitions.json")
        with open(path, "w") as f:
            json.dump(definitions, f)
        extra += ("--load-definitions", path)
    holder = {"p": Proto.start(tmp_root, extra_args=extra)}
    try:
        yield holder
    finally:
        with contextlib.suppress(Exception):
            holder["p"].stop()
        shutil.rmtree(tmp_root, ignore_errors=True)


@pytest.fixture(scope="session")
def proto():
    if os.environ.get("REFERENCE_AMQP_URL"):
        u = urllib.parse.urlparse(os.environ["REFERENCE_AMQP_URL"])
        yield Proto(u.port or 5672, int(os.environ.get("REFERENCE_MQTT_PORT", "1884")),
                    int(os.environ.get("REFERENCE_STOMP_PORT", "61614")), is_reference=True,
                    http_url=os.environ.get("REFERENCE_HTTP_URL", "http://127.0.0.1:15673"))
        return
    tmp_root = tempfile.mkdtemp(prefix="warren-proto-")
    p = Proto.start(tmp_root)
    try:
        yield p
    finally:
        code = p.stop()
        if code not in (0, -signal.SIGTERM):
            print(p.log()[-5000:])
            raise RuntimeError(f"broker exited with code {code}")
        shutil.rmtree(tmp_root, ignore_errors=True)


def require_warren(proto, why):
    if proto.is_reference:
        pytest.skip(f"reference RabbitMQ 3.10: {why}")


# ---------------------------------------------------------------------------------
# The management HTTP API, and users with restricted permissions
# ---------------------------------------------------------------------------------

def _q(name):
    return urllib.parse.quote(name, safe="")


class Api:
    """A tiny client for the management HTTP API (JSON over basic auth)."""

    def __init__(self, base, user="guest", password="guest"):
        self.base = base.rstrip("/")
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def request(self, method, path, body=None, headers=None):
        """(status, decoded JSON or None)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", self.auth)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, (json.loads(raw) if raw else None)
        except ValueError:
            return status, raw.decode(errors="replace")

    def ok(self, method, path, body=None):
        status, out = self.request(method, path, body)
        assert status in (200, 201, 204), f"{method} {path}: {status} {out!r}"
        return out

    def connections(self):
        return self.ok("GET", "/api/connections")

    def connection_where(self, pred, timeout=15):
        """The first listed connection that satisfies `pred` (the reference lists a
        connection only after its next stats emission, a few seconds)."""
        deadline = time.time() + timeout
        while True:
            found = [c for c in self.connections() if pred(c)]
            if found:
                return found[0]
            if time.time() > deadline:
                raise AssertionError("no such connection listed")
            time.sleep(0.25)

    def close_connection(self, name, reason=None):
        headers = {"X-Reason": reason} if reason else None
        return self.request("DELETE", f"/api/connections/{_q(name)}", headers=headers)[0]


def rabbit_password_hash(password):
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    import hashlib
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions_with_users(users):
    """A definitions document for vhost "/" with guest and `users`:
    [(name, password, (configure, write, read), [(exchange, write, read)])]."""
    all_users = [("guest", "guest", (".*", ".*", ".*"), [])] + list(users)
    return {
        "users": [{"name": n, "password_hash": rabbit_password_hash(pw),
                   "hashing_algorithm": "rabbit_password_hashing_sha256",
                   "tags": ["administrator"] if n == "guest" else [], "limits": {}}
                  for n, pw, _, _ in all_users],
        "vhosts": [{"name": "/"}],
        "permissions": [{"user": n, "vhost": "/", "configure": c, "write": w, "read": r}
                        for n, _, (c, w, r), _ in all_users],
        "topic_permissions": [{"user": n, "vhost": "/", "exchange": x, "write": w, "read": r}
                              for n, _, _, tps in all_users for x, w, r in tps],
        "parameters": [], "global_parameters": [], "policies": [], "queues": [],
        "exchanges": [], "bindings": [],
    }


class AclUsers:
    """Users of one test session with restricted permissions on vhost "/", named
    `<role>-<tag>`, all with password "pw". Roles (configure / write / read, and topic
    permissions on amq.topic where given):

    - `topic`:   .* / .* / .*, topic permissions on amq.topic: write ^w\\. read ^r\\.
    - `noconf`:  (nothing) / .* / .*
    - `nowrite`: .* / only the adapters' own queues (mqtt-subscription-, stomp-subscription-,
                 amq.gen-) / .*
    - `noread`:  .* / .* / only the adapters' own queues
    - `noqread`: .* / .* / ^amq\\.topic$ (may bind but not consume)
    - `novhost`: no permissions on "/" at all
    """

    OWN = r"^mqtt-subscription-|^stomp-subscription-|^amq\.gen"
    ROLES = {
        "topic": (".*", ".*", ".*", (r"^w\.", r"^r\.")),
        "noconf": ("", ".*", ".*", None),
        "nowrite": (".*", OWN, ".*", None),
        "noread": (".*", ".*", OWN, None),
        "noqread": (".*", ".*", r"^amq\.topic$", None),
        "novhost": None,
    }

    def __init__(self, api):
        self.api = api
        self.tag = uuid.uuid4().hex[:6]
        self.created = []

    def name(self, role):
        return f"{role}-{self.tag}"

    def create(self):
        for role, perms in self.ROLES.items():
            u = self.name(role)
            self.api.ok("PUT", f"/api/users/{_q(u)}", {"password": "pw", "tags": ""})
            self.created.append(u)
            if perms is None:
                continue
            c, w, r, topic = perms
            self.api.ok("PUT", f"/api/permissions/%2F/{_q(u)}",
                        {"configure": c, "write": w, "read": r})
            if topic:
                self.api.ok("PUT", f"/api/topic-permissions/%2F/{_q(u)}",
                            {"exchange": "amq.topic", "write": topic[0], "read": topic[1]})

    def delete(self):
        for u in self.created:
            with contextlib.suppress(Exception):
                self.api.request("DELETE", f"/api/users/{_q(u)}")


@pytest.fixture(scope="module")
def acl_users(proto):
    users = AclUsers(proto.api)
    try:
        users.create()
        yield users
    finally:
        users.delete()


@pytest.fixture
def uniq_topic(request):
    """A topic prefix unique to this test, without `.` (which MQTT maps to `/`)."""
    base = request.node.name.replace("[", "-").replace("]", "").replace(".", "-")
    return f"t-{base}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------------
# MQTT
# ---------------------------------------------------------------------------------

class MqttClient:
    """paho-mqtt with blocking helpers: every call waits for the broker's answer."""

    def __init__(self, proto, client_id, version=4, clean=True, username="guest",
                 password="guest", keepalive=60, will=None, transport="tcp",
                 properties=None, clean_start=None, connect=True, port=None, path="/ws"):
        self.proto = proto
        self.version = {3: mqtt.MQTTv31, 4: mqtt.MQTTv311, 5: mqtt.MQTTv5}[version]
        self.client_id = client_id
        kw = {}
        if self.version != mqtt.MQTTv5:
            kw["clean_session"] = clean
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=self.version, transport=transport, **kw)
        if transport == "websockets":
            self.c.ws_set_options(path=path)
        if username is not None:
            self.c.username_pw_set(username, password)
        if will:
            self.c.will_set(**will)
        self.clean_start = clean if clean_start is None else clean_start
        self.keepalive = keepalive
        self.connect_properties = properties
        self.port = port or (proto.web_mqtt_port if transport == "websockets" else proto.mqtt_port)
        self.messages = queue.Queue()
        self.connack = queue.Queue()
        self.subacks = {}
        self.unsubacks = {}
        self.disconnects = queue.Queue()
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_disconnect = self._on_disconnect
        self.c.max_inflight_messages_set(1000)

    def _on_connect(self, c, userdata, flags, rc, props):
        self.connack.put((rc, flags, props))

    def _on_message(self, c, userdata, msg):
        self.messages.put(msg)

    def _on_subscribe(self, c, userdata, mid, rcs, props):
        self.subacks[mid] = rcs

    def _on_unsubscribe(self, c, userdata, mid, rcs, props):
        self.unsubacks[mid] = rcs

    def _on_disconnect(self, c, userdata, flags, rc, props):
        self.disconnects.put((rc, props))

    def connect(self, timeout=10):
        kw = {"keepalive": self.keepalive}
        if self.version == mqtt.MQTTv5:
            kw["clean_start"] = self.clean_start
            if self.connect_properties is not None:
                kw["properties"] = self.connect_properties
        self.c.connect(self.proto.host, self.port, **kw)
        self.c.loop_start()
        rc, flags, props = self.connack.get(timeout=timeout)
        rc = getattr(rc, "value", rc)
        if self.version != mqtt.MQTTv5:
            # paho reports 3.x return codes as MQTT 5 reason codes: back to 3.x.
            rc = {0: 0, 0x84: 1, 0x85: 2, 0x88: 3, 0x86: 4, 0x87: 5}.get(rc, rc)
        self.rc, self.flags, self.connack_properties = rc, flags, props
        self.session_present = flags.session_present
        return rc

    def subscribe(self, topic, qos=0, options=None, properties=None, timeout=10):
        """Returns the granted reason codes (ints)."""
        if options is not None:
            r, mid = self.c.subscribe(topic, options=options, properties=properties)
        elif isinstance(topic, list):
            r, mid = self.c.subscribe(topic, properties=properties)
        else:
            r, mid = self.c.subscribe(topic, qos, properties=properties)
        assert r == mqtt.MQTT_ERR_SUCCESS, r
        deadline = time.time() + timeout
        while mid not in self.subacks:
            if time.time() > deadline:
                raise AssertionError("no SUBACK")
            time.sleep(0.005)
        return [rc.value if hasattr(rc, "value") else rc for rc in self.subacks.pop(mid)]

    def unsubscribe(self, topic, properties=None, timeout=10):
        r, mid = self.c.unsubscribe(topic, properties=properties)
        deadline = time.time() + timeout
        while mid not in self.unsubacks:
            if time.time() > deadline:
                raise AssertionError("no UNSUBACK")
            time.sleep(0.005)
        return self.unsubacks.pop(mid)

    def publish(self, topic, payload, qos=0, retain=False, properties=None, wait=True, timeout=10):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if wait and qos > 0:
            info.wait_for_publish(timeout)
            assert info.is_published(), f"no PUBACK for {topic}"
        return info

    def get(self, timeout=5):
        return self.messages.get(timeout=timeout)

    def get_all(self, n, timeout=5):
        return [self.get(timeout) for _ in range(n)]

    def expect_none(self, wait=0.5):
        try:
            m = self.messages.get(timeout=wait)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {m.topic}: {m.payload!r}")

    def disconnect(self, reasoncode=None, properties=None):
        if self.version == mqtt.MQTTv5 and reasoncode is not None:
            from paho.mqtt.reasoncodes import ReasonCode
            self.c.disconnect(ReasonCode(PacketTypes.DISCONNECT, identifier=reasoncode),
                              properties=properties)
        else:
            self.c.disconnect(properties=properties)
        self.c.loop_stop()

    def drop(self):
        """Closes the TCP connection without DISCONNECT (so the will is published)."""
        sock = self.c.socket()
        self.c.loop_stop()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


# -- raw MQTT packets, for the tests of malformed input ---------------------------------

def var_int(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def mqtt_string(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


def connect_packet(client_id="raw", version=4, clean=True, keepalive=60, username="guest",
                   password="guest", props=b""):
    name = b"MQIsdp" if version == 3 else b"MQTT"
    flags = (0x02 if clean else 0) | (0x80 if username is not None else 0) | (
        0x40 if password is not None else 0)
    body = mqtt_string(name) + bytes([version, flags]) + struct.pack(">H", keepalive)
    if version == 5:
        body += var_int(len(props)) + props
    body += mqtt_string(client_id)
    if username is not None:
        body += mqtt_string(username)
    if password is not None:
        body += mqtt_string(password)
    return bytes([0x10]) + var_int(len(body)) + body


def subscribe_packet(packet_id, filters, version=4):
    """SUBSCRIBE with [(filter, qos)]."""
    body = struct.pack(">H", packet_id) + (b"\x00" if version == 5 else b"")
    for f, qos in filters:
        body += mqtt_string(f) + bytes([qos])
    return bytes([0x82]) + var_int(len(body)) + body


def publish_packet(topic, payload=b"x", qos=0, packet_id=1, version=4, retain=False):
    body = mqtt_string(topic) + (struct.pack(">H", packet_id) if qos else b"")
    body += (b"\x00" if version == 5 else b"") + payload
    return bytes([0x30 | (qos << 1) | int(retain)]) + var_int(len(body)) + body


class raw_mqtt:
    """A bare socket to the MQTT port."""

    def __init__(self, proto, port=None):
        self.s = socket.create_connection((proto.host, port or proto.mqtt_port), timeout=5)

    def send(self, b):
        self.s.sendall(b)

    def recv_packet(self, timeout=5):
        """One packet as (first byte, body), or None when the broker closed."""
        self.s.settimeout(timeout)
        first = self.s.recv(1)
        if not first:
            return None
        mult, n = 1, 0
        while True:
            b = self.s.recv(1)[0]
            n += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        body = b""
        while len(body) < n:
            chunk = self.s.recv(n - len(body))
            if not chunk:
                break
            body += chunk
        return first[0], body

    def closed(self, timeout=5):
        """Whether the broker closes the connection (reading nothing more) in time."""
        self.s.settimeout(timeout)
        try:
            return self.s.recv(1024) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


# ---------------------------------------------------------------------------------
# STOMP
# ---------------------------------------------------------------------------------

class _Listener(stomp.ConnectionListener):
    def __init__(self):
        self.messages = queue.Queue()
        self.errors = queue.Queue()
        self.receipts = queue.Queue()
        self.disconnected = queue.Queue()

    def on_message(self, frame):
        self.messages.put(frame)

    def on_error(self, frame):
        self.errors.put(frame)

    def on_receipt(self, frame):
        self.receipts.put(frame)

    def on_disconnected(self):
        self.disconnected.put(True)


class StompClient:
    """stomp.py with blocking helpers."""

    def __init__(self, proto, version="1.2", login="guest", passcode="guest", vhost="/",
                 heartbeats=(0, 0), ws=False, connect=True, headers=None):
        cls = {"1.0": stomp.Connection10, "1.1": stomp.Connection11, "1.2": stomp.Connection12}[version]
        if ws:
            cls = stomp.WSConnection
            self.conn = cls([(proto.host, proto.web_stomp_port)], ws_path="/ws",
                            heartbeats=heartbeats, vhost=vhost)
        elif version == "1.0":
            self.conn = cls([(proto.host, proto.stomp_port)])
        else:
            self.conn = cls([(proto.host, proto.stomp_port)], heartbeats=heartbeats, vhost=vhost)
        self.l = _Listener()
        self.conn.set_listener("t", self.l)
        self.version = version
        if connect:
            self.conn.connect(login, passcode, wait=True, headers=headers or {})

    def receipt(self, timeout=5):
        return self.l.receipts.get(timeout=timeout)

    def get(self, timeout=5):
        return self.l.messages.get(timeout=timeout)

    def expect_none(self, wait=0.5):
        try:
            m = self.l.messages.get(timeout=wait)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message {m.headers} {m.body!r}")

    def error(self, timeout=5):
        return self.l.errors.get(timeout=timeout)

    def disconnect(self):
        with contextlib.suppress(Exception):
            self.conn.disconnect()


class raw_stomp:
    """A bare socket to the STOMP port: frames in, frames out."""

    def __init__(self, proto, port=None):
        self.s = socket.create_connection((proto.host, port or proto.stomp_port), timeout=5)
        self.buf = b""

    def send(self, b):
        self.s.sendall(b)

    def connect(self, version="1.2", extra=b""):
        self.send(b"CONNECT\naccept-version:" + version.encode() +
                  b"\nhost:/\nlogin:guest\npasscode:guest\n" + extra + b"\n\0")
        return self.frame()

    def frame(self, timeout=5):
        """The next frame as (command, {header: value}, body); None if the broker closed.
        Heart-beat EOLs are skipped."""
        self.s.settimeout(timeout)
        while True:
            self.buf = self.buf.lstrip(b"\r\n")
            head_end = self.buf.find(b"\n\n")
            if head_end >= 0:
                head = self.buf[:head_end].decode()
                lines = head.split("\n")
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers.setdefault(k, v)
                start = head_end + 2
                if "content-length" in headers:
                    n = int(headers["content-length"])
                    if len(self.buf) >= start + n + 1:
                        body = self.buf[start:start + n]
                        self.buf = self.buf[start + n + 1:]
                        return lines[0], headers, body
                else:
                    end = self.buf.find(b"\0", start)
                    if end >= 0:
                        body = self.buf[start:end]
                        self.buf = self.buf[end + 1:]
                        return lines[0], headers, body
            chunk = self.s.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def closed(self, timeout=5):
        self.s.settimeout(timeout)
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()
