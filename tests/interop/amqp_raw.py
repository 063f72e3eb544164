"""Minimal AMQP 0-9-1 over a raw socket, for connection-level interop tests.

Not a client: it builds and parses frames byte by byte so that tests can send exactly
what they want (including malformed frames) and see exactly what the broker answers.

Wire format (AMQP 0-9-1 section 4.2.3):
    frame   = type:octet channel:short size:long payload:size-octets frame-end(0xCE)
    method  = class-id:short method-id:short arguments
    header  = class-id:short weight:short(0) body-size:longlong flags:short properties
    body    = the raw content octets
    heartbeat = empty payload on channel 0

Method argument signatures below follow the RabbitMQ flavour of the spec
(amqp0-9-1.stripped.extended.xml, plus connection.blocked/unblocked/update-secret which
RabbitMQ adds). Signature letters: o octet, h short (u16), l long (u32), L longlong (u64),
s shortstr, S longstr, b bit (consecutive bits share one octet), F field table,
T timestamp (u64).
"""

import socket
import struct
import time
from collections import namedtuple
from decimal import Decimal

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
FRAME_MIN_SIZE = 4096
# frame overhead: 7-octet header + frame-end octet
FRAME_OVERHEAD = 8

DEFAULT_CAPABILITIES = {
    "authentication_failure_close": True,
    "basic.nack": True,
    "connection.blocked": True,
    "consumer_cancel_notify": True,
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "per_consumer_qos": True,
}

# (class-id, method-id) -> (name, argument signature)
METHODS = {
    (10, 10): ("connection.start", "ooFSS"),
    (10, 11): ("connection.start-ok", "FsSs"),
    (10, 20): ("connection.secure", "S"),
    (10, 21): ("connection.secure-ok", "S"),
    (10, 30): ("connection.tune", "hlh"),
    (10, 31): ("connection.tune-ok", "hlh"),
    (10, 40): ("connection.open", "ssb"),
    (10, 41): ("connection.open-ok", "s"),
    (10, 50): ("connection.close", "hshh"),
    (10, 51): ("connection.close-ok", ""),
    (10, 60): ("connection.blocked", "s"),
    (10, 61): ("connection.unblocked", ""),
    (10, 70): ("connection.update-secret", "Ss"),
    (10, 71): ("connection.update-secret-ok", ""),
    (20, 10): ("channel.open", "s"),
    (20, 11): ("channel.open-ok", "S"),
    (20, 20): ("channel.flow", "b"),
    (20, 21): ("channel.flow-ok", "b"),
    (20, 40): ("channel.close", "hshh"),
    (20, 41): ("channel.close-ok", ""),
    (40, 10): ("exchange.declare", "hssbbbbbF"),
    (40, 11): ("exchange.declare-ok", ""),
    (40, 20): ("exchange.delete", "hsbb"),
    (40, 21): ("exchange.delete-ok", ""),
    (40, 30): ("exchange.bind", "hsssbF"),
    (40, 31): ("exchange.bind-ok", ""),
    (40, 40): ("exchange.unbind", "hsssbF"),
    (40, 51): ("exchange.unbind-ok", ""),
    (50, 10): ("queue.declare", "hsbbbbbF"),
    (50, 11): ("queue.declare-ok", "sll"),
    (50, 20): ("queue.bind", "hsssbF"),
    (50, 21): ("queue.bind-ok", ""),
    (50, 30): ("queue.purge", "hsb"),
    (50, 31): ("queue.purge-ok", "l"),
    (50, 40): ("queue.delete", "hsbbb"),
    (50, 41): ("queue.delete-ok", "l"),
    (50, 50): ("queue.unbind", "hsssF"),
    (50, 51): ("queue.unbind-ok", ""),
    (60, 10): ("basic.qos", "lhb"),
    (60, 11): ("basic.qos-ok", ""),
    (60, 20): ("basic.consume", "hssbbbbF"),
    (60, 21): ("basic.consume-ok", "s"),
    (60, 30): ("basic.cancel", "sb"),
    (60, 31): ("basic.cancel-ok", "s"),
    (60, 40): ("basic.publish", "hssbb"),
    (60, 50): ("basic.return", "hsss"),
    (60, 60): ("basic.deliver", "sLbss"),
    (60, 70): ("basic.get", "hsb"),
    (60, 71): ("basic.get-ok", "Lbssl"),
    (60, 72): ("basic.get-empty", "s"),
    (60, 80): ("basic.ack", "Lb"),
    (60, 90): ("basic.reject", "Lb"),
    (60, 100): ("basic.recover-async", "b"),
    (60, 110): ("basic.recover", "b"),
    (60, 111): ("basic.recover-ok", ""),
    (60, 120): ("basic.nack", "Lbb"),
    (85, 10): ("confirm.select", "b"),
    (85, 11): ("confirm.select-ok", ""),
    (90, 10): ("tx.select", ""),
    (90, 11): ("tx.select-ok", ""),
    (90, 20): ("tx.commit", ""),
    (90, 21): ("tx.commit-ok", ""),
    (90, 30): ("tx.rollback", ""),
    (90, 31): ("tx.rollback-ok", ""),
}
METHOD_IDS = {name: ids for ids, (name, _sig) in METHODS.items()}

