"""Shared helpers for the AMQP 0-9-1 interop tests (exchanges, queues, routing,
consuming, acks, confirms, transactions).

Importing this module patches pika so that `ChannelClosedByBroker` and
`ConnectionClosedByBroker` exceptions also carry the `class_id` and `method_id`
of the Channel.Close / Connection.Close frame the broker sent (pika drops them).
"""

import contextlib
import time

import pika
import pika.channel
import pika.connection
import pika.exceptions
import pytest

# --------------------------------------------------------------------------
# pika patch: keep class_id / method_id of close frames sent by the broker.
# --------------------------------------------------------------------------

if not getattr(pika.channel.Channel, "_interop_patched", False):
    _orig_ch_close = pika.channel.Channel._on_close_from_broker

    def _ch_close_from_broker(self, method_frame):
        _orig_ch_close(self, method_frame)
        reason = getattr(self, "_closing_reason", None)
        if isinstance(reason, pika.exceptions.ChannelClosedByBroker):
            reason.class_id = method_frame.method.class_id
            reason.method_id = method_frame.method.method_id

    pika.channel.Channel._on_close_from_broker = _ch_close_from_broker
    pika.channel.Channel._interop_patched = True

    def _conn_close_from_broker(self, method_frame):
        m = method_frame.method
        err = pika.exceptions.ConnectionClosedByBroker(m.reply_code, m.reply_text)
        err.class_id = m.class_id
        err.method_id = m.method_id
        self._terminate_stream(err)

    pika.connection.Connection._on_connection_close_from_broker = _conn_close_from_broker


# AMQP 0-9-1 (class_id, method_id) pairs used in the assertions.
EXCHANGE_DECLARE = (40, 10)
EXCHANGE_DELETE = (40, 20)
EXCHANGE_BIND = (40, 30)
EXCHANGE_UNBIND = (40, 40)
QUEUE_DECLARE = (50, 10)
QUEUE_BIND = (50, 20)
QUEUE_PURGE = (50, 30)
QUEUE_DELETE = (50, 40)
QUEUE_UNBIND = (50, 50)
BASIC_QOS = (60, 10)
BASIC_CONSUME = (60, 20)
BASIC_CANCEL = (60, 30)
BASIC_PUBLISH = (60, 40)
BASIC_GET = (60, 70)
BASIC_ACK = (60, 80)
BASIC_REJECT = (60, 90)
BASIC_RECOVER = (60, 110)
BASIC_NACK = (60, 120)
TX_SELECT = (90, 10)
TX_COMMIT = (90, 20)
TX_ROLLBACK = (90, 30)
CONFIRM_SELECT = (85, 10)


def truncated(text):
    """RabbitMQ cuts a reply text longer than 255 bytes to its first 252 bytes + "..."."""
    raw = text.encode()
    if len(raw) <= 255:
        return text
    return (raw[:252] + b"...").decode(errors="replace")


def _check_ids(exc, ids):
    if ids is None:
        return
    got = (getattr(exc, "class_id", None), getattr(exc, "method_id", None))
    assert got == tuple(ids), f"close frame class/method id {got}, expected {tuple(ids)}"


@contextlib.contextmanager
def channel_closed(code, text, ids=None):
    """The block must end with the broker closing the channel with exactly
    `code` / `text` (and, if given, `ids` = (class_id, method_id))."""
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        yield info
    exc = info.value
    text = truncated(text)
    assert (exc.reply_code, exc.reply_text) == (code, text), (
        f"broker closed with {exc.reply_code} {exc.reply_text!r}, expected {code} {text!r}")
    _check_ids(exc, ids)


@contextlib.contextmanager
def connection_closed(code, text, ids=None):
    """The block must end with the broker closing the connection with exactly
    `code` / `text` (and, if given, `ids` = (class_id, method_id))."""
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        yield info
    exc = info.value
    text = truncated(text)
    assert (exc.reply_code, exc.reply_text) == (code, text), (
        f"broker closed with {exc.reply_code} {exc.reply_text!r}, expected {code} {text!r}")
    _check_ids(exc, ids)


