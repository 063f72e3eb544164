"""Framing and protocol errors, sent byte by byte over raw sockets.

Every case checks the reply (code, exact text, class-id, method-id), that the offending
connection is closed once close-ok is sent, and that an independent connection opened
before the bad one still works (publish + get round trip).

Recorded against RabbitMQ 3.10.8. Texts embed Erlang terms: binaries print as
`<<1,2,3>>` (decimal octets) or `<<"abc">>` (when all octets are printable), and a
reply-text longer than 255 octets is cut to its first 252 octets plus "...".
Unknown class/method ids crash RabbitMQ's connection process: the socket is closed at
once without any connection.close.
"""

import concurrent.futures
import struct
import time

import pytest

import amqp_raw as A

F = A.frame


@pytest.fixture
def witness(broker, uniq):
    """A healthy connection opened before the misbehaving one; checked after it."""
    conn = broker.connect()
    ch = conn.channel()
    q = uniq("witness")
    ch.queue_declare(q, exclusive=True)
    yield conn
    ch.basic_publish("", q, b"still works")
    _m, _p, body = ch.basic_get(q, auto_ack=True)
    assert body == b"still works"
    conn.close()


def bad_connection(broker, **kw):
    c = A.broker_handshake(broker, **kw)
    c.open_channel(1)
    return c


def expect_connection_error(c, code, text, class_id, method_id):
    close = c.read_until_close(reply_close_ok=False)
    assert (close.kind, close.channel) == ("connection", 0)
    assert (close.reply_code, close.reply_text, close.class_id, close.method_id) == (
        code, text, class_id, method_id)
    c.send_method(0, "connection.close-ok")
    assert c.wait_closed(2), "connection still open after close-ok"


def publish_start(channel=1, routing_key="nowhere"):
    return A.method_frame(channel, "basic.publish", 0, "", routing_key, False, False)


# ---------------------------------------------------------------- unknown methods

@pytest.mark.parametrize("channel,class_id,method_id", [
    (1, 99, 10),   # unknown class
    (1, 60, 99),   # unknown method of a known class
    (0, 10, 99),   # unknown connection method
    (1, 0, 0),
])
def test_unknown_class_or_method_drops_connection(broker, witness, channel, class_id,
                                                  method_id):
    # A deliberate difference: RabbitMQ's reader crashes on an unknown class/method and
    # drops the socket without a word; Warren says why, with the spec's 540
    # NOT_IMPLEMENTED, then closes. Either way the connection goes, promptly, and every
    # other connection keeps working (the witness).
    with bad_connection(broker) as c:
        c.send(F(A.FRAME_METHOD, channel, struct.pack(">HH", class_id, method_id) + b"\x00" * 4))
        t0 = time.monotonic()
        if broker.is_reference:
            assert c.frames_until_closed(timeout=5) == []  # no connection.close at all
            assert time.monotonic() - t0 < 2
        else:
            expect_connection_error(
                c, 540, f"NOT_IMPLEMENTED - unknown method: class {class_id}, method {method_id}",
                class_id, method_id)


# ---------------------------------------------------------------- malformed methods

@pytest.mark.parametrize("payload,text,ids", [
    # truncated arguments
    (struct.pack(">HH", 60, 10) + b"\x00\x00", "FRAME_ERROR - cannot decode <<0,0>>", (60, 10)),
    (struct.pack(">HH", 60, 10) + b"\x00", "FRAME_ERROR - cannot decode <<0>>", (60, 10)),
    (struct.pack(">HH", 50, 10) + b"\x00\x00\x10abc",
     'FRAME_ERROR - cannot decode <<0,0,16,97,98,99>>', (50, 10)),
    # trailing garbage after complete arguments
    (A.method_payload("basic.qos", 0, 10, False) + b"\xff\xff",
     "FRAME_ERROR - cannot decode <<0,0,0,0,0,10,0,255,255>>", (60, 10)),
    # not even a class-id and method-id
    (b"", "FRAME_ERROR - type 1, all octets = <<>>: unknown_frame", (0, 0)),
    (b"\x00\x3c", "FRAME_ERROR - type 1, all octets = <<0,60>>: unknown_frame", (0, 0)),
], ids=["qos-2-octets", "qos-1-octet", "queue.declare-short", "qos-trailing",
        "empty-payload", "2-octet-payload"])
def test_malformed_method_arguments(broker, witness, payload, text, ids):
    with bad_connection(broker) as c:
        c.send(F(A.FRAME_METHOD, 1, payload))
        expect_connection_error(c, 501, text, *ids)


def test_long_reply_text_is_truncated_to_255_octets(broker, witness):
    args = A.encode_args("lhb", [0, 10, False]) + bytes([7]) * 300
    full = "FRAME_ERROR - cannot decode <<" + ",".join(str(b) for b in args) + ">>"
    with bad_connection(broker) as c:
        c.send(F(A.FRAME_METHOD, 1, struct.pack(">HH", 60, 10) + args))
        expect_connection_error(c, 501, full[:252] + "...", 60, 10)


