"""Fixtures for the management HTTP API and Prometheus tests (tests/http).

Every test talks to a real broker over real sockets: `requests` for HTTP, pika for AMQP.

The broker under test:
- default: the `warren-http-dev` example of crates/http (a broker with the AMQP, HTTP and
  Prometheus listeners), looked up in target/release/examples, then target/http/debug/examples;
- `WARREN_HTTP_BIN=/path/to/warren`: that binary instead (the real `warren`, once it starts
  the HTTP listeners): it is run with the very same flags.

Differential tests also talk to a reference RabbitMQ when `REFERENCE_HTTP_URL` is set
(e.g. `http://guest:guest@127.0.0.1:15673`, with `REFERENCE_AMQP_PORT=5673` and
`REFERENCE_PROMETHEUS_URL=http://127.0.0.1:15693`); they are skipped otherwise.
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
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CANDIDATES = [
    os.path.join(ROOT, "target", "release", "warren"),
    os.path.join(ROOT, "target", "debug", "warren"),
]


def broker_bin():
    b = os.environ.get("WARREN_HTTP_BIN")
    if b:
        return b
    for c in CANDIDATES:
        if os.path.exists(c):
            return c
    raise RuntimeError(
        "no broker: build it with `cargo build --release -p warren` or set WARREN_HTTP_BIN"
    )


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


class Api:
    """An HTTP API endpoint: `api.get("/api/overview")` etc. with default credentials."""

    def __init__(self, base, user="guest", password="guest"):
        self.base = base.rstrip("/")
        self.auth = (user, password)

    def url(self, path):
        return self.base + path

    def request(self, method, path, auth="default", **kw):
        if auth == "default":
            auth = self.auth
        kw.setdefault("timeout", 120)
        return requests.request(method, self.url(path), auth=auth, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, json=body if body is not None else {}, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, json=body if body is not None else {}, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def as_user(self, user, password):
        return Api(self.base, user, password)


class Server:
    """A running broker: its ports, its API, and AMQP connections to it."""

    def __init__(self, name, amqp_port, http_url, prometheus_url, proc=None, tmp=None):
        self.name = name
        self.amqp_port = amqp_port
        self.api = Api(http_url)
        self.prometheus_url = prometheus_url
        self.proc = proc
        self.tmp = tmp

    @property
    def is_reference(self):
        return self.name == "rabbitmq"

    def connect(self, vhost="/", user="guest", password="guest", **kw):
        return pika.BlockingConnection(
            pika.ConnectionParameters(
                host="127.0.0.1",
                port=self.amqp_port,
                virtual_host=vhost,
                credentials=pika.PlainCredentials(user, password),
                connection_attempts=1,
                **kw,
            )
        )

    def log(self):
        if not self.tmp:
            return ""
        with open(os.path.join(self.tmp, "broker.log"), "rb") as f:
            return f.read().decode(errors="replace")


def start_warren(data_dir=None):
    tmp = tempfile.mkdtemp(prefix="warren-http-test-")
    data_dir = data_dir or os.path.join(tmp, "data")
    amqp, http, prom = free_port(), free_port(), free_port()
    log = open(os.path.join(tmp, "broker.log"), "wb")
    env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")}
    # Rates are sampled every second here (RabbitMQ's default, and Warren's, is 5 s).
    env.setdefault("WARREN_STATS_INTERVAL", "1")
    proc = subprocess.Popen(
        [
            broker_bin(),
            "--bind", "127.0.0.1",
            "--amqp-port", str(amqp),
            "--http-port", str(http),
            "--prometheus-port", str(prom),
            "--web-mqtt-port", "0",
            "--web-stomp-port", "0",
            "--mqtt-port", "0",
            "--stomp-port", "0",
            "--data-dir", data_dir,
            "--node-name", "warren@localhost",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    for p in (amqp, http, prom):
        wait_port(p, proc)
    return Server(
        "warren", amqp, f"http://127.0.0.1:{http}", f"http://127.0.0.1:{prom}", proc, tmp
    )


def stop(server, keep_data=False):
    p = server.proc
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    code = p.returncode
    if code not in (0, -signal.SIGTERM):
        print(server.log()[-5000:])
        raise RuntimeError(f"broker exited with code {code}")
    if not keep_data:
        shutil.rmtree(server.tmp, ignore_errors=True)


class spawn:
    """A private broker for one test: `with spawn() as s: ...`."""

    def __init__(self, data_dir=None):
        self.data_dir = data_dir

    def __enter__(self):
        self.server = start_warren(self.data_dir)
        return self.server

    def __exit__(self, *exc):
        stop(self.server)
        return False


@pytest.fixture(scope="session")
def warren():
    s = start_warren()
    try:
        yield s
    finally:
        stop(s)


@pytest.fixture(scope="session")
def api(warren):
    return warren.api


def reference_server():
    url = os.environ.get("REFERENCE_HTTP_URL")
    if not url:
        return None
    p = urllib.parse.urlparse(url)
    base = f"{p.scheme}://{p.hostname}:{p.port}"
    s = Server(
        "rabbitmq",
        int(os.environ.get("REFERENCE_AMQP_PORT", "5673")),
        base,
        os.environ.get("REFERENCE_PROMETHEUS_URL", "http://127.0.0.1:15693"),
    )
    s.api = Api(base, urllib.parse.unquote(p.username or "guest"), urllib.parse.unquote(p.password or "guest"))
    return s


@pytest.fixture(scope="session")
def reference():
    s = reference_server()
    if s is None:
        pytest.skip("REFERENCE_HTTP_URL not set: no reference RabbitMQ to compare with")
    return s


@pytest.fixture
def uniq(request):
    """A name unique to this test: `uniq('q')` -> 'test_x.q.1a2b3c4d'."""
    base = request.node.name.replace("[", ".").replace("]", "")
    tag = uuid.uuid4().hex[:8]

    def make(suffix=""):
        return f"{base}.{suffix}.{tag}" if suffix else f"{base}.{tag}"

    return make


@pytest.fixture
def warren_private():
    """A broker of this test's own (for tests that change broker-wide settings)."""
    with spawn() as s:
        yield s