def wait_channel_closed(conn, ch, code, text, ids=None, timeout=5.0):
    """For asynchronous errors (e.g. after basic.publish or basic.ack, which have no
    reply): pump I/O until the broker closes `ch`, then check the close."""
    deadline = time.monotonic() + timeout
    while not ch.is_closed:
        if time.monotonic() > deadline:
            raise AssertionError("channel was not closed by the broker")
        conn.process_data_events(time_limit=0.05)
    exc = ch._closing_reason
    assert isinstance(exc, pika.exceptions.ChannelClosedByBroker), repr(exc)
    text = truncated(text)
    assert (exc.reply_code, exc.reply_text) == (code, text), (
        f"broker closed with {exc.reply_code} {exc.reply_text!r}, expected {code} {text!r}")
    _check_ids(exc, ids)
    return exc


def wait_connection_closed(conn, code, text, ids=None, timeout=5.0):
    """Pump I/O until the broker closes the connection, then check the close."""
    deadline = time.monotonic() + timeout
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        while time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.05)
        raise AssertionError("connection was not closed by the broker")
    exc = info.value
    text = truncated(text)
    assert (exc.reply_code, exc.reply_text) == (code, text), (
        f"broker closed with {exc.reply_code} {exc.reply_text!r}, expected {code} {text!r}")
    _check_ids(exc, ids)


