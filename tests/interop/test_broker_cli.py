"""The warren binary itself: flags, WARREN_* environment equivalents, disabled listeners,
graceful shutdown on SIGTERM/SIGINT.

These start private brokers, so they only run against Warren.
"""

import os
import signal
import socket
import subprocess
import tempfile
import time

import pika
import pytest

from conftest import WARREN_BIN, free_port, spawn_warren, wait_port


@pytest.fixture(autouse=True)
def warren_only(broker):
    if broker.is_reference:
        pytest.skip("starts its own Warren processes")


def connectable(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_closes_connections_with_connection_forced_and_exits_cleanly(sig):
    with spawn_warren() as b:
        conn = b.connect()
        ch = conn.channel()
        ch.queue_declare("", exclusive=True)
        b.proc.send_signal(sig)
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                conn.process_data_events(time_limit=0.1)
        assert (info.value.reply_code, info.value.reply_text) == (
            320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'")
        assert b.proc.wait(timeout=10) == 0


def test_port_zero_disables_a_listener_and_env_sets_ports():
    amqp = free_port()
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "WARREN_AMQP_PORT": str(amqp), "WARREN_BIND": "127.0.0.1",
               "WARREN_HTTP_PORT": "0", "WARREN_MQTT_PORT": "0", "WARREN_STOMP_PORT": "0",
               "WARREN_PROMETHEUS_PORT": "0", "WARREN_DATA_DIR": os.path.join(d, "data")}
        p = subprocess.Popen([WARREN_BIN], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            wait_port("127.0.0.1", amqp, proc=p)
            c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", amqp))
            c.close()
            assert os.path.isdir(os.path.join(d, "data"))
        finally:
            p.terminate()
            assert p.wait(timeout=10) == 0
        # --amqp-port 0: nothing listens for AMQP
        port = free_port()
        p = subprocess.Popen([WARREN_BIN, "--bind", "127.0.0.1", "--amqp-port", "0",
                              "--http-port", "0", "--mqtt-port", "0", "--stomp-port", "0",
                              "--prometheus-port", "0", "--web-mqtt-port", "0", "--web-stomp-port", "0", "--data-dir", os.path.join(d, "d2")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            assert p.poll() is None, "broker with every listener disabled should keep running"
            assert not connectable(port)
        finally:
            p.terminate()
            assert p.wait(timeout=10) == 0


def test_port_in_use_is_a_clear_startup_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with tempfile.TemporaryDirectory() as d:
            r = subprocess.run([WARREN_BIN, "--bind", "127.0.0.1", "--amqp-port", str(port),
                                "--http-port", "0", "--mqtt-port", "0", "--stomp-port", "0",
                                "--prometheus-port", "0", "--web-mqtt-port", "0", "--web-stomp-port", "0", "--data-dir", d],
                               capture_output=True, timeout=10)
    assert r.returncode != 0
    assert f"cannot listen for AMQP 0-9-1 on 127.0.0.1:{port}" in r.stderr.decode()


def test_invalid_flag_value_is_refused():
    r = subprocess.run([WARREN_BIN, "--disk-free-limit", "12XB"], capture_output=True, timeout=10)
    assert r.returncode != 0
    assert "unknown unit 'XB'" in r.stderr.decode()
