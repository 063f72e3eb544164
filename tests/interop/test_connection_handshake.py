"""Connection handshake: protocol header, connection.start/start-ok (SASL), tune/tune-ok,
open/open-ok, and connection.close/close-ok in both directions.

Recorded against RabbitMQ 3.10.8. Errors before the connection is open are not all
reported with connection.close: RabbitMQ only sends one for a refused login (when the
client announced `authentication_failure_close`) and for connection.open; every other
handshake failure (unknown mechanism, malformed SASL response, out-of-range tune-ok,
methods out of order) is a silent TCP close after a fixed ~3 s delay (anti-DoS).
"""

import concurrent.futures
import time

import pika
import pytest

import amqp_raw as A

LOGIN_REFUSED = (
    "ACCESS_REFUSED - Login was refused using authentication mechanism {}. "
    "For details see the broker logfile."
)
SILENT_CLOSE_MIN, SILENT_CLOSE_MAX = 2.0, 6.0  # RabbitMQ: 3 s


def raw_start(broker, **kw):
    kw.setdefault("user", broker.user)
    kw.setdefault("password", broker.password)
    return A.start(broker.host, broker.port, **kw)


def raw_tune(broker, channel_max, frame_max, heartbeat=0):
    c = raw_start(broker)
    c.tune = c.expect("connection.tune", 0).args
    c.send_method(0, "connection.tune-ok", channel_max, frame_max, heartbeat)
    return c


def assert_close(close, code, text, class_id, method_id):
    assert (close.kind, close.channel) == ("connection", 0)
    assert (close.reply_code, close.reply_text, close.class_id, close.method_id) == (
        code, text, class_id, method_id)


# ---------------------------------------------------------------- protocol header

@pytest.mark.parametrize("header", [
    b"AMQP\x00\x00\x09\x02",        # unknown 0-9-x revision
    b"HTTP/1.1",                    # not AMQP at all
    b"AMQP\x01\x01\x00\x0a",        # AMQP 0-10
    b"AMQP\x00\x00\x08\x00",        # nonsense version
    b"GET / HTTP/1.1\r\n\r\n",      # longer than a header: only the first 8 octets count
], ids=["0-9-2", "http-short", "0-10", "0-0-8-0", "http-get"])
def test_bad_protocol_header_gets_supported_header_and_close(broker, header):
    with A.open_socket(broker.host, broker.port) as c:
        c.send(header)
        assert c.read_to_eof(timeout=5) == A.PROTOCOL_HEADER


def test_protocol_header_split_across_writes(broker):
    with A.open_socket(broker.host, broker.port) as c:
        for b in A.PROTOCOL_HEADER:
            c.send(bytes([b]))
        m = c.expect("connection.start", 0)
        assert m.args[:2] == [0, 9]


# ---------------------------------------------------------------- connection.start

def test_connection_start_fields(broker):
    with A.open_socket(broker.host, broker.port) as c:
        c.send(A.PROTOCOL_HEADER)
        m = c.read_method()
        assert (m.channel, m.class_id, m.method_id) == (0, 10, 10)
        major, minor, props, mechanisms, locales = m.args
        assert (major, minor) == (0, 9)
        assert set(mechanisms.split(b" ")) >= {b"PLAIN", b"AMQPLAIN"}
        assert locales == b"en_US"
        for key in ("product", "version", "platform", "copyright", "information",
                    "cluster_name"):
            assert isinstance(props.get(key), bytes) and props[key], key
        assert props["product"] in (b"RabbitMQ", b"Warren")
        caps = props["capabilities"]
        assert isinstance(caps, dict)
        for cap in ("publisher_confirms", "exchange_exchange_bindings", "basic.nack",
                    "consumer_cancel_notify", "connection.blocked", "consumer_priorities",
                    "authentication_failure_close", "per_consumer_qos", "direct_reply_to"):
            assert caps.get(cap) is True, cap


# ---------------------------------------------------------------- SASL

@pytest.mark.parametrize("mechanism", ["PLAIN", "AMQPLAIN"])
def test_sasl_login_succeeds(broker, mechanism):
    with A.broker_handshake(broker, mechanism=mechanism) as c:
        # no connection.secure round: tune follows start-ok directly (checked by handshake)
        c.open_channel(1)


@pytest.mark.parametrize("mechanism", ["PLAIN", "AMQPLAIN"])
@pytest.mark.parametrize("who", ["wrong-password", "unknown-user"])
def test_login_refused_with_authentication_failure_close(broker, mechanism, who):
    user, password = (broker.user, "not-the-password") if who == "wrong-password" else (
        "no-such-user-xyz", "whatever")
    with raw_start(broker, mechanism=mechanism, user=user, password=password) as c:
        close = c.read_until_close(reply_close_ok=False)
        assert_close(close, 403, LOGIN_REFUSED.format(mechanism), 0, 0)
        c.send_method(0, "connection.close-ok")
        assert c.wait_closed(2)