# basic content properties, in flag order (bit 15 first)
BASIC_PROPERTIES = (
    ("content_type", "s"), ("content_encoding", "s"), ("headers", "F"),
    ("delivery_mode", "o"), ("priority", "o"), ("correlation_id", "s"),
    ("reply_to", "s"), ("expiration", "s"), ("message_id", "s"), ("timestamp", "T"),
    ("type", "s"), ("user_id", "s"), ("app_id", "s"), ("cluster_id", "s"),
)


# ---------------------------------------------------------------- encoding

def shortstr(v):
    if isinstance(v, str):
        v = v.encode()
    if len(v) > 255:
        raise ValueError("shortstr longer than 255 octets")
    return struct.pack(">B", len(v)) + v


def longstr(v):
    if isinstance(v, str):
        v = v.encode()
    return struct.pack(">I", len(v)) + v


def field_value(v):
    """One typed field value (RabbitMQ's field-type letters)."""
    if isinstance(v, bool):
        return b"t" + struct.pack(">B", int(v))
    if isinstance(v, int):
        if -(2 ** 31) <= v < 2 ** 31:
            return b"I" + struct.pack(">i", v)
        return b"l" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"d" + struct.pack(">d", v)
    if isinstance(v, Decimal):
        sign, digits, exp = v.as_tuple()
        n = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
        return b"D" + struct.pack(">Bi", -exp, n)
    if isinstance(v, (str, bytes)):
        return b"S" + longstr(v)
    if isinstance(v, dict):
        return b"F" + table(v)
    if isinstance(v, (list, tuple)):
        body = b"".join(field_value(x) for x in v)
        return b"A" + struct.pack(">I", len(body)) + body
    if v is None:
        return b"V"
    raise TypeError(f"cannot encode {v!r} as a field value")


def table_body(d):
    """Field table contents without the 4-octet length (AMQPLAIN's response uses this)."""
    return b"".join(shortstr(k) + field_value(v) for k, v in d.items())


def table(d):
    body = table_body(d or {})
    return struct.pack(">I", len(body)) + body


def encode_args(sig, args):
    if len(sig) != len(args):
        raise ValueError(f"signature {sig!r} wants {len(sig)} arguments, got {len(args)}")
    out = bytearray()
    bits, nbits = 0, 0
    for t, v in zip(sig, args):
        if t == "b":
            if nbits == 8:
                out.append(bits)
                bits, nbits = 0, 0
            bits |= (1 << nbits) if v else 0
            nbits += 1
            continue
        if nbits:
            out.append(bits)
            bits, nbits = 0, 0
        if t == "o":
            out += struct.pack(">B", v)
        elif t == "h":
            out += struct.pack(">H", v)
        elif t == "l":
            out += struct.pack(">I", v)
        elif t in "LT":
            out += struct.pack(">Q", v)
        elif t == "s":
            out += shortstr(v)
        elif t == "S":
            out += longstr(v)
        elif t == "F":
            out += table(v)
        else:
            raise ValueError(f"bad signature letter {t!r}")
    if nbits:
        out.append(bits)
    return bytes(out)