# ---------------------------------------------------------------- framing
# A broken frame leaves the byte stream unparseable: RabbitMQ sends connection.close,
# reads nothing more (close-ok is not needed and not seen) and drops the socket ~3 s
# later. The cases run concurrently, once per module, to keep the suite fast.

def _bad_frame_end(ftype, channel, payload, end):
    return lambda c: c.send(F(ftype, channel, payload, end=end))


def _too_large(ftype):
    def send(c):
        if ftype == A.FRAME_BODY:
            c.send(publish_start() + A.header_frame(1, 10000))
        c.send(F(ftype, 1, b"\x00" * 4097))
    return send


FATAL_CASES = {
    # name: (handshake kwargs, action, expected reply text, send close-ok?)
    "bad-frame-end-method": ({}, _bad_frame_end(A.FRAME_METHOD, 1,
                                                A.method_payload("channel.open", ""), 0x00),
        "FRAME_ERROR - type 1, all octets = <<0,20,0,10,0>>: {invalid_frame_end_marker,0}", True),
    "bad-frame-end-method-ch0": ({}, _bad_frame_end(A.FRAME_METHOD, 0,
                                                    A.method_payload("channel.open", ""), 0x41),
        "FRAME_ERROR - type 1, all octets = <<0,20,0,10,0>>: {invalid_frame_end_marker,65}", True),
    "bad-frame-end-heartbeat": ({}, _bad_frame_end(A.FRAME_HEARTBEAT, 0, b"", 0xCD),
        "FRAME_ERROR - type 8, all octets = <<>>: {invalid_frame_end_marker,205}", True),
    "bad-frame-end-no-close-ok": ({}, _bad_frame_end(A.FRAME_METHOD, 1,
                                                     A.method_payload("channel.open", ""), 0x00),
        "FRAME_ERROR - type 1, all octets = <<0,20,0,10,0>>: {invalid_frame_end_marker,0}", False),
    # RabbitMQ tolerates payloads up to frame_max octets (8 more than the spec allows)
    # and rejects larger ones from the frame header alone, before reading the payload.
    "method-frame-too-large": ({"frame_max": 4096}, _too_large(A.FRAME_METHOD),
        "FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,4097,4088}", True),
    "body-frame-too-large": ({"frame_max": 4096}, _too_large(A.FRAME_BODY),
        "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,4097,4088}", True),
    "frame-size-field-huge": ({}, lambda c: c.send(struct.pack(">BHI", 1, 1, 200000) + b"abc"),
        "FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,200000,131064}", True),
    # "AMQP\0\0\9\1" parsed as a frame: type 'A', channel 'MQ', size 0x50000009
    "protocol-header-after-handshake": ({}, lambda c: c.send(A.PROTOCOL_HEADER),
        "FRAME_ERROR - type 65, all octets = <<>>: {frame_too_large,1342177289,131064}", True),
}


def _run_fatal_case(broker, name):
    kw, action, _text, close_ok = FATAL_CASES[name]
    with bad_connection(broker, **kw) as c:
        action(c)
        close = c.read_until_close(reply_close_ok=close_ok)
        t0 = time.monotonic()
        closed = c.wait_closed(10)
        return close, closed, time.monotonic() - t0


@pytest.fixture(scope="module")
def fatal_results(broker):
    witness = broker.connect()  # opened before every bad connection
    try:
        with concurrent.futures.ThreadPoolExecutor(len(FATAL_CASES)) as pool:
            futs = {n: pool.submit(_run_fatal_case, broker, n) for n in FATAL_CASES}
            yield witness, lambda name: futs[name].result(timeout=30)
    finally:
        witness.close()


@pytest.mark.parametrize("case", list(FATAL_CASES))
def test_fatal_frame_error(fatal_results, uniq, case):
    witness, result = fatal_results
    close, closed, elapsed = result(case)
    assert (close.kind, close.channel, close.reply_code, close.reply_text, close.class_id,
            close.method_id) == ("connection", 0, 501, FATAL_CASES[case][2], 0, 0)
    assert closed, "connection still open 10 s after connection.close"
    assert 2.0 <= elapsed <= 6.0, elapsed  # RabbitMQ: 3 s, with or without close-ok
    ch = witness.channel()
    q = uniq("witness")
    ch.queue_declare(q, exclusive=True)
    ch.basic_publish("", q, b"still works")
    assert ch.basic_get(q, auto_ack=True)[2] == b"still works"
    ch.close()


@pytest.mark.parametrize("ftype,payload,text", [
    (9, b"\x01\x02\x03", "FRAME_ERROR - type 9, all octets = <<1,2,3>>: unknown_frame"),
    (0, b"abc", 'FRAME_ERROR - type 0, all octets = <<"abc">>: unknown_frame'),
    (A.FRAME_HEARTBEAT, b"xx", 'FRAME_ERROR - type 8, all octets = <<"xx">>: unknown_frame'),
], ids=["type-9", "type-0", "heartbeat-with-payload"])
def test_unknown_frame_type_or_shape(broker, witness, ftype, payload, text):
    with bad_connection(broker) as c:
        c.send(F(ftype, 0 if ftype == A.FRAME_HEARTBEAT else 1, payload))
        expect_connection_error(c, 501, text, 0, 0)


