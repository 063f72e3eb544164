"""Helpers for the durability tests (issue 3): a broker that can be restarted and killed
on the same data directory, and a small, fast raw AMQP 0-9-1 client for pipelined
confirmed publishing and for draining queues while keeping every frame's exact bytes.

Targets:
- Warren (default): every test gets a private `RestartableWarren` on its own data
  directory (under $WARREN_TEST_DATA_ROOT if set, else pytest's tmp_path; use a real
  disk, not tmpfs, to exercise fsync). The AMQP port is kept across restarts.
- Reference mode (REFERENCE_AMQP_URL set): the restart scenarios are skipped unless
  WARREN_TEST_RESTART_REFERENCE=1, because restarting the shared reference RabbitMQ
  disturbs everybody using it. It is restarted with $WARREN_TEST_REFERENCE_CTL
  (default /work/shared/tools/reference-rabbitmq) `restart`. Scenarios that SIGKILL the
  broker additionally need WARREN_TEST_KILL_REFERENCE=1: the helper then sends SIGKILL
  to the pid in $WARREN_TEST_REFERENCE_PIDFILE (default $REF_RMQ_DIR/pid, i.e.
  /tmp/reference-rabbitmq/pid) and runs `<ctl> start`. To check the tests' logic
  against RabbitMQ without touching the shared node, point REFERENCE_AMQP_URL,
  WARREN_TEST_REFERENCE_CTL and WARREN_TEST_REFERENCE_PIDFILE at a private node.

Fixtures: `restartable` (restart gracefully; SIGKILL too when the test is parametrized
with how="kill9"), `killable` (SIGKILL), `private_warren` (Warren-only tests).

Environment knobs: WARREN_TEST_START_TIMEOUT (s, default 60: how long a (re)start,
including recovery, may take), WARREN_TEST_STOP_TIMEOUT (s, default 60: how long a
graceful stop may take; exiting with anything but 0 / SIGTERM on it fails the test),
WARREN_TEST_KEEP_DATA=1 (keep each test's data directory and log).
"""

import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pika
import pika.spec as spec
import pytest

from conftest import WARREN_BIN, Broker, free_port, wait_port

START_TIMEOUT = float(os.environ.get("WARREN_TEST_START_TIMEOUT", "60"))
STOP_TIMEOUT = float(os.environ.get("WARREN_TEST_STOP_TIMEOUT", "60"))

PERSISTENT = 2
TRANSIENT = 1


# --------------------------------------------------------------------------
# ports and /proc
# --------------------------------------------------------------------------

def pick_port():
    """A free TCP port below the kernel's ephemeral range, so that while the broker is
    down no client socket can be handed the broker's port as its local port."""
    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    hi = min(low - 1, 32767)
    lo = 20000 if hi > 21000 else 1024
    rnd = random.Random()
    for _ in range(200):
        port = rnd.randint(lo, hi)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


