"""The configuration file in RabbitMQ's rabbitmq.conf syntax (`--config`), end to end (Warren
only): each key a migrating user has changes what real clients see; flags and WARREN_*
variables override the file; unknown keys are warned about by name; invalid values stop
the start with a message naming the key."""

import json
import os
import subprocess

import pika
import pytest
import requests

from conftest import WARREN_BIN, free_port, spawn_warren, wait_port


@pytest.fixture(autouse=True)
def warren_only(broker):
    if broker.is_reference:
        pytest.skip("Warren's own configuration file")


def write(tmp_path, text, name="warren.conf"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def run_fails(*args, env=None):
    r = subprocess.run([WARREN_BIN, "--amqp-port", "0", "--http-port", "0", "--mqtt-port", "0",
                        "--stomp-port", "0", "--prometheus-port", "0", "--web-mqtt-port", "0",
                        "--web-stomp-port", "0", *args],
                       capture_output=True, text=True, timeout=20, env=env)
    assert r.returncode != 0
    return r.stderr


def test_keys_reach_clients(tmp_path, uniq):
    amqp, http = free_port(), free_port()
    defs = tmp_path / "defs.json"
    defs.write_text(json.dumps({
        "vhosts": [{"name": "loaded"}],
        "queues": [{"name": "from-defs", "vhost": "loaded", "durable": True, "auto_delete": False,
                    "arguments": {}}],
        "permissions": [{"user": "admin", "vhost": "loaded", "configure": ".*", "write": ".*",
                         "read": ".*"}],
    }))
    conf = write(tmp_path, f"""
# a rabbitmq.conf a RabbitMQ user might bring
listeners.tcp.default = {amqp}
management.tcp.port = {http}
default_user = admin
default_pass = s3cret
default_vhost = main
heartbeat = 17
frame_max = 65536
channel_max = 99
max_message_size = 4096
consumer_timeout = 900000
vm_memory_high_watermark.absolute = 3GB
disk_free_limit.absolute = 10MB
load_definitions = {defs}
collect_statistics_interval = 2000
log.console.level = info
some.plugin.setting = 42
""")
    # The listener ports come from the file: the flags spawn_warren passes must not
    # override them, so run the broker directly.
    data = tmp_path / "data"
    log = open(tmp_path / "log", "wb")
    proc = subprocess.Popen([WARREN_BIN, "--bind", "127.0.0.1", "--mqtt-port", "0", "--stomp-port", "0",
                             "--prometheus-port", "0", "--web-mqtt-port", "0", "--web-stomp-port", "0",
                             "--data-dir", str(data), "--config", conf],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port("127.0.0.1", amqp, proc=proc)
        wait_port("127.0.0.1", http, proc=proc)
        creds = pika.PlainCredentials("admin", "s3cret")
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            "127.0.0.1", amqp, "main", creds, connection_attempts=1))
        tune = conn._impl.params
        assert (tune.heartbeat, tune.frame_max, tune.channel_max) == (17, 65536, 99)
        ch = conn.channel()
        q = uniq("q")
        ch.queue_declare(q)
        ch.basic_publish("", q, b"x" * 4096)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
            ch.basic_publish("", q, b"x" * 4097)
            ch.queue_declare(q, passive=True)
        assert e.value.reply_code == 406
        assert e.value.reply_text == "PRECONDITION_FAILED - message size 4097 is larger than configured max size 4096"
        conn.close()
        # guest was not created: the default user is admin
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", amqp, "main", connection_attempts=1))
        api = f"http://127.0.0.1:{http}/api"
        node = requests.get(f"{api}/nodes", auth=("admin", "s3cret"), timeout=5).json()[0]
        assert node["mem_limit"] == 3_000_000_000
        assert node["disk_free_limit"] == 10_000_000
        vhosts = {v["name"] for v in requests.get(f"{api}/vhosts", auth=("admin", "s3cret"), timeout=5).json()}
        assert {"main", "loaded"} <= vhosts
        assert requests.get(f"{api}/queues/loaded/from-defs", auth=("admin", "s3cret"), timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)
    text = open(tmp_path / "log", "rb").read().decode()
    assert "configuration key 'some.plugin.setting' (line 18) is not supported by Warren and was ignored" in text


def test_flags_and_environment_override_the_file(tmp_path):
    conf = write(tmp_path, "heartbeat = 17\nchannel_max = 99\n")
    with spawn_warren("--config", conf, "--heartbeat", "23") as b:
        c = b.connect()
        assert c._impl.params.heartbeat == 23  # the flag
        assert c._impl.params.channel_max == 99  # the file
        c.close()
    os.environ["WARREN_CHANNEL_MAX"] = "42"
    try:
        with spawn_warren("--config", conf) as b:
            c = b.connect()
            assert (c._impl.params.heartbeat, c._impl.params.channel_max) == (17, 42)
            c.close()
    finally:
        del os.environ["WARREN_CHANNEL_MAX"]


def test_loopback_users(tmp_path):
    """`loopback_users = none` lets guest in from any address (RabbitMQ's way to open
    guest up); the default refuses guest from a non-loopback address."""
    ip = non_loopback_ip()
    if ip is None:
        pytest.skip("no non-loopback address on this machine")
    for conf_text, allowed in [("loopback_users.guest = false\n", True), ("", False)]:
        conf = write(tmp_path, conf_text or "# nothing\n", name=f"l{int(allowed)}.conf")
        port = free_port()
        proc = subprocess.Popen([WARREN_BIN, "--bind", "0.0.0.0", "--amqp-port", str(port), "--http-port", "0",
                                 "--mqtt-port", "0", "--stomp-port", "0", "--prometheus-port", "0",
                                 "--web-mqtt-port", "0", "--web-stomp-port", "0",
                                 "--data-dir", str(tmp_path / f"d{int(allowed)}"), "--config", conf],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port("127.0.0.1", port, proc=proc)
            params = pika.ConnectionParameters(ip, port, connection_attempts=1)
            if allowed:
                pika.BlockingConnection(params).close()
            else:
                with pytest.raises(pika.exceptions.ProbableAuthenticationError):
                    pika.BlockingConnection(params)
        finally:
            proc.terminate()
            proc.wait(10)


def non_loopback_ip():
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.255.255.255", 1))
        ip = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if ip.startswith("127.") else ip


@pytest.mark.parametrize("text, message", [
    ("heartbeat = soon\n", "line 1: invalid value for 'heartbeat': 'soon' is not a non-negative integer"),
    ("\nframe_max = 100\n", "line 2: invalid value for 'frame_max': error: invalid value '100'"),
    ("listeners.tcp.default = nowhere:5672\n", "invalid value for 'listeners.tcp.default'"),
    ("vm_memory_high_watermark.absolute = lots\n", "vm_memory_high_watermark.absolute"),
    ("management.ssl.port = 15671\n", "--https-port needs a certificate"),
    ("mqtt.listeners.ssl.default = 8883\n", "--mqtts-port needs a certificate"),
    ("ssl_options.password = secret\n", "'ssl_options.password' is not supported by Warren"),
    ("this is not a setting\n", "line 1: expected 'key = value'"),
])
def test_invalid_values_refuse_to_start(tmp_path, text, message):
    conf = write(tmp_path, text)
    err = run_fails("--config", conf, "--data-dir", str(tmp_path / "d"))
    assert message in err, err


def test_missing_file_refuses_to_start(tmp_path):
    err = run_fails("--config", str(tmp_path / "nope.conf"), "--data-dir", str(tmp_path / "d"))
    assert "cannot read configuration file" in err