def wait_until(conn, predicate, timeout=5.0, what="condition"):
    """Pump `conn` until predicate() is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        conn.process_data_events(time_limit=0.02)


def settle(conn, seconds=0.2):
    """Give the broker a chance to send something we expect NOT to arrive.
    (Used only for negative checks; positive checks use wait_until.)"""
    conn.process_data_events(time_limit=seconds)


def get_all(ch, queue, no_ack=True, limit=100000):
    """basic.get until get-empty; returns the list of (method, props, body)."""
    out = []
    while len(out) < limit:
        m, p, b = ch.basic_get(queue, auto_ack=no_ack)
        if m is None:
            break
        out.append((m, p, b))
    return out


def bodies(ch, queue, no_ack=True):
    return [b for _, _, b in get_all(ch, queue, no_ack=no_ack)]


def message_count(ch, queue):
    return ch.queue_declare(queue, passive=True).method.message_count


def queue_exists(broker, queue):
    c = broker.connect()
    try:
        c.channel().queue_declare(queue, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker as e:
        assert e.reply_code == 404, e
        return False
    finally:
        if c.is_open:
            c.close()


def exchange_exists(broker, exchange):
    c = broker.connect()
    try:
        c.channel().exchange_declare(exchange, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker as e:
        assert e.reply_code == 404, e
        return False
    finally:
        if c.is_open:
            c.close()


class Cleanup:
    """Deletes queues and exchanges at teardown, over a fresh connection."""

    def __init__(self, broker):
        self.broker = broker
        self.queues = []
        self.exchanges = []

    def queue(self, name):
        self.queues.append(name)
        return name

    def exchange(self, name):
        self.exchanges.append(name)
        return name

    def run(self):
        if not (self.queues or self.exchanges):
            return
        c = self.broker.connect()
        try:
            for name in self.queues:
                c.channel().queue_delete(name)
            for name in self.exchanges:
                c.channel().exchange_delete(name)
        except pika.exceptions.AMQPError:
            pass
        finally:
            if c.is_open:
                c.close()


@pytest.fixture
def cleanup(broker):
    c = Cleanup(broker)
    yield c
    c.run()


def not_found_queue(name, vhost="/"):
    return f"NOT_FOUND - no queue '{name}' in vhost '{vhost}'"


def not_found_exchange(name, vhost="/"):
    return f"NOT_FOUND - no exchange '{name}' in vhost '{vhost}'"


# --------------------------------------------------------------------------
# A minimal synchronous AMQP 0-9-1 client built on pika's frame codec, for the few
# scenarios pika's own API hides (server-generated consumer tags, the exact ack frames
# of publisher confirms, reading every frame the broker sends).
# --------------------------------------------------------------------------

import socket as _socket  # noqa: E402

from pika import frame as _frame, spec as _spec  # noqa: E402


class RawClosed(Exception):
    pass


class RawClient:
    """`RawClient(broker)` opens a connection and channel 1.

    send(method, ch=1)            -> send one method frame
    publish(exchange, key, body, props=None, ch=1, mandatory=False)
    rpc(method, reply_cls, ch=1)  -> send, then return the first reply of that class
    next_frame(timeout)           -> the next pika.frame.* (raises socket.timeout)
    """

    def __init__(self, broker, frame_max=131072, channel=1):
        self.sock = _socket.create_connection((broker.host, broker.port), timeout=10)
        self.buf = b""
        self.server_closed = False
        self.frame_max = frame_max
        self.sock.sendall(_frame.ProtocolHeader().marshal())
        start = self.expect(_spec.Connection.Start, ch=0)
        self.server_properties = start.server_properties
        resp = f"\0{broker.user}\0{broker.password}"
        self.send(_spec.Connection.StartOk(
            client_properties={"product": "warren-interop-raw",
                               "capabilities": {"consumer_cancel_notify": True,
                                                "publisher_confirms": True,
                                                "basic.nack": True}},
            mechanism="PLAIN", response=resp, locale="en_US"), ch=0)
        tune = self.expect(_spec.Connection.Tune, ch=0)
        self.frame_max = min(frame_max, tune.frame_max) if tune.frame_max else frame_max
        self.send(_spec.Connection.TuneOk(channel_max=tune.channel_max,
                                          frame_max=self.frame_max, heartbeat=0), ch=0)
        self.send(_spec.Connection.Open(virtual_host=broker.vhost), ch=0)
        self.expect(_spec.Connection.OpenOk, ch=0)
        self.open_channel(channel)

    # -- frames
    def send(self, method, ch=1):
        self.sock.sendall(_frame.Method(ch, method).marshal())

    def publish(self, exchange, key, body, props=None, ch=1, mandatory=False):
        props = props or _spec.BasicProperties()
        parts = [_frame.Method(ch, _spec.Basic.Publish(exchange=exchange, routing_key=key,
                                                       mandatory=mandatory)).marshal(),
                 _frame.Header(ch, len(body), props).marshal()]
        step = self.frame_max - 8
        for i in range(0, len(body), step):
            parts.append(_frame.Body(ch, body[i:i + step]).marshal())
        self.sock.sendall(b"".join(parts))

    def next_frame(self, timeout=5.0):
        self.sock.settimeout(timeout)
        while True:
            used, fr = _frame.decode_frame(self.buf)
            if fr is not None:
                self.last_raw = self.buf[:used]  # the frame's exact bytes
                self.buf = self.buf[used:]
                if isinstance(fr, _frame.Method) and isinstance(fr.method, _spec.Connection.Close):
                    self.server_closed = True
                return fr
            data = self.sock.recv(65536)
            if not data:
                raise RawClosed("socket closed by broker")
            self.buf += data

    def next_method(self, timeout=5.0):
        """Next method frame, skipping content header/body frames."""
        while True:
            fr = self.next_frame(timeout)
            if isinstance(fr, _frame.Method):
                return fr

    def next_event(self, timeout=5.0):
        """Next method; for content-bearing methods (deliver, get-ok, return) also
        read the header and body frames. Returns (channel, method, props, body)."""
        fr = self.next_method(timeout)
        m = fr.method
        if not isinstance(m, (_spec.Basic.Deliver, _spec.Basic.GetOk, _spec.Basic.Return)):
            return fr.channel_number, m, None, None
        hdr = self.next_frame(timeout)
        assert isinstance(hdr, _frame.Header), hdr
        body = b""
        while len(body) < hdr.body_size:
            bf = self.next_frame(timeout)
            assert isinstance(bf, _frame.Body), bf
            body += bf.fragment
        assert len(body) == hdr.body_size
        return fr.channel_number, m, hdr.properties, body

    def expect(self, cls, ch=1, timeout=5.0):
        fr = self.next_method(timeout)
        if isinstance(fr.method, (_spec.Connection.Close, _spec.Channel.Close)) and cls not in (
                _spec.Connection.Close, _spec.Channel.Close):
            m = fr.method
            raise AssertionError(f"broker sent {m.NAME} {m.reply_code} {m.reply_text!r}"
                                 f" ({m.class_id},{m.method_id}) instead of {cls.NAME}")
        assert isinstance(fr.method, cls), f"expected {cls.NAME}, got {fr.method!r}"
        assert fr.channel_number == ch
        return fr.method

    def rpc(self, method, reply_cls, ch=1, timeout=5.0):
        self.send(method, ch)
        return self.expect(reply_cls, ch, timeout)

    def open_channel(self, ch):
        return self.rpc(_spec.Channel.Open(), _spec.Channel.OpenOk, ch)

    def close(self):
        if self.server_closed:
            try:
                self.send(_spec.Connection.CloseOk(), ch=0)
            except OSError:
                pass
            self.sock.close()
            return
        try:
            self.send(_spec.Connection.Close(reply_code=200, reply_text="bye",
                                             class_id=0, method_id=0), ch=0)
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                fr = self.next_method(timeout=2)
                if isinstance(fr.method, _spec.Connection.CloseOk):
                    break
        except (OSError, RawClosed, AssertionError):
            pass
        finally:
            self.sock.close()


def eventually(predicate, timeout=5.0, what="condition", interval=0.02):
    """Poll predicate() (which opens its own connections) until true, or fail.
    For effects the broker applies asynchronously, e.g. deleting an exclusive queue
    after its connection closed."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def publish_confirmed(conn, exchange, routing_key, bodies_, props=None):
    """Publish on a fresh confirm-mode channel, waiting for every confirm, so the
    messages are known to be enqueued when this returns."""
    ch = conn.channel()
    ch.confirm_delivery()
    for b in bodies_:
        ch.basic_publish(exchange, routing_key, b, props)
    ch.close()