@pytest.mark.parametrize("who", ["wrong-password", "unknown-user"])
def test_pika_login_refused(broker, who):
    creds = pika.PlainCredentials(broker.user, "not-the-password") if who == "wrong-password" \
        else pika.PlainCredentials("no-such-user-xyz", "whatever")
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as e:
        broker.connect(credentials=creds)
    assert "(403) '" + LOGIN_REFUSED.format("PLAIN") + "'" in str(e.value)


# ---------------------------------------------------------------- tune

def test_server_tune_proposal(broker):
    with raw_start(broker) as c:
        m = c.expect("connection.tune", 0)
        assert m.args == [2047, 131072, 60]


@pytest.mark.parametrize("channel_max,frame_max,heartbeat", [
    (2047, 131072, 60),   # exactly the proposal
    (1, 4096, 0),         # the minimum frame_max, one channel, no heartbeat
    (10, 8192, 30),
    (2047, 131072, 600),  # heartbeat larger than proposed is accepted as is
])
def test_tune_ok_accepted(broker, channel_max, frame_max, heartbeat):
    with A.broker_handshake(broker, channel_max=channel_max, frame_max=frame_max,
                            heartbeat=heartbeat) as c:
        c.open_channel(1)


def test_smaller_frame_max_is_honoured_by_server(broker, uniq):
    q = uniq("q")
    body = bytes(range(256)) * 40  # 10240 octets
    with A.broker_handshake(broker, frame_max=4096) as c:
        c.open_channel(1)
        c.send_method(1, "queue.declare", 0, q, False, False, True, True, False, {})
        c.expect("queue.declare-ok", 1)
        c.send(A.publish_frames(1, "", q, body, frame_max=4096))
        c.send_method(1, "basic.get", 0, q, True)
        c.expect("basic.get-ok", 1)
        header = c.read_frame()
        assert header.type == A.FRAME_HEADER
        sizes, got = [], b""
        while len(got) < len(body):
            fr = c.read_frame()
            assert fr.type == A.FRAME_BODY
            sizes.append(len(fr.payload))
            got += fr.payload
        assert got == body
        assert sizes == [4088, 4088, 2064]  # frame_max - 8 octets of payload per frame


# ---------------------------------------------------------------- connection.open

@pytest.mark.parametrize("capabilities", [None, {}], ids=["with-caps", "no-caps"])
def test_open_unknown_vhost(broker, uniq, capabilities):
    vhost = uniq("vhost")
    c = A.start(broker.host, broker.port, capabilities=capabilities,
                user=broker.user, password=broker.password)
    with c:
        c.expect("connection.tune", 0)
        c.send_method(0, "connection.tune-ok", 2047, 131072, 0)
        c.send_method(0, "connection.open", vhost, "", False)
        close = c.read_until_close(reply_close_ok=False)
        assert_close(close, 530, f"NOT_ALLOWED - vhost {vhost} not found", 10, 40)
        # the server waits for close-ok before it drops the socket ...
        assert not c.wait_closed(0.5)
        c.send_method(0, "connection.close-ok")
        # ... and closes it as soon as close-ok arrives
        assert c.wait_closed(2)


def test_open_empty_vhost(broker):
    with raw_tune(broker, 2047, 131072) as c:
        c.send_method(0, "connection.open", "", "", False)
        close = c.read_until_close()
        assert_close(close, 530, "NOT_ALLOWED - vhost  not found", 10, 40)
        assert c.wait_closed(2)


def test_pika_open_unknown_vhost(broker, uniq):
    vhost = uniq("vhost")
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as e:
        broker.connect(virtual_host=vhost)
    assert f"(530) 'NOT_ALLOWED - vhost {vhost} not found'" in str(e.value)


# ---------------------------------------------------------------- silent handshake failures
# These all take ~3 s in RabbitMQ, so they run concurrently, once per module.

def _sent_tune_ok(channel_max, frame_max):
    return lambda broker: raw_tune(broker, channel_max, frame_max)


def _open_before_tune_ok(broker):
    c = raw_start(broker)
    c.expect("connection.tune", 0)
    c.send_method(0, "connection.open", "/", "", False)
    return c


def _channel_open_before_tune_ok(broker):
    c = raw_start(broker)
    c.expect("connection.tune", 0)
    c.send_method(1, "channel.open", "")
    return c


def _login_refused_no_close_ok(broker):
    c = raw_start(broker, password="not-the-password")
    close = c.read_until_close(reply_close_ok=False)
    assert close.reply_code == 403
    return c


