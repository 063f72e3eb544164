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
