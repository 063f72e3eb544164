"""Fixtures for warren-perf's own tests (tests/perf).

warren-perf runs as a user runs it (the release binary, over real sockets) against a
real Warren started here on free ports with a temporary data dir, sometimes through
`FaultyProxy`, a TCP proxy that drops or duplicates one delivery on its way from the
broker to warren-perf, so the tests can show that a run which loses or duplicates a
message says so and fails.

Binaries: WARREN_BIN and WARREN_PERF_BIN, default target/release/{warren,warren-perf}.
"""

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def binary(env, name):
    path = os.environ.get(env) or os.path.join(ROOT, "target", "release", name)
    if not os.path.exists(path):
        raise RuntimeError(f"{path} missing: cargo build --release --workspace (or set {env})")
    return path


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


class Broker:
    def __init__(self, port, proc):
        self.port = port
        self.proc = proc
        self.uri = f"amqp://guest:guest@127.0.0.1:{port}/%2f"


@pytest.fixture(scope="session")
def broker():
    data = tempfile.mkdtemp(prefix="warren-perf-test-")
    port = free_port()
    args = [binary("WARREN_BIN", "warren"), "--amqp-port", str(port), "--data-dir", data]
    for flag in ("--http-port", "--mqtt-port", "--stomp-port", "--web-mqtt-port",
                 "--web-stomp-port", "--prometheus-port"):
        args += [flag, "0"]
    log = open(os.path.join(data, "warren.log"), "w")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc)
        yield Broker(port, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def run_perf(*args, timeout=120):
    """Runs warren-perf; returns (exit code, stdout, stderr)."""
    p = subprocess.run([binary("WARREN_PERF_BIN", "warren-perf"), *map(str, args)],
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class FaultyProxy:
    """Forwards TCP to `upstream_port`; on the broker-to-client side it counts
    `basic.deliver` frames over all connections and, for the `nth` one (1-based), either
    drops the whole delivery (method, header and body frames), sends it twice, or swaps
    it with the next delivery on the same channel."""

    DELIVER = (60, 60)

    def __init__(self, upstream_port, nth, mode):
        assert mode in ("drop", "duplicate", "swap")
        self.upstream_port = upstream_port
        self.nth = nth
        self.mode = mode
        self.delivers = 0
        self.done = False
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.uri = f"amqp://guest:guest@127.0.0.1:{self.port}/%2f"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._frames, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _claim(self):
        with self.lock:
            self.delivers += 1
            return self.delivers == self.nth

    def _frames(self, src, dst):
        buf = b""
        # Per channel, the deliveries being held back: those complete, and the one in
        # progress (bytes so far, body bytes left, or None before its header).
        held = {}
        want = 2 if self.mode == "swap" else 1
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                buf += data
                out = bytearray()
                while len(buf) >= 7:
                    kind, channel, size = struct.unpack(">BHI", buf[:7])
                    if len(buf) < size + 8:
                        break
                    frame, buf = buf[:size + 8], buf[size + 8:]
                    payload = frame[7:7 + size]
                    h = held.get(channel)
                    if kind == 1 and struct.unpack(">HH", payload[:4]) == self.DELIVER \
                            and (h is not None or self._claim()):
                        if h is None:
                            h = held[channel] = {"done": []}
                        h["cur"], h["left"] = bytearray(frame), None
                        continue
                    if h is not None and h.get("cur") is not None and kind in (2, 3):
                        h["cur"] += frame
                        if kind == 2:
                            h["left"] = struct.unpack(">Q", payload[4:12])[0]
                        else:
                            h["left"] -= len(payload)
                        if h["left"] == 0:
                            h["done"].append(h["cur"])
                            h["cur"] = None
                            if len(h["done"]) == want:
                                del held[channel]
                                d = h["done"]
                                if self.mode == "duplicate":
                                    out += d[0] + d[0]
                                elif self.mode == "swap":
                                    out += d[1] + d[0]
                                self.done = True
                        continue
                    out += frame
                if out:
                    dst.sendall(out)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.listener.close()