def method_payload(name, *args):
    class_id, method_id = METHOD_IDS[name]
    return struct.pack(">HH", class_id, method_id) + encode_args(METHODS[(class_id, method_id)][1], args)


def frame(ftype, channel, payload, end=FRAME_END):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([end])


def method_frame(channel, name, *args):
    return frame(FRAME_METHOD, channel, method_payload(name, *args))


def header_frame(channel, body_size, class_id=60, properties=None):
    props = properties or {}
    flags, out = 0, b""
    for i, (key, t) in enumerate(BASIC_PROPERTIES):
        if key in props:
            flags |= 1 << (15 - i)
            out += encode_args(t, [props[key]])
    return frame(FRAME_HEADER, channel, struct.pack(">HHQH", class_id, 0, body_size, flags) + out)


def body_frame(channel, data):
    return frame(FRAME_BODY, channel, data)


def heartbeat_frame(channel=0):
    return frame(FRAME_HEARTBEAT, channel, b"")


def publish_frames(channel, exchange, routing_key, body, properties=None, frame_max=131072):
    """basic.publish + content header + body frames split at frame_max."""
    out = method_frame(channel, "basic.publish", 0, exchange, routing_key, False, False)
    out += header_frame(channel, len(body), properties=properties)
    chunk = frame_max - FRAME_OVERHEAD
    for i in range(0, len(body), chunk):
        out += body_frame(channel, body[i:i + chunk])
    return out


# ---------------------------------------------------------------- decoding

class Reader:
    def __init__(self, data, pos=0):
        self.data, self.pos = data, pos

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt):
        (v,) = struct.unpack(fmt, self.take(struct.calcsize(fmt)))
        return v

    def shortstr(self):
        return self.take(self.unpack(">B")).decode("utf-8", "replace")

    def longstr(self):
        return self.take(self.unpack(">I"))

    def table(self):
        r = Reader(self.longstr())
        out = {}
        while r.pos < len(r.data):
            k = r.shortstr()
            out[k] = r.value()
        return out

    def value(self):
        t = self.take(1)
        simple = {b"t": ">B", b"b": ">b", b"B": ">B", b"s": ">h", b"u": ">H", b"I": ">i",
                  b"i": ">I", b"l": ">q", b"f": ">f", b"d": ">d", b"T": ">Q"}
        if t in simple:
            v = self.unpack(simple[t])
            return bool(v) if t == b"t" else v
        if t == b"D":
            scale, n = self.unpack(">B"), self.unpack(">i")
            return Decimal(n).scaleb(-scale)
        if t in (b"S", b"x"):
            return self.longstr()
        if t == b"F":
            return self.table()
        if t == b"A":
            r = Reader(self.longstr())
            out = []
            while r.pos < len(r.data):
                out.append(r.value())
            return out
        if t == b"V":
            return None
        raise ValueError(f"unknown field type {t!r}")


def decode_args(sig, data):
    r = Reader(data)
    out = []
    bits, nbits = 0, 8
    for t in sig:
        if t == "b":
            if nbits == 8:
                bits, nbits = r.unpack(">B"), 0
            out.append(bool(bits & (1 << nbits)))
            nbits += 1
            continue
        nbits = 8
        if t == "o":
            out.append(r.unpack(">B"))
        elif t == "h":
            out.append(r.unpack(">H"))
        elif t == "l":
            out.append(r.unpack(">I"))
        elif t in "LT":
            out.append(r.unpack(">Q"))
        elif t == "s":
            out.append(r.shortstr())
        elif t == "S":
            out.append(r.longstr())
        elif t == "F":
            out.append(r.table())
    return out