# ==========================================================================
# Helpers for the feature tests of TTL, dead-lettering, limits, priorities,
# alternate exchanges, direct reply-to, consumers, policies, access control and
# the plugins' interfaces (delayed messages, deduplication).
# ==========================================================================

import base64 as _base64  # noqa: E402
import hashlib as _hashlib  # noqa: E402
import json as _json  # noqa: E402
import os as _os  # noqa: E402
import subprocess as _subprocess  # noqa: E402
import tempfile as _tempfile  # noqa: E402
import urllib.error as _urlerror  # noqa: E402
import urllib.parse as _urlparse  # noqa: E402
import urllib.request as _urlrequest  # noqa: E402
import uuid as _uuid  # noqa: E402

# The reference's management API and node name (differential mode only).
REFERENCE_HTTP_URL = _os.environ.get("REFERENCE_HTTP_URL", "http://127.0.0.1:15673")
REFERENCE_NODE = _os.environ.get("REFERENCE_NODE", "reference@localhost")


def skip_on_reference(broker, why):
    """For Warren-only behaviour (plugins' interfaces, Warren's own flags, or where
    Warren is deliberately better than RabbitMQ 3.10)."""
    if broker.is_reference:
        pytest.skip(why)


def unique_tag():
    return _uuid.uuid4().hex[:8]


class Arrivals:
    """A consumer recording every delivery with its arrival time:
    items = [(time.monotonic(), method, properties, body)]."""

    def __init__(self, conn, queue, auto_ack=True, ch=None, arguments=None, prefetch=None,
                 exclusive=False, consumer_tag=None):
        self.conn = conn
        self.ch = ch or conn.channel()
        if prefetch is not None:
            self.ch.basic_qos(prefetch_count=prefetch)
        self.items = []
        self.tag = self.ch.basic_consume(queue, self._on, auto_ack=auto_ack, exclusive=exclusive,
                                         arguments=arguments, consumer_tag=consumer_tag)

    def _on(self, ch, method, props, body):
        self.items.append((time.monotonic(), method, props, body))

    @property
    def bodies(self):
        return [i[3] for i in self.items]

    def wait(self, n, timeout=5.0):
        wait_until(self.conn, lambda: len(self.items) >= n, timeout, f"{n} deliveries")
        return self.items

    def ack_all(self):
        for _t, m, _p, _b in self.items:
            self.ch.basic_ack(m.delivery_tag)

    def cancel(self):
        self.ch.basic_cancel(self.tag)