def proc_status(pid):
    """Memory lines of /proc/<pid>/status in KiB: {'VmRSS': ..., 'VmHWM': ...}."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "VmSize", "VmPeak"):
                out[key] = int(rest.split()[0])
    return out


def _gone(pid):
    """True once pid is dead (absent or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


# --------------------------------------------------------------------------
# A fast raw AMQP 0-9-1 client (pika's codec for method frames only)
# --------------------------------------------------------------------------

FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE


class Closed(Exception):
    """The broker closed the connection or channel (or the socket went away)."""

    def __init__(self, text, reply_code=None):
        super().__init__(text)
        self.reply_code = reply_code


class Content:
    """A delivered message: the method, the exact header-frame payload, and the body."""

    __slots__ = ("channel", "method", "header", "body", "_props")

    def __init__(self, channel, method, header, body):
        self.channel, self.method, self.header, self.body = channel, method, header, body
        self._props = None

    @property
    def props(self):
        if self._props is None:
            p = spec.BasicProperties()
            p.decode(self.header, 12)
            self._props = p
        return self._props

    @property
    def redelivered(self):
        return self.method.redelivered


def encode_props(props):
    """BasicProperties (or None) -> the property flags and list, as bytes."""
    if props is None:
        return b"\x00\x00"
    if isinstance(props, (bytes, bytearray)):
        return bytes(props)
    return b"".join(props.encode())


class RawConn:
    """One AMQP connection over a plain socket, with buffered frame parsing that stays
    fast for hundreds of thousands of messages. Not thread-safe, except that one thread
    may send while another reads."""

    def __init__(self, host, port, user="guest", password="guest", vhost="/",
                 frame_max=131072, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0
        self.sock.sendall(b"AMQP\x00\x00\x09\x01")
        self.expect(0, spec.Connection.Start)
        self.send_method(0, spec.Connection.StartOk(
            client_properties={"product": "warren-durability-tests",
                               "capabilities": {"publisher_confirms": True,
                                                "basic.nack": True,
                                                "consumer_cancel_notify": True}},
            mechanism="PLAIN", response=f"\0{user}\0{password}", locale="en_US"))
        tune = self.expect(0, spec.Connection.Tune)
        self.frame_max = min(frame_max, tune.frame_max) if tune.frame_max else frame_max
        self.send_method(0, spec.Connection.TuneOk(channel_max=tune.channel_max or 2047,
                                                   frame_max=self.frame_max, heartbeat=0))
        self.send_method(0, spec.Connection.Open(virtual_host=vhost))
        self.expect(0, spec.Connection.OpenOk)

    @classmethod
    def to(cls, broker, **kw):
        return cls(broker.host, broker.port, broker.user, broker.password, broker.vhost, **kw)

    # ---- writing
    @staticmethod
    def _frame(ftype, ch, payload):
        return struct.pack(">BHI", ftype, ch, len(payload)) + payload + b"\xce"

    def method_bytes(self, ch, method):
        payload = struct.pack(">I", method.INDEX) + b"".join(method.encode())
        return self._frame(FRAME_METHOD, ch, payload)

    def send_method(self, ch, method):
        self.sock.sendall(self.method_bytes(ch, method))

    def publish_bytes(self, ch, exchange, routing_key, body, props=None, mandatory=False):
        """The frames of one basic.publish, as bytes (to batch several in one write)."""
        parts = [self.method_bytes(ch, spec.Basic.Publish(
            exchange=exchange, routing_key=routing_key, mandatory=mandatory))]
        parts.append(self._frame(FRAME_HEADER, ch,
                                 struct.pack(">HHQ", 60, 0, len(body)) + encode_props(props)))
        step = self.frame_max - 8
        for i in range(0, len(body), step):
            parts.append(self._frame(FRAME_BODY, ch, bytes(body[i:i + step])))
        return b"".join(parts)

    def publish(self, ch, exchange, routing_key, body, props=None, mandatory=False):
        self.sock.sendall(self.publish_bytes(ch, exchange, routing_key, body, props, mandatory))

    # ---- reading
    def read_frame(self, timeout=10.0):
        """(type, channel, payload bytes). Raises Closed when the socket closes and
        socket.timeout when nothing arrives in time."""
        buf = self.buf
        while True:
            avail = len(buf) - self.pos
            if avail >= 7:
                ftype, ch, size = struct.unpack_from(">BHI", buf, self.pos)
                end = self.pos + 7 + size
                if len(buf) > end:
                    if buf[end] != FRAME_END:
                        raise AssertionError(f"bad frame end byte {buf[end]:#x}")
                    payload = bytes(buf[self.pos + 7:end])
                    self.pos = end + 1
                    if self.pos > 1 << 20 and self.pos * 2 > len(buf):
                        del buf[:self.pos]
                        self.pos = 0
                    return ftype, ch, payload
            self.sock.settimeout(timeout)
            try:
                data = self.sock.recv(1 << 18)
            except (ConnectionResetError, BrokenPipeError) as e:
                raise Closed(f"socket error: {e}") from e
            if not data:
                raise Closed("socket closed by the broker")
            buf += data

    def next_method(self, timeout=10.0):
        """(channel, method) of the next method frame; raises Closed on connection.close
        and channel.close (after answering them)."""
        while True:
            ftype, ch, payload = self.read_frame(timeout)
            if ftype == FRAME_HEARTBEAT:
                continue
            if ftype != FRAME_METHOD:
                raise AssertionError(f"expected a method frame, got type {ftype}")
            index = struct.unpack_from(">I", payload)[0]
            method = spec.methods[index]()
            method.decode(payload, 4)
            if isinstance(method, spec.Connection.Close):
                try:
                    self.send_method(0, spec.Connection.CloseOk())
                except OSError:
                    pass
                raise Closed(f"connection.close {method.reply_code} {method.reply_text}",
                             method.reply_code)
            if isinstance(method, spec.Channel.Close):
                try:
                    self.send_method(ch, spec.Channel.CloseOk())
                except OSError:
                    pass
                raise Closed(f"channel.close {method.reply_code} {method.reply_text}",
                             method.reply_code)
            return ch, method

    def read_content(self, ch, method, timeout=10.0):
        ftype, hch, header = self.read_frame(timeout)
        assert ftype == FRAME_HEADER and hch == ch, (ftype, hch)
        size = struct.unpack_from(">Q", header, 4)[0]
        chunks, got = [], 0
        while got < size:
            ftype, bch, part = self.read_frame(timeout)
            assert ftype == FRAME_BODY and bch == ch, (ftype, bch)
            chunks.append(part)
            got += len(part)
        assert got == size, (got, size)
        return Content(ch, method, header, b"".join(chunks))

    def next_event(self, timeout=10.0):
        """The next method; deliveries, get-oks and returns come as Content."""
        ch, method = self.next_method(timeout)
        if isinstance(method, (spec.Basic.Deliver, spec.Basic.GetOk, spec.Basic.Return)):
            return self.read_content(ch, method, timeout)
        return ch, method

    def expect(self, ch, cls, timeout=10.0):
        got_ch, method = self.next_method(timeout)
        assert isinstance(method, cls) and got_ch == ch, \
            f"expected {cls.NAME} on channel {ch}, got {method!r} on {got_ch}"
        return method

    def rpc(self, ch, method, reply_cls, timeout=10.0):
        self.send_method(ch, method)
        return self.expect(ch, reply_cls, timeout)

    def open_channel(self, ch=1, confirm=False, prefetch=None, tx=False):
        self.rpc(ch, spec.Channel.Open(), spec.Channel.OpenOk)
        if confirm:
            self.rpc(ch, spec.Confirm.Select(), spec.Confirm.SelectOk)
        if tx:
            self.rpc(ch, spec.Tx.Select(), spec.Tx.SelectOk)
        if prefetch is not None:
            self.rpc(ch, spec.Basic.Qos(prefetch_count=prefetch), spec.Basic.QosOk)
        return ch

    def get(self, ch, queue, no_ack=True, timeout=10.0):
        """basic.get: a Content, or None on get-empty."""
        self.send_method(ch, spec.Basic.Get(queue=queue, no_ack=no_ack))
        ev = self.next_event(timeout)
        if isinstance(ev, Content):
            return ev
        _, m = ev
        assert isinstance(m, spec.Basic.GetEmpty), m
        return None

    def close(self):
        try:
            self.send_method(0, spec.Connection.Close(reply_code=200, reply_text="bye",
                                                      class_id=0, method_id=0))
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                _, m = self.next_method(timeout=5)
                if isinstance(m, spec.Connection.CloseOk):
                    break
        except (OSError, Closed, AssertionError):
            pass
        finally:
            self.sock.close()


class ConfirmTracker:
    """Publisher-confirm bookkeeping: delivery tag -> what was published with it."""

    def __init__(self):
        import collections
        self.pending = collections.OrderedDict()
        self.next_tag = 1

    def sent(self, item):
        self.pending[self.next_tag] = item
        self.next_tag += 1

    def settle(self, tag, multiple):
        """The items an ack/nack for `tag` settles."""
        if not multiple:
            item = self.pending.pop(tag, None)
            return [] if item is None else [item]
        out = []
        while self.pending:
            first = next(iter(self.pending))
            if first > tag:
                break
            out.append(self.pending.pop(first))
        return out

    def __len__(self):
        return len(self.pending)


def publish_confirmed(rb, routing_key, messages, exchange="", window=2000, mandatory=False):
    """Publish (props, body) pairs on a confirm channel, pipelined, and wait for every
    confirm. Fails on a nack or a basic.return. Returns how many were published."""
    c = RawConn.to(rb.broker)
    try:
        c.open_channel(1, confirm=True)
        tracker = ConfirmTracker()
        batch = []

        def settle(block):
            while len(tracker) and (block or len(tracker) >= window):
                ev = c.next_event(timeout=60)
                if isinstance(ev, Content):
                    raise AssertionError(f"message returned: {ev.method!r}")
                _, m = ev
                if isinstance(m, spec.Basic.Nack):
                    raise AssertionError(f"broker nacked a publish: {m!r}")
                assert isinstance(m, spec.Basic.Ack), m
                tracker.settle(m.delivery_tag, m.multiple)

        n = 0
        for props, body in messages:
            batch.append(c.publish_bytes(1, exchange, routing_key, body, props, mandatory))
            tracker.sent(n)
            n += 1
            if len(batch) >= 64 or len(tracker) >= window:
                c.sock.sendall(b"".join(batch))
                batch = []
                settle(block=False)
        if batch:
            c.sock.sendall(b"".join(batch))
        settle(block=True)
        return n
    finally:
        c.close()


def drain(rb, queue, expected=None, prefetch=500, ack_every=100, timeout=30.0,
          on_message=None):
    """Consume every message of `queue` (manual acks, multiple=True), then cancel and
    check the queue is empty. Returns the list of Content, in delivery order.
    `on_message(content)` may inspect each message as it arrives (e.g. to check order
    without keeping the bodies; it may return False to not keep the message)."""
    c = RawConn.to(rb.broker)
    out = []
    try:
        c.open_channel(1, prefetch=prefetch)
        ok = c.rpc(1, spec.Queue.Declare(queue=queue, passive=True), spec.Queue.DeclareOk)
        total = ok.message_count if expected is None else expected
        if total:
            c.rpc(1, spec.Basic.Consume(queue=queue, consumer_tag="drain"),
                  spec.Basic.ConsumeOk)
            n = 0
            last_tag = acked = 0
            while n < total:
                ev = c.next_event(timeout=timeout)
                if not isinstance(ev, Content):
                    raise AssertionError(f"unexpected {ev[1]!r} while draining {queue}")
                n += 1
                last_tag = ev.method.delivery_tag
                keep = on_message(ev) if on_message else True
                if keep is not False:
                    out.append(ev)
                if n % ack_every == 0:
                    c.send_method(1, spec.Basic.Ack(delivery_tag=last_tag, multiple=True))
                    acked = last_tag
            if last_tag > acked:
                c.send_method(1, spec.Basic.Ack(delivery_tag=last_tag, multiple=True))
            c.rpc(1, spec.Basic.Cancel(consumer_tag="drain"), spec.Basic.CancelOk)
        left = c.rpc(1, spec.Queue.Declare(queue=queue, passive=True),
                     spec.Queue.DeclareOk).message_count
        assert left == 0, f"{left} messages still in {queue} after draining {total}"
        return out
    finally:
        c.close()


# --------------------------------------------------------------------------
# Restartable brokers
# --------------------------------------------------------------------------

def wait_amqp_ready(broker, timeout, proc=None):
    """Wait until an AMQP connection can be opened (not just the port accepting)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited with code {proc.returncode} while starting")
        try:
            RawConn.to(broker, timeout=5).close()
            return
        except (OSError, Closed, AssertionError) as e:
            last = e
            time.sleep(0.05)
    raise RuntimeError(f"broker not accepting AMQP connections after {timeout}s: {last!r}")


class RestartableWarren:
    """A private Warren on `data_dir` and a fixed AMQP port, restartable in place.

    start(); stop(graceful=True); restart(graceful=True); kill9() (SIGKILL, no restart);
    connect() -> pika BlockingConnection; raw() -> RawConn; log(); pid; memory().
    """

    is_reference = False

    def __init__(self, data_dir, port=None, extra_args=(), log_path=None):
        self.data_dir = str(data_dir)
        os.makedirs(self.data_dir, exist_ok=True)
        self.port = port or pick_port()
        self.extra_args = list(extra_args)
        self.log_path = log_path or os.path.join(
            tempfile.mkdtemp(prefix="warren-durability-log-"), "warren.log")
        self.proc = None
        self.starts = 0
        self.exit_codes = []
        url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2f"
        self.broker = Broker(url, False, data_dir=self.data_dir, ports={"amqp": self.port})

    # ---- lifecycle
    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if not os.path.exists(WARREN_BIN):
            raise RuntimeError(f"{WARREN_BIN} not found: run `cargo build --release` first")
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== test harness: start #{self.starts} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [WARREN_BIN, "--bind", "127.0.0.1", "--amqp-port", str(self.port),
                 "--http-port", "0", "--mqtt-port", "0", "--stomp-port", "0",
                 "--prometheus-port", "0", "--web-mqtt-port", "0", "--web-stomp-port", "0", "--data-dir", self.data_dir, *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")})
        self.broker.proc = self.proc
        t0 = time.monotonic()
        try:
            wait_port("127.0.0.1", self.port, timeout=START_TIMEOUT, proc=self.proc)
            wait_amqp_ready(self.broker, max(1.0, START_TIMEOUT - (time.monotonic() - t0)),
                            proc=self.proc)
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n--- warren log (tail) ---\n{self.log()[-4000:]}") from e
        return time.monotonic() - t0

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, graceful=True):
        """SIGTERM and wait (graceful; a crash or a hang is a failure), or SIGKILL."""
        if not self.running():
            return
        if not graceful:
            self.kill9()
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"warren did not stop within {STOP_TIMEOUT}s of SIGTERM")
        self.exit_codes.append(code)
        assert code in (0, -signal.SIGTERM), (
            f"warren exited with code {code} on SIGTERM\n--- log ---\n{self.log()[-4000:]}")

    def kill9(self):
        """SIGKILL the broker and reap it. It stays down until start()."""
        assert self.running(), "broker is not running"
        self.proc.send_signal(signal.SIGKILL)
        self.exit_codes.append(self.proc.wait())

    def restart(self, graceful=True):
        """Stop (SIGTERM and wait, or SIGKILL) and start again on the same data dir and
        port. Returns the seconds the start took."""
        self.stop(graceful=graceful)
        return self.start()

    def close(self):
        """Graceful stop at teardown; a crash on shutdown fails the test."""
        self.stop(graceful=True)

    # ---- access
    @property
    def pid(self):
        return self.proc.pid

    def memory(self):
        return proc_status(self.proc.pid)

    def log(self):
        try:
            return open(self.log_path, "rb").read().decode(errors="replace")
        except OSError:
            return ""

    def connect(self, **kw):
        return self.broker.connect(**kw)

    def raw(self, **kw):
        return RawConn.to(self.broker, **kw)

    def track(self, queues=(), exchanges=()):
        """Names to delete at the end (only matters on a shared reference broker)."""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        if self.running():
            if exc[0] is not None:
                self.stop(graceful=False)
            else:
                self.close()
        return False


class ReferenceRabbit:
    """The reference RabbitMQ behind REFERENCE_AMQP_URL, restarted with its control
    script; same interface as RestartableWarren."""

    is_reference = True

    def __init__(self, broker, allow_kill):
        self.broker = broker
        self.allow_kill = allow_kill
        self.ctl = os.environ.get("WARREN_TEST_REFERENCE_CTL",
                                  "/work/shared/tools/reference-rabbitmq")
        self.pidfile = os.environ.get(
            "WARREN_TEST_REFERENCE_PIDFILE",
            os.path.join(os.environ.get("REF_RMQ_DIR", "/tmp/reference-rabbitmq"), "pid"))
        self._queues, self._exchanges = [], []
        self._up = True

    def _run(self, *args):
        r = subprocess.run([self.ctl, *args], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{self.ctl} {' '.join(args)} failed: {r.stdout}{r.stderr}"

    def start(self):
        t0 = time.monotonic()
        self._run("start")
        wait_amqp_ready(self.broker, 120)
        self._up = True
        return time.monotonic() - t0

    def running(self):
        return self._up

    def stop(self, graceful=True):
        if not graceful:
            self.kill9()
            return
        self._run("stop")
        self._up = False

    def kill9(self):
        if not self.allow_kill:
            pytest.skip("SIGKILL of the reference broker needs WARREN_TEST_KILL_REFERENCE=1")
        pid = int(open(self.pidfile).read().strip())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not _gone(pid):
            assert time.monotonic() < deadline, f"reference pid {pid} survived SIGKILL"
            time.sleep(0.02)
        self._up = False

    def restart(self, graceful=True):
        if graceful:
            t0 = time.monotonic()
            self._run("restart")
            wait_amqp_ready(self.broker, 120)
            self._up = True
            return time.monotonic() - t0
        self.kill9()
        return self.start()

    @property
    def pid(self):
        return int(open(self.pidfile).read().strip())

    def memory(self):
        return proc_status(self.pid)

    def log(self):
        return ""

    def connect(self, **kw):
        return self.broker.connect(**kw)

    def raw(self, **kw):
        return RawConn.to(self.broker, **kw)

    def track(self, queues=(), exchanges=()):
        self._queues.extend(queues)
        self._exchanges.extend(exchanges)

    def close(self):
        if not self._up:
            self.start()
        for kind, names in (("queue", self._queues), ("exchange", self._exchanges)):
            for name in names:
                try:
                    c = self.connect()
                    try:
                        ch = c.channel()
                        (ch.queue_delete if kind == "queue" else ch.exchange_delete)(name)
                    finally:
                        if c.is_open:
                            c.close()
                except pika.exceptions.AMQPError:
                    pass


def _make(broker, tmp_path, kill):
    if broker.is_reference:
        if os.environ.get("WARREN_TEST_RESTART_REFERENCE") != "1":
            pytest.skip("restarts the broker: against the shared reference only with "
                        "WARREN_TEST_RESTART_REFERENCE=1")
        allow_kill = os.environ.get("WARREN_TEST_KILL_REFERENCE") == "1"
        if kill and not allow_kill:
            pytest.skip("SIGKILLs the broker: against the reference only with "
                        "WARREN_TEST_KILL_REFERENCE=1 (and WARREN_TEST_RESTART_REFERENCE=1)")
        return ReferenceRabbit(broker, allow_kill), None
    root = os.environ.get("WARREN_TEST_DATA_ROOT")
    base = tempfile.mkdtemp(prefix="warren-durability-", dir=root or str(tmp_path))
    return RestartableWarren(os.path.join(base, "data"),
                             log_path=os.path.join(base, "warren.log")), base


def _fixture(request, broker, tmp_path, kill):
    how = getattr(getattr(request.node, "callspec", None), "params", {}).get("how")
    rb, base = _make(broker, tmp_path, kill or how == "kill9")
    try:
        if not rb.is_reference:
            rb.start()
        yield rb
    finally:
        try:
            rb.close()
        finally:
            if base:
                # Shown by pytest only when the test fails.
                print(f"--- warren log ({rb.log_path}), tail ---\n{rb.log()[-6000:]}")
                if os.environ.get("WARREN_TEST_KEEP_DATA") != "1":
                    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def restartable(request, broker, tmp_path):
    """A broker the test may restart gracefully (and SIGKILL when the test is
    parametrized with how='kill9')."""
    yield from _fixture(request, broker, tmp_path, kill=False)


@pytest.fixture
def killable(request, broker, tmp_path):
    """A broker the test may SIGKILL."""
    yield from _fixture(request, broker, tmp_path, kill=True)


@pytest.fixture
def private_warren(request, broker, tmp_path):
    """A RestartableWarren, for Warren-only tests (skipped in reference mode)."""
    if broker.is_reference:
        pytest.skip("Warren only: looks inside the broker process")
    yield from _fixture(request, broker, tmp_path, kill=True)


def bounce(rb, how):
    """Restart the broker: how='graceful' (SIGTERM and wait) or 'kill9' (SIGKILL)."""
    assert how in ("graceful", "kill9"), how
    return rb.restart(graceful=(how == "graceful"))
