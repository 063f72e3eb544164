"""Fixtures for the web UI tests (tests/ui): a private Warren and headless Chromium.

The broker is target/release/warren (or WARREN_BIN), started on free ports with its own
data directory and `WARREN_STATS_INTERVAL=1` so that rates move within a second or two.
The browser is Debian's `chromium` driven by `chromium-driver` through Selenium (no
browser download: CHROMIUM_BIN and CHROMEDRIVER_BIN override the paths).

Every test ends by checking the browser's console: a JavaScript error or a
Content-Security-Policy violation fails the test that caused it.
"""

import base64
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
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def broker_bin():
    b = os.environ.get("WARREN_BIN")
    if b:
        return b
    for c in ("release", "debug"):
        p = os.path.join(ROOT, "target", c, "warren")
        if os.path.exists(p):
            return p
    raise RuntimeError("no broker: run `cargo build --release -p warren` or set WARREN_BIN")


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


def q(s):
    """One URL path segment ("/" becomes %2F)."""
    return urllib.parse.quote(s, safe="")


class Broker:
    """A private Warren: its ports, an API client, AMQP connections."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="warren-ui-test-")
        self.amqp_port, self.http_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")}
        env.setdefault("WARREN_STATS_INTERVAL", "1")
        self.log = open(os.path.join(self.tmp, "broker.log"), "wb")
        self.proc = subprocess.Popen(
            [
                broker_bin(),
                "--bind", "127.0.0.1",
                "--amqp-port", str(self.amqp_port),
                "--http-port", str(self.http_port),
                "--mqtt-port", "0",
                "--stomp-port", "0",
                "--web-mqtt-port", "0",
                "--web-stomp-port", "0",
                "--prometheus-port", "0",
                "--data-dir", os.path.join(self.tmp, "data"),
                "--node-name", "warren@localhost",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        wait_port(self.amqp_port, self.proc)
        wait_port(self.http_port, self.proc)

    # ---- HTTP API (to set up and to check what the UI did) ----
    def api(self, method, path, body=None, auth=("guest", "guest"), **kw):
        kw.setdefault("timeout", 30)
        if body is not None:
            kw["json"] = body
        return requests.request(method, self.base + path, auth=auth, **kw)

    def get(self, path, **kw):
        r = self.api("GET", path, **kw)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
        return r.json()

    def exists(self, path):
        return self.api("GET", path).status_code == 200

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

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def make_driver(width=1400, height=1000, download_dir=None):
    """Headless Chromium (Debian's) through chromium-driver."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--no-first-run",
        "--hide-scrollbars",
        "--lang=en-US",
        "--force-device-scale-factor=1",
        f"--window-size={width},{height}",
    ):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver"))
    d = webdriver.Chrome(service=service, options=opts)
    if download_dir:
        d.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": download_dir})
    return d