@pytest.mark.parametrize("payload_size", [4088, 4096])
def test_body_frame_at_frame_max_accepted(broker, uniq, payload_size):
    q = uniq("q")
    body = b"z" * (payload_size + 100)
    with bad_connection(broker, frame_max=4096) as c:
        c.send_method(1, "queue.declare", 0, q, False, False, True, True, False, {})
        c.expect("queue.declare-ok", 1)
        c.send(publish_start(routing_key=q) + A.header_frame(1, len(body))
               + A.body_frame(1, body[:payload_size]) + A.body_frame(1, body[payload_size:]))
        c.send_method(1, "basic.get", 0, q, True)
        c.expect("basic.get-ok", 1)
        assert c.read_frame().type == A.FRAME_HEADER
        got = b""
        while len(got) < len(body):
            got += c.read_frame().payload
        assert got == body


# ---------------------------------------------------------------- content framing

@pytest.mark.parametrize("frames", [
    A.header_frame(1, 3),
    A.body_frame(1, b"abc"),
], ids=["header", "body"])
def test_content_without_publish(broker, witness, frames):
    with bad_connection(broker) as c:
        c.send(frames)
        expect_connection_error(
            c, 505, "UNEXPECTED_FRAME - expected method frame, got non method frame instead", 0, 0)


def test_method_while_content_header_expected(broker, witness):
    with bad_connection(broker) as c:
        c.send(publish_start() + A.method_frame(1, "basic.qos", 0, 10, False))
        expect_connection_error(
            c, 505, "UNEXPECTED_FRAME - expected content header for class 60, "
                    "got non content header frame instead", 60, 40)


def test_body_while_content_header_expected(broker, witness):
    with bad_connection(broker) as c:
        c.send(publish_start() + A.body_frame(1, b"abc"))
        expect_connection_error(
            c, 505, "UNEXPECTED_FRAME - expected content header for class 60, "
                    "got non content header frame instead", 60, 40)


def test_content_header_for_wrong_class(broker, witness):
    with bad_connection(broker) as c:
        c.send(publish_start() + A.header_frame(1, 3, class_id=50))
        expect_connection_error(
            c, 505, "UNEXPECTED_FRAME - expected content header for class 60, "
                    "got one for class 50 instead", 60, 40)


def test_method_while_content_body_expected(broker, witness):
    with bad_connection(broker) as c:
        c.send(publish_start() + A.header_frame(1, 10) + A.body_frame(1, b"abc")
               + A.method_frame(1, "basic.qos", 0, 10, False))
        expect_connection_error(
            c, 505, "UNEXPECTED_FRAME - expected content body, "
                    "got non content body frame instead", 60, 40)


def test_body_longer_than_announced(broker, witness, uniq):
    # RabbitMQ does not notice the overrun itself: the channel keeps expecting body
    # frames, the message is never delivered, and the next method is the error.
    q = uniq("q")
    with bad_connection(broker) as c:
        c.send_method(1, "queue.declare", 0, q, False, False, True, True, False, {})
        c.expect("queue.declare-ok", 1)
        c.send(publish_start(routing_key=q) + A.header_frame(1, 3) + A.body_frame(1, b"abcdef")
               + A.body_frame(1, b"more"))
        c.open_channel(2)
        c.send_method(2, "basic.get", 0, q, True)
        c.expect("basic.get-empty", 2)
        c.send_method(1, "basic.qos", 0, 10, False)
        expect_connection_error(
            c, 505, "UNEXPECTED_FRAME - expected content body, "
                    "got non content body frame instead", 60, 40)


@pytest.mark.parametrize("frame,text", [
    (A.header_frame(0, 3),
     "UNEXPECTED_FRAME - type 2, all octets = <<0,60,0,0,0,0,0,0,0,0,0,3,0,0>>"),
    (A.body_frame(0, b"\x01\x02"), "UNEXPECTED_FRAME - type 3, all octets = <<1,2>>"),
    (A.heartbeat_frame(1), "UNEXPECTED_FRAME - type 8, all octets = <<>>"),
], ids=["header-on-ch0", "body-on-ch0", "heartbeat-on-ch1"])
def test_frame_on_wrong_channel(broker, witness, frame, text):
    with bad_connection(broker) as c:
        c.send(frame)
        expect_connection_error(c, 505, text, 0, 0)


def test_connection_method_on_nonzero_channel(broker, witness):
    with bad_connection(broker) as c:
        c.send_method(1, "connection.tune-ok", 2047, 131072, 0)
        expect_connection_error(c, 503, "COMMAND_INVALID - unimplemented method", 10, 31)


# ---------------------------------------------------------------- unsupported arguments

@pytest.mark.parametrize("prefetch_size,global_", [(10, False), (1, True), (2 ** 32 - 1, False)])
def test_basic_qos_prefetch_size_not_implemented(broker, witness, prefetch_size, global_):
    with bad_connection(broker) as c:
        c.send_method(1, "basic.qos", prefetch_size, 0, global_)
        expect_connection_error(
            c, 540, f"NOT_IMPLEMENTED - prefetch_size!=0 ({prefetch_size})", 60, 10)