def x_death(props):
    """The x-death header of a dead-lettered message (a list of tables)."""
    return (props.headers or {}).get("x-death") or []


def deaths(props):
    """x-death reduced to [(queue, reason, count)], most recent first."""
    return [(d["queue"], d["reason"], d["count"]) for d in x_death(props)]


def wait_message(ch, queue, timeout=5.0, no_ack=True):
    """basic.get until a message arrives (for messages the broker moves asynchronously,
    e.g. dead-lettered ones). Returns (method, props, body)."""
    deadline = time.monotonic() + timeout
    while True:
        m, p, b = ch.basic_get(queue, auto_ack=no_ack)
        if m is not None:
            return m, p, b
        if time.monotonic() > deadline:
            raise AssertionError(f"no message in {queue!r} after {timeout}s")
        ch.connection.process_data_events(time_limit=0.01)


class QueueProbe:
    """Tells whether a queue exists WITHOUT touching it the way a passive queue.declare
    does (RabbitMQ counts a passive declare as a use, which renews an x-expires lease):
    a mandatory publish on a confirm channel is returned iff no queue has that name.
    A probe message lands in the queue when it exists."""

    def __init__(self, conn):
        self.ch = conn.channel()
        self.ch.confirm_delivery()

    def exists(self, queue):
        try:
            self.ch.basic_publish("", queue, b"probe", mandatory=True)
            return True
        except pika.exceptions.UnroutableError:
            return False

    def wait_gone(self, queue, timeout=5.0):
        """Poll until the queue is gone; returns time.monotonic() when it was seen gone."""
        deadline = time.monotonic() + timeout
        while self.exists(queue):
            if time.monotonic() > deadline:
                raise AssertionError(f"queue {queue!r} still exists after {timeout}s")
            time.sleep(0.005)
        return time.monotonic()


# -------------------------------------------------------------- HTTP API

def quote(name):
    """A vhost or object name as one path segment of the management API."""
    return _urlparse.quote(name, safe="")


class Http:
    """A tiny client for RabbitMQ's management HTTP API (JSON over basic auth)."""

    def __init__(self, base, user="guest", password="guest"):
        self.base = base.rstrip("/")
        self.user = user
        self.password = password

    def request(self, method, path, body=None, user=None, password=None, timeout=10):
        """Returns (status, decoded JSON body or text or None)."""
        data = None if body is None else _json.dumps(body).encode()
        req = _urlrequest.Request(self.base + path, data=data, method=method)
        cred = f"{user or self.user}:{password if password is not None else self.password}"
        req.add_header("Authorization", "Basic " + _base64.b64encode(cred.encode()).decode())
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with _urlrequest.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except _urlerror.HTTPError as e:
            status, raw = e.code, e.read()
        text = raw.decode(errors="replace")
        try:
            return status, (_json.loads(text) if text else None)
        except ValueError:
            return status, text

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, {} if body is None else body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def put_policy(self, vhost, name, pattern, definition, apply_to="all", priority=0):
        status, body = self.put(f"/api/policies/{quote(vhost)}/{quote(name)}", {
            "pattern": pattern, "apply-to": apply_to, "priority": priority,
            "definition": definition})
        assert status in (201, 204), f"PUT policy {name}: {status} {body!r}"
        return status

    def delete_policy(self, vhost, name):
        return self.delete(f"/api/policies/{quote(vhost)}/{quote(name)}")[0]