class UI:
    """The browser on Warren's UI, with the waits tests need."""

    def __init__(self, driver, broker, download_dir):
        self.d = driver
        self.broker = broker
        self.download_dir = download_dir

    # ---- navigation ----
    def open(self, route="", login=True, refresh_ms=2000):
        """Opens `#/route`, logged in as guest (credentials put in sessionStorage as the
        login form would) unless login=False."""
        self.d.get(self.broker.base + "/")
        token = base64.b64encode(b"guest:guest").decode()
        if login:
            self.d.execute_script(
                "sessionStorage.setItem('warren.auth', arguments[0]);"
                "sessionStorage.setItem('warren.user', 'guest');"
                "localStorage.setItem('warren.refresh', arguments[1]);",
                token, str(refresh_ms),
            )
        else:
            self.d.execute_script("sessionStorage.clear(); localStorage.setItem('warren.refresh', arguments[0]);", str(refresh_ms))
        self.d.get(self.broker.base + "/#/" + route)
        self.d.refresh()
        if login:
            self.wait_css("main#main")
        else:
            self.wait_css("#login-username")

    def go(self, route):
        """Follows an in-app route (no reload)."""
        self.d.execute_script("location.hash = arguments[0]", "#/" + route)

    # ---- finding and waiting ----
    def wait(self, cond, timeout=15, what="condition"):
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: cond())
        except TimeoutException:
            raise AssertionError(f"timed out waiting for {what}") from None

    def css(self, sel, root=None):
        return (root or self.d).find_elements(By.CSS_SELECTOR, sel)

    def wait_css(self, sel, timeout=15, visible=True):
        def find():
            for e in self.css(sel):
                if not visible or e.is_displayed():
                    return e
            return None
        return self.wait(find, timeout, f"element {sel}")

    def wait_text(self, sel, text, timeout=15):
        """The first element matching `sel` whose text contains `text`."""
        def find():
            for e in self.css(sel):
                if text in e.text:
                    return e
            return None
        return self.wait(find, timeout, f"{sel} containing {text!r}")

    def wait_gone(self, sel, text=None, timeout=15):
        def gone():
            return not any(text is None or text in e.text for e in self.css(sel))
        self.wait(gone, timeout, f"{sel} {text or ''} to go")

    def click(self, sel, text=None):
        e = self.wait_text(sel, text) if text else self.wait_css(sel)
        self.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", e)
        e.click()
        return e

    def button(self, text, root=None):
        """A visible button by its text (in the open dialog first). `root` may be a
        function finding the element to search in, for rows that live refreshes redraw."""
        def find():
            if callable(root):
                scopes = [root()]
            else:
                scopes = [root] if root else (self.css("dialog[open]") or [self.d])
            for s in scopes:
                for b in self.css("button", s):
                    if b.is_displayed() and b.text.strip() == text:
                        return b
            return None
        b = self.wait(find, what=f"button {text!r}")
        self.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", b)
        return b

    def press(self, text, root):
        """Clicks the button `text` inside the element `root()` finds, finding both
        afresh until the click lands (live refreshes redraw rows under the pointer)."""
        def go():
            r = root()
            if r is None:
                return False
            for b in self.css("button", r):
                if b.is_displayed() and b.text.strip() == text:
                    self.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", b)
                    b.click()
                    return True
            return False
        self.wait(go, what=f"button {text!r} to click")

    def follow(self, root):
        """Clicks the first link inside the element `root()` finds (as `press`)."""
        def go():
            r = root()
            links = self.css("a", r) if r is not None else []
            if not links:
                return False
            links[0].click()
            return True
        self.wait(go, what="a link to follow")

    def row_named(self, name, sel="main tbody tr"):
        """The row (now, or None) of a table whose data-name is `name`."""
        return next((r for r in self.css(sel) if r.get_attribute("data-name") == name), None)

    def text_row(self, sel, text):
        """The first element (now, or None) matching `sel` whose text contains `text`."""
        return next((e for e in self.css(sel) if text in e.text), None)

    def fill(self, el, value):
        el.clear()
        el.send_keys(value)

    def dialog(self):
        return self.wait_css("dialog[open]")

    def field(self, name, root=None):
        scope = root or self.dialog()
        return self.wait(lambda: next((e for e in self.css(f"[name='{name}']", scope) if e.is_displayed()), None), what=f"field {name}")

    def select(self, el, value):
        Select(el).select_by_value(value)

    def confirm(self, text):
        """Clicks `text` in the open confirmation dialog."""
        d = self.dialog()
        self.button(text, d).click()
        self.wait(lambda: not self.css("dialog[open]"), what="dialog to close")

    def toast(self, kind="ok", text=None, timeout=15):
        """The text of the newest toast of that kind (ok, error, warn) containing `text`,
        waiting for it (read from the DOM: a toast fades in)."""
        def find():
            for e in reversed(self.css(f".toast[data-kind='{kind}']")):
                t = e.get_attribute("textContent")
                if t and (text is None or text in t):
                    return t
            return None
        return self.wait(find, timeout, f"a {kind} toast" + (f" saying {text!r}" if text else ""))

    def dismiss_toasts(self):
        self.d.execute_script("document.querySelectorAll('.toast').forEach(t => t.remove())")

    def row(self, list_id, name, timeout=15):
        """A row of a list table by its object's name."""
        return self.wait(lambda: next((r for r in self.css(f"table[data-list='{list_id}'] tbody tr") if r.get_attribute("data-name") == name), None),
                         timeout, f"row {name!r} in {list_id}")

    def no_row(self, list_id, name, timeout=15):
        self.wait(lambda: not any(r.get_attribute("data-name") == name for r in self.css(f"table[data-list='{list_id}'] tbody tr")),
                  timeout, f"row {name!r} gone from {list_id}")

    def console_errors(self):
        """Severe console entries, except failed requests (the API's 4xx answers)."""
        out = []
        for e in self.d.get_log("browser"):
            if e["level"] != "SEVERE":
                continue
            if "Failed to load resource" in e["message"]:
                continue
            out.append(e["message"])
        return out


@pytest.fixture(scope="session")
def broker():
    b = Broker()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="session")
def download_dir():
    d = tempfile.mkdtemp(prefix="warren-ui-downloads-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def driver(download_dir):
    d = make_driver(download_dir=download_dir)
    try:
        yield d
    finally:
        d.quit()


@pytest.fixture
def ui(driver, broker, download_dir):
    u = UI(driver, broker, download_dir)
    driver.get_log("browser")  # start from a clean console
    yield u
    errors = u.console_errors()
    assert not errors, "browser console errors:\n" + "\n".join(errors)


@pytest.fixture
def uniq(request):
    """A name unique to this test: uniq('q') -> 'test_x-q-1a2b3c'."""
    base = request.node.name.replace("[", "-").replace("]", "").replace("test_", "")
    tag = uuid.uuid4().hex[:6]
    return lambda suffix="": f"{base}-{suffix}-{tag}" if suffix else f"{base}-{tag}"