SILENT_CASES = {
    # no authentication_failure_close capability: no connection.close for a refused login
    "wrong-password-no-capability": lambda b: raw_start(
        b, capabilities={}, password="not-the-password"),
    "unknown-user-no-capability": lambda b: raw_start(
        b, capabilities={}, user="no-such-user-xyz"),
    "unknown-mechanism": lambda b: raw_start(b, mechanism="FOO", response=b"x"),
    "mechanism-is-case-sensitive": lambda b: raw_start(b, mechanism="plain"),
    "plain-response-without-nul": lambda b: raw_start(b, response=b"guestguest"),
    "amqplain-response-garbage": lambda b: raw_start(
        b, mechanism="AMQPLAIN", response=b"\x05LOGIN"),
    # tune-ok outside the server's limits
    "channel_max-0": _sent_tune_ok(0, 131072),
    "channel_max-2048": _sent_tune_ok(2048, 131072),
    "channel_max-65535": _sent_tune_ok(65535, 131072),
    "frame_max-4095": _sent_tune_ok(2047, 4095),
    "frame_max-0": _sent_tune_ok(2047, 0),
    "frame_max-131073": _sent_tune_ok(2047, 131073),
    "frame_max-4294967295": _sent_tune_ok(2047, 2 ** 32 - 1),
    # methods out of order
    "connection.open-before-tune-ok": _open_before_tune_ok,
    "channel.open-before-tune-ok": _channel_open_before_tune_ok,
    # after connection.close 403 the server waits for close-ok only that long
    "login-refused-close-ok-never-sent": _login_refused_no_close_ok,
}


def _run_silent_case(broker, name):
    c = SILENT_CASES[name](broker)
    t0 = time.monotonic()
    try:
        frames = c.frames_until_closed(timeout=10)
    except TimeoutError:
        frames = None
    finally:
        c.close()
    return frames, time.monotonic() - t0


@pytest.fixture(scope="module")
def silent_results(broker):
    with concurrent.futures.ThreadPoolExecutor(len(SILENT_CASES)) as pool:
        futs = {n: pool.submit(_run_silent_case, broker, n) for n in SILENT_CASES}
        yield lambda name: futs[name].result(timeout=30)


@pytest.mark.parametrize("case", list(SILENT_CASES))
def test_handshake_failure_is_silent_delayed_close(silent_results, case):
    frames, elapsed = silent_results(case)
    assert frames is not None, "connection still open after 10 s"
    assert frames == [], f"expected no frame before the close, got {frames}"
    assert SILENT_CLOSE_MIN <= elapsed <= SILENT_CLOSE_MAX, elapsed


# ---------------------------------------------------------------- connection.close

def test_client_close_gets_close_ok(broker):
    with A.broker_handshake(broker) as c:
        c.open_channel(1)
        c.open_channel(2)
        c.send_method(0, "connection.close", 200, "Normal shutdown", 0, 0)
        m = c.read_method()
        assert (m.channel, m.name, m.args) == (0, "connection.close-ok", [])
        # RabbitMQ leaves closing the socket to the client after close-ok
        assert not c.wait_closed(0.5)


def test_client_close_with_error_code_gets_close_ok(broker):
    with A.broker_handshake(broker) as c:
        c.send_method(0, "connection.close", 320, "client says so", 60, 40)
        c.expect("connection.close-ok", 0)


def test_client_close_discards_later_methods(broker):
    with A.broker_handshake(broker) as c:
        c.open_channel(1)
        c.send_method(0, "connection.close", 200, "", 0, 0)
        c.send_method(1, "basic.qos", 0, 1, False)  # must be ignored
        c.expect("connection.close-ok", 0)
        assert c.pending_frames() == []


def test_unsolicited_close_ok(broker):
    with A.broker_handshake(broker) as c:
        c.send_method(0, "connection.close-ok")
        close = c.read_until_close()
        assert_close(close, 504, "CHANNEL_ERROR - unexpected method in connection state running",
                     10, 51)
        assert c.wait_closed(2)


def test_server_close_then_client_methods_discarded_until_close_ok(broker):
    with A.broker_handshake(broker) as c:
        c.open_channel(1)
        c.send_method(1, "basic.qos", 7, 0, False)
        close = c.read_until_close(reply_close_ok=False)
        assert_close(close, 540, "NOT_IMPLEMENTED - prefetch_size!=0 (7)", 60, 10)
        c.send_method(1, "basic.qos", 0, 1, False)
        c.send_method(2, "channel.open", "")
        c.send(A.heartbeat_frame())
        c.send_method(0, "connection.close-ok")
        assert c.frames_until_closed(timeout=2) == []


def test_simultaneous_close(broker):
    with A.broker_handshake(broker) as c:
        c.open_channel(1)
        c.send_method(1, "basic.qos", 7, 0, False)
        c.read_until_close(reply_close_ok=False)
        c.send_method(0, "connection.close", 200, "", 0, 0)
        c.expect("connection.close-ok", 0)


def test_pika_close_roundtrip(broker):
    conn = broker.connect()
    conn.channel()
    conn.close()
    assert conn.is_closed
