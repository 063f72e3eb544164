"""Message properties and bodies arrive unchanged; the few properties RabbitMQ
validates on publish (user_id, expiration, delivery_mode) are refused exactly as it does."""

import datetime
import decimal
import struct

import pika
import pytest
from pika import frame, spec

from helpers import BASIC_PUBLISH, RawClient, wait_channel_closed, wait_until

ALL_PROPS = dict(
    content_type="application/json; charset=utf-8",
    content_encoding="gzip",
    headers={
        "str": "value",
        "unicode": "ünïcødé ✓ 鍵",
        "empty": "",
        "int": 42,
        "neg": -7,
        "big": 1 << 40,
        "min64": -(1 << 63),
        "true": True,
        "false": False,
        "none": None,
        "bytes": b"\x00\x01\xfe\xff",
        "decimal": decimal.Decimal("3.14"),
        "decimal0": decimal.Decimal("7"),
        "ts": datetime.datetime(2024, 2, 29, 12, 34, 56),
        "list": [1, "two", None, True, [3, [4]], {"k": "v"}],
        "empty_list": [],
        "table": {"a": 1, "nested": {"deeper": {"x": b"y", "l": [1, 2]}}},
        "empty_table": {},
    },
    delivery_mode=2,
    priority=9,
    correlation_id="corr-123",
    reply_to="reply.queue",
    expiration="3600000",
    message_id="msg-456",
    timestamp=1700000000,
    type="order.created",
    user_id="guest",
    app_id="interop-tests",
    cluster_id="cluster-x",
)

PROP_NAMES = list(ALL_PROPS)


def expected_headers():
    h = dict(ALL_PROPS["headers"])
    # pika decodes timestamps as aware UTC datetimes
    h["ts"] = h["ts"].replace(tzinfo=datetime.timezone.utc)
    return h


def check_props(p, props=ALL_PROPS):
    for name in PROP_NAMES:
        want = props[name]
        if name == "headers":
            want = expected_headers()
        assert getattr(p, name) == want, name


def test_all_properties_via_get(ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"body", pika.BasicProperties(**ALL_PROPS))
    _m, p, b = ch.basic_get(q, auto_ack=True)
    assert b == b"body"
    check_props(p)


def test_all_properties_via_consume(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append((p, b)), auto_ack=True)
    ch.basic_publish("", q, b"body", pika.BasicProperties(**ALL_PROPS))
    wait_until(conn, lambda: got, what="delivery")
    p, b = got[0]
    assert b == b"body"
    check_props(p)


def test_no_properties(ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"plain")
    _m, p, _b = ch.basic_get(q, auto_ack=True)
    for name in PROP_NAMES:
        assert getattr(p, name) is None, name


@pytest.mark.parametrize("mode", [1, 2])
def test_delivery_mode(ch, mode):
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"m", pika.BasicProperties(delivery_mode=mode))
    assert ch.basic_get(q, auto_ack=True)[1].delivery_mode == mode


@pytest.mark.parametrize("prio", [0, 1, 10, 255])
def test_priority_passes_through_on_plain_queue(ch, prio):
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"m", pika.BasicProperties(priority=prio))
    assert ch.basic_get(q, auto_ack=True)[1].priority == prio


def _sstr(s):
    return bytes([len(s)]) + s


def _field(key, tag, value):
    return _sstr(key) + tag + value


def _header_frame(ch, body_size, flags, props_bytes):
    payload = struct.pack(">HHQH", 60, 0, body_size, flags) + props_bytes
    return struct.pack(">BHI", 2, ch, len(payload)) + payload + b"\xce"


def test_header_table_bytes_pass_through_unchanged(broker):
    """Every field type RabbitMQ accepts, in a deliberately unsorted order: the
    content header frame the consumer gets is byte-for-byte the one published."""
    array = b"I" + struct.pack(">i", 1) + b"V" + b"t\x00" + b"S" + struct.pack(">I", 1) + b"z"
    inner = _field(b"n", b"b", b"\x01") + _field(b"v", b"V", b"")
    fields = b"".join([
        _field(b"zeta", b"S", struct.pack(">I", 3) + b"abc"),
        _field(b"bool", b"t", b"\x01"),
        _field(b"i8", b"b", struct.pack(">b", -5)),
        _field(b"u8", b"B", struct.pack(">B", 250)),
        _field(b"i16", b"s", struct.pack(">h", -300)),
        _field(b"u16", b"u", struct.pack(">H", 65000)),
        _field(b"i32", b"I", struct.pack(">i", -70000)),
        _field(b"u32", b"i", struct.pack(">I", 4000000000)),
        _field(b"i64", b"l", struct.pack(">q", -(1 << 40))),
        _field(b"f32", b"f", struct.pack(">f", 1.5)),
        _field(b"f64", b"d", struct.pack(">d", 2.25)),
        _field(b"dec", b"D", struct.pack(">Bi", 2, 12345)),
        _field(b"arr", b"A", struct.pack(">I", len(array)) + array),
        _field(b"ts", b"T", struct.pack(">Q", 1700000000)),
        _field(b"tbl", b"F", struct.pack(">I", len(inner)) + inner),
        _field(b"void", b"V", b""),
        _field(b"bin", b"x", struct.pack(">I", 2) + b"\x00\xff"),
        _field(b"alpha", b"I", struct.pack(">i", 1)),
    ])
    table = struct.pack(">I", len(fields)) + fields
    # content-type + headers + delivery-mode + message-id
    flags = 0x8000 | 0x2000 | 0x1000 | 0x0080
    props = _sstr(b"text/plain") + table + b"\x02" + _sstr(b"id-1")
    raw = RawClient(broker)
    try:
        q = raw.rpc(spec.Queue.Declare(queue="", exclusive=True), spec.Queue.DeclareOk).queue
        hf = _header_frame(1, 3, flags, props)
        raw.sock.sendall(frame.Method(1, spec.Basic.Publish(exchange="", routing_key=q)).marshal()
                         + hf + frame.Body(1, b"abc").marshal())
        raw.send(spec.Basic.Get(queue=q, no_ack=True))
        raw.expect(spec.Basic.GetOk)
        h = raw.next_frame()
        assert isinstance(h, frame.Header)
        assert raw.last_raw == hf
        assert raw.next_frame().fragment == b"abc"
    finally:
        raw.close()


