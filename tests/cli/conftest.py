"""Fixtures for the warrenctl tests (tests/cli).

Every test runs the real `warrenctl` binary against a real Warren over real sockets, and
checks effects with real clients (pika for AMQP, requests for HTTP).

- `WARRENCTL_BIN` (default target/release/warrenctl) is the CLI under test;
- `WARREN_BIN` (default target/release/warren) is the broker, spawned on free ports with
  a temporary data directory, as tests/http does.

Differential tests also run RabbitMQ's own `rabbitmqctl` against a reference RabbitMQ
(`REFERENCE_HTTP_URL`, e.g. http://guest:guest@127.0.0.1:15673, node `REFERENCE_NODE`,
default reference@localhost) and warrenctl against that broker's HTTP API, and compare
what they print; they are skipped when REFERENCE_HTTP_URL is not set.
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


def binary(env, name):
    b = os.environ.get(env)
    if b:
        return b
    for profile in ("release", "debug"):
        c = os.path.join(ROOT, "target", profile, name)
        if os.path.exists(c):
            return c
    raise RuntimeError(f"no {name}: build it with `cargo build --release` or set {env}")


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


class Result:
    def __init__(self, p):
        self.code = p.returncode
        self.out = p.stdout
        self.err = p.stderr

    @property
    def lines(self):
        return self.out.splitlines()

    def __repr__(self):
        return f"<exit {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}>"


def run_ctl(args, url, user="guest", password="guest", stdin=None, env=None, timeout=60):
    """Runs warrenctl with --url/--user/--password (left out when None)."""
    cmd = [binary("WARRENCTL_BIN", "warrenctl")]
    if url is not None:
        cmd += ["--url", url]
    if user is not None:
        cmd += ["--user", user]
    if password is not None:
        cmd += ["--password", password]
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith("WARRENCTL_")
    }
    # No config file of the machine's user may leak in.
    full_env["XDG_CONFIG_HOME"] = tempfile.gettempdir() + "/warrenctl-tests-no-config"
    full_env.update(env or {})
    p = subprocess.run(
        cmd + list(args),
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    return Result(p)


class Server:
    def __init__(self, amqp_port, http_url, proc=None, tmp=None):
        self.amqp_port = amqp_port
        self.http_url = http_url
        self.proc = proc
        self.tmp = tmp

    def ctl(self, *args, **kw):
        return run_ctl(args, self.http_url, **kw)

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

    def api(self, method, path, user="guest", password="guest", **kw):
        kw.setdefault("timeout", 60)
        return requests.request(method, self.http_url + path, auth=(user, password), **kw)

    def log(self):
        if not self.tmp:
            return ""
        with open(os.path.join(self.tmp, "broker.log"), "rb") as f:
            return f.read().decode(errors="replace")


def start_warren():
    tmp = tempfile.mkdtemp(prefix="warrenctl-test-")
    amqp, http = free_port(), free_port()
    log = open(os.path.join(tmp, "broker.log"), "wb")
    proc = subprocess.Popen(
        [
            binary("WARREN_BIN", "warren"),
            "--bind", "127.0.0.1",
            "--amqp-port", str(amqp),
            "--http-port", str(http),
            "--prometheus-port", "0",
            "--mqtt-port", "0",
            "--stomp-port", "0",
            "--web-mqtt-port", "0",
            "--web-stomp-port", "0",
            "--data-dir", os.path.join(tmp, "data"),
            "--node-name", "warren@localhost",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    for p in (amqp, http):
        wait_port(p, proc)
    return Server(amqp, f"http://127.0.0.1:{http}", proc, tmp)


def stop(server):
    p = server.proc
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    shutil.rmtree(server.tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def warren():
    s = start_warren()
    try:
        yield s
    finally:
        stop(s)


@pytest.fixture
def warren_private():
    """A broker of this test's own (for tests that look at everything on a broker)."""
    s = start_warren()
    try:
        yield s
    finally:
        stop(s)


@pytest.fixture
def uniq(request):
    """A name unique to this test: `uniq('q')` -> 'test_x.q.1a2b3c4d'."""
    base = request.node.name.replace("[", ".").replace("]", "")
    tag = uuid.uuid4().hex[:8]

    def make(suffix=""):
        return f"{base}.{suffix}.{tag}" if suffix else f"{base}.{tag}"

    return make


class Reference:
    """A reference RabbitMQ, driven both by its rabbitmqctl and by warrenctl over HTTP."""

    def __init__(self, url):
        p = urllib.parse.urlparse(url)
        self.http_url = f"{p.scheme}://{p.hostname}:{p.port}"
        self.user = urllib.parse.unquote(p.username or "guest")
        self.password = urllib.parse.unquote(p.password or "guest")
        self.node = os.environ.get("REFERENCE_NODE", "reference@localhost")

    def rabbitmqctl(self, *args):
        p = subprocess.run(
            ["rabbitmqctl", "-n", self.node, *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Result(p)

    def ctl(self, *args, **kw):
        return run_ctl(args, self.http_url, self.user, self.password, **kw)


@pytest.fixture(scope="session")
def reference():
    url = os.environ.get("REFERENCE_HTTP_URL")
    if not url:
        pytest.skip("REFERENCE_HTTP_URL not set: no reference RabbitMQ to compare with")
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed")
    return Reference(url)