Frame = namedtuple("Frame", "type channel payload")
Method = namedtuple("Method", "channel name class_id method_id args")
Close = namedtuple("Close", "kind channel reply_code reply_text class_id method_id")


def decode_method(fr):
    class_id, method_id = struct.unpack(">HH", fr.payload[:4])
    name, sig = METHODS.get((class_id, method_id), (f"{class_id}.{method_id}", None))
    args = decode_args(sig, fr.payload[4:]) if sig is not None else [fr.payload[4:]]
    return Method(fr.channel, name, class_id, method_id, args)


class Closed(Exception):
    """The peer closed the TCP connection."""


class RawConnection:
    """A socket plus a frame reader. Nothing is sent behind the caller's back."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.start = None  # connection.start arguments
        self.tune = None   # connection.tune arguments (server's proposal)
        self.frame_max = 131072

    # -- sending
    def send(self, data):
        self.sock.sendall(data)

    def send_method(self, channel, name, *args):
        self.send(method_frame(channel, name, *args))

    # -- receiving
    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from broker in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from broker in time") from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise Closed("connection closed by broker")
        self.buf += chunk

    def read_bytes(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.buf) < 7:
            self._fill(deadline)
        ftype, channel, size = struct.unpack(">BHI", self.buf[:7])
        while len(self.buf) < 8 + size:
            self._fill(deadline)
        payload, end = self.buf[7:7 + size], self.buf[7 + size]
        self.buf = self.buf[8 + size:]
        if end != FRAME_END:
            raise ValueError(f"broker sent bad frame-end {end:#x}")
        return Frame(ftype, channel, payload)

    def read_method(self, timeout=5.0, skip_heartbeats=True):
        """Next method frame (content header/body frames are skipped too)."""
        deadline = time.monotonic() + timeout
        while True:
            fr = self.read_frame(max(0.0, deadline - time.monotonic()))
            if fr.type == FRAME_METHOD:
                return decode_method(fr)
            if fr.type == FRAME_HEARTBEAT and not skip_heartbeats:
                return fr

    def expect(self, name, channel=None, timeout=5.0):
        m = self.read_method(timeout)
        assert m.name == name, f"expected {name}, got {m.name} {m.args}"
        if channel is not None:
            assert m.channel == channel, f"{name} on channel {m.channel}, expected {channel}"
        return m

    def read_until_close(self, timeout=5.0, reply_close_ok=True):
        """Read frames until connection.close or channel.close; answer it with close-ok."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.read_method(max(0.0, deadline - time.monotonic()))
            if m.name in ("connection.close", "channel.close"):
                kind = m.name.split(".")[0]
                if reply_close_ok:
                    try:
                        self.send_method(m.channel, kind + ".close-ok")
                    except OSError:
                        pass
                return Close(kind, m.channel, *m.args)

    def wait_closed(self, timeout=5.0):
        """True when the broker closes the TCP connection within timeout (data is discarded)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.buf = b""
                self._fill(deadline)
        except Closed:
            return True
        except TimeoutError:
            return False

    def read_to_eof(self, timeout=5.0):
        """All bytes until the broker closes the connection; TimeoutError if it does not."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
        except Closed:
            out, self.buf = self.buf, b""
            return out

    def frames_until_closed(self, timeout=5.0):
        """Decoded frames (Method for method frames) until the broker closes the connection.

        Raises TimeoutError if the connection is still open after timeout."""
        deadline = time.monotonic() + timeout
        out = []
        try:
            while True:
                fr = self.read_frame(max(0.0, deadline - time.monotonic()))
                out.append(decode_method(fr) if fr.type == FRAME_METHOD else fr)
        except Closed:
            return out

    def pending_frames(self):
        """Frames that already arrived (never blocks)."""
        out = []
        try:
            while True:
                fr = self.read_frame(0.001)
                out.append(decode_method(fr) if fr.type == FRAME_METHOD else fr)
        except (TimeoutError, Closed):
            return out

    # -- conveniences
    def open_channel(self, channel):
        self.send_method(channel, "channel.open", "")
        return self.expect("channel.open-ok", channel)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def open_socket(host, port, timeout=5.0):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return RawConnection(s)


