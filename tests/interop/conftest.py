"""Shared fixtures for the interop tests.

Every test talks to a real broker over a real TCP socket with a real client.

Target selection:
- default: start `target/release/warren` once per test session on free ports, with a
  fresh data directory, and stop it at the end;
- `REFERENCE_AMQP_URL=amqp://guest:guest@127.0.0.1:5673/%2f` (differential mode): run the
  very same scenarios against that broker (the reference RabbitMQ) instead.
- `WARREN_AMQP_URL=...`: use an already running Warren (for debugging).

Tests must use unique names (see `uniq`) so they never interfere with each other.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import uuid

import pika
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WARREN_BIN = os.environ.get("WARREN_BIN", os.path.join(ROOT, "target", "release", "warren"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(host, port, timeout=20.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited early with code {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {host}:{port} after {timeout}s")


class Broker:
    """Where the broker under test listens, and how to reach it."""

    def __init__(self, url, is_reference, proc=None, data_dir=None, ports=None):
        self.url = url
        self.is_reference = is_reference
        self.proc = proc
        self.data_dir = data_dir
        self.ports = ports or {}
        p = urllib.parse.urlparse(url)
        self.host = p.hostname or "127.0.0.1"
        self.port = p.port or 5672
        self.user = urllib.parse.unquote(p.username or "guest")
        self.password = urllib.parse.unquote(p.password or "guest")
        vhost = p.path[1:] if p.path.startswith("/") else p.path
        self.vhost = urllib.parse.unquote(vhost) if vhost else "/"

    @property
    def name(self):
        return "rabbitmq" if self.is_reference else "warren"

    def params(self, **kw):
        """pika.ConnectionParameters for this broker; keyword arguments override."""
        kw.setdefault("host", self.host)
        kw.setdefault("port", self.port)
        kw.setdefault("virtual_host", self.vhost)
        kw.setdefault(
            "credentials", pika.PlainCredentials(self.user, self.password)
        )
        kw.setdefault("connection_attempts", 1)
        kw.setdefault("blocked_connection_timeout", 30)
        return pika.ConnectionParameters(**kw)

    def connect(self, **kw):
        return pika.BlockingConnection(self.params(**kw))


def _start_warren(tmp_root, extra_args=(), data_dir=None):
    if not os.path.exists(WARREN_BIN):
        raise RuntimeError(
            f"{WARREN_BIN} not found: run `cargo build --release --workspace` first"
        )
    amqp_port = free_port()
    data_dir = data_dir or os.path.join(tmp_root, "data")
    os.makedirs(data_dir, exist_ok=True)
    log = open(os.path.join(tmp_root, "warren.log"), "wb")
    proc = subprocess.Popen(
        [
            WARREN_BIN,
            "--bind", "127.0.0.1",
            "--amqp-port", str(amqp_port),
            "--http-port", "0",
            "--mqtt-port", "0",
            "--stomp-port", "0",
            "--prometheus-port", "0",
            "--web-mqtt-port", "0",
            "--web-stomp-port", "0",
            "--data-dir", data_dir,
            *extra_args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")},
    )
    wait_port("127.0.0.1", amqp_port, proc=proc)
    url = f"amqp://guest:guest@127.0.0.1:{amqp_port}/%2f"
    return Broker(url, False, proc=proc, data_dir=data_dir, ports={"amqp": amqp_port})


class spawn_warren:
    """A private Warren for one test, started with extra command-line flags.

    `with spawn_warren("--disk-free-limit", "1000000GB") as b: ...` (b is a Broker).
    Only for tests that need a broker configured differently; skip them in reference mode.
    """

    def __init__(self, *extra_args, data_dir=None):
        self.extra_args = extra_args
        self.data_dir = data_dir

    def __enter__(self):
        self.tmp_root = tempfile.mkdtemp(prefix="warren-test-")
        self.broker = _start_warren(self.tmp_root, self.extra_args, self.data_dir)
        return self.broker

    def log(self):
        return open(os.path.join(self.tmp_root, "warren.log"), "rb").read().decode(errors="replace")

    def __exit__(self, *exc):
        p = self.broker.proc
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        shutil.rmtree(self.tmp_root, ignore_errors=True)
        return False


@pytest.fixture(scope="session")
def broker():
    ref = os.environ.get("REFERENCE_AMQP_URL")
    if ref:
        yield Broker(ref, True)
        return
    running = os.environ.get("WARREN_AMQP_URL")
    if running:
        yield Broker(running, False)
        return
    tmp_root = tempfile.mkdtemp(prefix="warren-test-")
    b = _start_warren(tmp_root)
    try:
        yield b
    finally:
        b.proc.send_signal(signal.SIGTERM)
        try:
            b.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            b.proc.kill()
        # A crash during the session must fail it: the broker must never die.
        code = b.proc.returncode
        if code not in (0, -signal.SIGTERM):
            print(open(os.path.join(tmp_root, "warren.log"), "rb").read().decode(errors="replace")[-5000:])
            raise RuntimeError(f"warren exited with code {code}")
        shutil.rmtree(tmp_root, ignore_errors=True)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "pending(issue, reason): RabbitMQ behaviour Warren does not have yet, tracked by that "
        "issue. Against Warren the test is a strict xfail (it must fail; once it passes, "
        "remove the marker); against the reference it runs normally.",
    )


def pytest_collection_modifyitems(config, items):
    if os.environ.get("REFERENCE_AMQP_URL"):
        return
    for item in items:
        m = item.get_closest_marker("pending")
        if m:
            issue, reason = m.args
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"issue #{issue}: {reason}"))


@pytest.fixture
def uniq(request):
    """A name prefix unique to this test: `uniq('q')` -> 'test_x.q.1a2b3c4d'."""
    base = request.node.name.replace("[", ".").replace("]", "")
    tag = uuid.uuid4().hex[:8]

    def make(suffix=""):
        return f"{base}.{suffix}.{tag}" if suffix else f"{base}.{tag}"

    return make


@pytest.fixture
def conn(broker):
    c = broker.connect()
    yield c
    if c.is_open:
        try:
            c.close()
        except Exception:
            pass


@pytest.fixture
def ch(conn):
    return conn.channel()