# ---------------------------------------------------------------- validated properties


def test_user_id_matching_connection_user(broker, ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"m", pika.BasicProperties(user_id=broker.user))
    assert ch.basic_get(q, auto_ack=True)[1].user_id == broker.user


@pytest.mark.parametrize("user_id", ["bob", "", "GUEST"])
def test_user_id_mismatch(broker, conn, user_id):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"m", pika.BasicProperties(user_id=user_id))
    text = (f"PRECONDITION_FAILED - user_id property set to '{user_id}' but authenticated "
            f"user was '{broker.user}'")
    wait_channel_closed(conn, ch, 406, text, BASIC_PUBLISH)
    assert conn.is_open
    # nothing was enqueued
    other = conn.channel()
    assert other.basic_get(q)[0] is None


@pytest.mark.parametrize(
    "expiration,detail",
    [
        ("abc", "no_integer"),
        ("", "no_integer"),
        ("-1", "{value_negative,-1}"),
        ("1.5", '{leftover_string,".5"}'),
        ("99999999999999999", "{value_too_large,99999999999999999}"),
    ],
    ids=["letters", "empty", "negative", "fraction", "too-large"],
)
def test_invalid_expiration(conn, expiration, detail):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"m", pika.BasicProperties(expiration=expiration))
    wait_channel_closed(conn, ch, 406,
                        f"PRECONDITION_FAILED - invalid expiration '{expiration}': {detail}",
                        BASIC_PUBLISH)


def test_expiration_zero_expires_at_once(ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"gone", pika.BasicProperties(expiration="0"))
    ch.basic_publish("", q, b"kept")
    m, p, b = ch.basic_get(q, auto_ack=True)
    assert (b, p.expiration) == (b"kept", None)


def test_invalid_delivery_mode(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"m", pika.BasicProperties(delivery_mode=3))
    wait_channel_closed(conn, ch, 406, "PRECONDITION_FAILED - invalid message: {delivery_mode_unknown,3}",
                        BASIC_PUBLISH)


# ---------------------------------------------------------------- bodies


def _frame_max(conn):
    """The negotiated frame_max (pika keeps frame_max - 8 as its body chunk size)."""
    return conn._impl._body_max_length + 8


@pytest.mark.parametrize("kind", ["empty", "one", "frame-8", "frame-7", "1MB", "nul"])
def test_bodies_arrive_intact(conn, kind):
    fmax = _frame_max(conn)
    body = {
        "empty": b"",
        "one": b"\x00",
        "frame-8": bytes(i % 256 for i in range(fmax - 8)),
        "frame-7": bytes(i % 253 for i in range(fmax - 7)),
        "1MB": bytes((i * 7) % 256 for i in range(1 << 20)),
        "nul": b"\x00" * 1000 + b"a\x00b\x00\xce\xff" + b"\x00" * 1000,
    }[kind]
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, body)
    _m, _p, got = ch.basic_get(q, auto_ack=True)
    assert got == body
    # and through a consumer
    ch.basic_publish("", q, body)
    out = []
    ch.basic_consume(q, lambda c, m, p, b: out.append(b), auto_ack=True)
    wait_until(conn, lambda: out, what="delivery")
    assert out[0] == body


@pytest.mark.parametrize(
    "size,frames",
    [(0, 0), (1, 1), (4096 - 8, 1), (4096 - 7, 2), (3 * (4096 - 8), 3), (100_000, 25)],
)
def test_broker_frames_bodies_by_frame_max(broker, size, frames):
    """With frame_max 4096 the broker sends body frames of at most 4088 bytes, and none
    at all for an empty body."""
    raw = RawClient(broker, frame_max=4096)
    try:
        q = raw.rpc(spec.Queue.Declare(queue="", exclusive=True), spec.Queue.DeclareOk).queue
        body = bytes(i % 256 for i in range(size))
        raw.publish("", q, body)
        raw.send(spec.Basic.Get(queue=q, no_ack=True))
        raw.expect(spec.Basic.GetOk)
        h = raw.next_frame()
        assert isinstance(h, frame.Header) and h.body_size == size
        got, n = b"", 0
        while len(got) < size:
            bf = raw.next_frame()
            assert isinstance(bf, frame.Body), bf
            assert len(bf.fragment) <= 4096 - 8
            got += bf.fragment
            n += 1
        assert (got, n) == (body, frames)
        # no stray (empty) body frame follows: the next frame answers the next request
        raw.rpc(spec.Queue.Declare(queue=q, passive=True), spec.Queue.DeclareOk)
    finally:
        raw.close()


def test_publish_split_into_many_small_frames(broker):
    raw = RawClient(broker, frame_max=4096)
    try:
        q = raw.rpc(spec.Queue.Declare(queue="", exclusive=True), spec.Queue.DeclareOk).queue
        body = b"".join(b"%06d" % i for i in range(20000))  # 120 kB in 30 frames
        raw.publish("", q, body)
        raw.send(spec.Basic.Get(queue=q, no_ack=True))
        _c, m, _p, got = raw.next_event()
        assert isinstance(m, spec.Basic.GetOk) and got == body
    finally:
        raw.close()