def client_properties(capabilities=None):
    return {
        "product": "warren-interop-tests",
        "capabilities": DEFAULT_CAPABILITIES if capabilities is None else capabilities,
    }


def plain_response(user, password):
    return b"\x00" + user.encode() + b"\x00" + password.encode()


def amqplain_response(user, password):
    return table_body({"LOGIN": user, "PASSWORD": password})


def start(host, port, capabilities=None, mechanism="PLAIN", response=None,
          user="guest", password="guest"):
    """Protocol header, connection.start, connection.start-ok. Returns the connection."""
    c = open_socket(host, port)
    c.send(PROTOCOL_HEADER)
    c.start = c.expect("connection.start", 0).args
    if response is None:
        response = (amqplain_response if mechanism == "AMQPLAIN" else plain_response)(user, password)
    c.send_method(0, "connection.start-ok", client_properties(capabilities), mechanism, response, "en_US")
    return c


def handshake(host, port, user="guest", password="guest", vhost="/", channel_max=None,
              frame_max=None, heartbeat=0, capabilities=None, mechanism="PLAIN"):
    """Complete handshake. None for channel_max/frame_max means: accept the server's value."""
    c = start(host, port, capabilities, mechanism, user=user, password=password)
    c.tune = c.expect("connection.tune", 0).args
    cm = c.tune[0] if channel_max is None else channel_max
    fm = c.tune[1] if frame_max is None else frame_max
    c.frame_max = fm
    c.send_method(0, "connection.tune-ok", cm, fm, heartbeat)
    c.send_method(0, "connection.open", vhost, "", False)
    c.expect("connection.open-ok", 0)
    return c


def broker_handshake(broker, **kw):
    kw.setdefault("user", broker.user)
    kw.setdefault("password", broker.password)
    kw.setdefault("vhost", broker.vhost)
    return handshake(broker.host, broker.port, **kw)


def check_against_spec(path="/usr/share/amqp/specs/0-9-1-rabbit/amqp0-9-1.stripped.extended.xml"):
    """Compare METHODS with the spec XML (`python amqp_raw.py`). The XML lacks RabbitMQ's
    connection.blocked/unblocked/update-secret(-ok), which are checked by hand."""
    import xml.etree.ElementTree as ET
    letters = {"octet": "o", "short": "h", "long": "l", "longlong": "L", "shortstr": "s",
               "longstr": "S", "bit": "b", "table": "F", "timestamp": "T"}
    root = ET.parse(path).getroot()
    domains = {d.get("name"): d.get("type") for d in root.findall("domain")}
    seen = set()
    for cls in root.findall("class"):
        for m in cls.findall("method"):
            key = (int(cls.get("index")), int(m.get("index")))
            sig = "".join(letters[domains.get(f.get("domain") or f.get("type"),
                                              f.get("domain") or f.get("type"))]
                          for f in m.findall("field"))
            want = (f"{cls.get('name')}.{m.get('name')}", sig)
            assert METHODS.get(key) == want, (key, METHODS.get(key), want)
            seen.add(key)
    extra = set(METHODS) - seen
    assert extra == {(10, 60), (10, 61), (10, 70), (10, 71)}, extra
    props = [(f.get("name"), f.get("domain") or f.get("type"))
             for f in root.find("class[@name='basic']").findall("field")]
    assert [letters[domains.get(d, d)] for _n, d in props] == [t for _k, t in BASIC_PROPERTIES]
    return len(seen)


if __name__ == "__main__":
    print(f"{check_against_spec()} methods match the spec XML")