@contextlib.contextmanager
def broker_with_http(broker, *extra_args):
    """(Broker, Http) for tests that drive the management HTTP API: the reference and
    its API in differential mode; otherwise a private Warren started with --http-port."""
    if broker.is_reference:
        yield broker, Http(REFERENCE_HTTP_URL)
        return
    from conftest import free_port, spawn_warren, wait_port
    port = free_port()
    with spawn_warren("--http-port", str(port), *extra_args) as b:
        wait_port("127.0.0.1", port, timeout=10, proc=b.proc)
        yield b, Http(f"http://127.0.0.1:{port}")


class PolicySet:
    """Policies created by one test (deleted at teardown, also on failure)."""

    def __init__(self, http, vhost="/"):
        self.http = http
        self.vhost = vhost
        self.names = []

    def put(self, name, pattern, definition, apply_to="all", priority=0):
        if name not in self.names:
            self.names.append(name)
        return self.http.put_policy(self.vhost, name, pattern, definition, apply_to, priority)

    def delete(self, name):
        return self.http.delete_policy(self.vhost, name)

    def clear(self):
        for name in self.names:
            try:
                self.http.delete_policy(self.vhost, name)
            except OSError:
                pass
        self.names = []


# -------------------------------------------------------------- reference node settings

def rabbitmqctl_eval(expr):
    """`rabbitmqctl eval` on the reference node; returns its output (an Erlang term)."""
    out = _subprocess.run(["rabbitmqctl", "-n", REFERENCE_NODE, "eval", expr],
                          capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@contextlib.contextmanager
def reference_app_env(**settings):
    """Temporarily set `rabbit` application variables on the reference node (Erlang
    terms given as text, e.g. consumer_timeout="1000"); the original values are restored
    on exit. They apply to channels opened while they are in force."""
    saved = {}
    try:
        for key, value in settings.items():
            saved[key] = rabbitmqctl_eval(f"application:get_env(rabbit, {key}).")
            rabbitmqctl_eval(f"application:set_env(rabbit, {key}, {value}).")
        yield
    finally:
        for key, orig in saved.items():
            if orig.startswith("{ok,") and orig.endswith("}"):
                rabbitmqctl_eval(f"application:set_env(rabbit, {key}, {orig[4:-1]}).")
            else:
                rabbitmqctl_eval(f"application:unset_env(rabbit, {key}).")


# -------------------------------------------------------------- users, vhosts, permissions

def rabbit_password_hash(password, salt=None):
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt4 + sha256(salt4 + password))."""
    salt = _os.urandom(4) if salt is None else salt
    return _base64.b64encode(salt + _hashlib.sha256(salt + password.encode()).digest()).decode()


class AccessWorld:
    """A broker where given users, vhosts, permissions and topic permissions exist.

    users: {name: (password, [tags])}; vhosts: [name]; permissions: [(user, vhost,
    configure, write, read)]; topic_permissions: [(user, vhost, exchange, write, read)].
    guest (password guest, administrator) keeps full permissions on "/" and gets them on
    every listed vhost, to set up objects.

    Reference: created through the management API and deleted on exit (use unique
    names: the reference is shared). Warren: a private broker started with
    --load-definitions on a RabbitMQ definitions file holding all of it (with
    http=True it also serves its management API on a free --http-port).
    `with AccessWorld(broker, ...) as w:` then w.connect(user, vhost), w.broker (guest on
    "/"), w.http (or None).
    """

    def __init__(self, broker, users=None, vhosts=(), permissions=(), topic_permissions=(),
                 http=False, extra_args=()):
        self.session_broker = broker
        self.users = dict(users or {})
        self.vhosts = list(vhosts)
        self.permissions = list(permissions)
        self.topic_permissions = list(topic_permissions)
        self.want_http = http
        self.extra_args = tuple(extra_args)
        self.spawned = None
        self.tmp = None
        self.broker = None
        self.http = None

    def definitions(self):
        all_vhosts = ["/"] + [v for v in self.vhosts if v != "/"]
        users = [{"name": "guest", "password_hash": rabbit_password_hash("guest"),
                  "hashing_algorithm": "rabbit_password_hashing_sha256",
                  "tags": ["administrator"], "limits": {}}]
        for name, (password, tags) in self.users.items():
            users.append({"name": name, "password_hash": rabbit_password_hash(password),
                          "hashing_algorithm": "rabbit_password_hashing_sha256",
                          "tags": list(tags), "limits": {}})
        perms = [{"user": "guest", "vhost": v, "configure": ".*", "write": ".*", "read": ".*"}
                 for v in all_vhosts]
        perms += [{"user": u, "vhost": v, "configure": c, "write": w, "read": r}
                  for u, v, c, w, r in self.permissions]
        topic = [{"user": u, "vhost": v, "exchange": x, "write": w, "read": r}
                 for u, v, x, w, r in self.topic_permissions]
        return {"rabbit_version": "3.10.8", "rabbitmq_version": "3.10.8",
                "product_name": "RabbitMQ", "product_version": "3.10.8",
                "users": users, "vhosts": [{"name": v} for v in all_vhosts],
                "permissions": perms, "topic_permissions": topic, "parameters": [],
                "global_parameters": [], "policies": [], "queues": [], "exchanges": [],
                "bindings": []}

    def __enter__(self):
        if self.session_broker.is_reference:
            self.broker = self.session_broker
            self.http = Http(REFERENCE_HTTP_URL)
            try:
                self._create_on_reference()
            except BaseException:
                self._delete_on_reference()
                raise
            return self
        from conftest import free_port, spawn_warren, wait_port
        self.tmp = _tempfile.mkdtemp(prefix="warren-defs-")
        path = _os.path.join(self.tmp, "definitions.json")
        with open(path, "w") as f:
            _json.dump(self.definitions(), f, indent=1)
        args = ["--load-definitions", path, *self.extra_args]
        port = None
        if self.want_http:
            port = free_port()
            args += ["--http-port", str(port)]
        self.spawned = spawn_warren(*args)
        self.broker = self.spawned.__enter__()
        if port is not None:
            wait_port("127.0.0.1", port, timeout=10, proc=self.broker.proc)
            self.http = Http(f"http://127.0.0.1:{port}")
        return self

    def __exit__(self, *exc):
        if self.spawned is not None:
            self.spawned.__exit__(*exc)
        if self.tmp:
            import shutil
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self.session_broker.is_reference:
            self._delete_on_reference()
        return False

    def _ok(self, result, what):
        status, body = result
        assert status in (201, 204), f"{what}: {status} {body!r}"

    def _create_on_reference(self):
        h = self.http
        for v in self.vhosts:
            if v != "/":
                self._ok(h.put(f"/api/vhosts/{quote(v)}"), f"vhost {v}")
                self._ok(h.put(f"/api/permissions/{quote(v)}/guest",
                               {"configure": ".*", "write": ".*", "read": ".*"}), "guest perms")
        for name, (password, tags) in self.users.items():
            self._ok(h.put(f"/api/users/{quote(name)}",
                           {"password": password, "tags": ",".join(tags)}), f"user {name}")
        for u, v, c, w, r in self.permissions:
            self._ok(h.put(f"/api/permissions/{quote(v)}/{quote(u)}",
                           {"configure": c, "write": w, "read": r}), f"permissions {u}@{v}")
        for u, v, x, w, r in self.topic_permissions:
            self._ok(h.put(f"/api/topic-permissions/{quote(v)}/{quote(u)}",
                           {"exchange": x, "write": w, "read": r}), f"topic permissions {u}@{v}")

    def _delete_on_reference(self):
        h = self.http
        for name in self.users:
            h.delete(f"/api/users/{quote(name)}")
        for v in self.vhosts:
            if v != "/":
                h.delete(f"/api/vhosts/{quote(v)}")

    def params(self, user, vhost="/", password=None, **kw):
        if password is None:
            password = "guest" if user == "guest" else self.users[user][0]
        return self.broker.params(credentials=pika.PlainCredentials(user, password),
                                  virtual_host=vhost, **kw)

    def connect(self, user, vhost="/", password=None, **kw):
        return pika.BlockingConnection(self.params(user, vhost, password, **kw))
