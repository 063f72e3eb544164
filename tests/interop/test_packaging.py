"""The packaging files (Warren only): the systemd unit's command line starts a broker
that serves AMQP, the container's configuration file is valid and opens guest to
non-loopback clients as RabbitMQ's image does, and the Dockerfile exposes exactly the
ports of Warren's listeners. (No container engine runs here, so the image itself is not
built in CI.)"""

import os
import re
import shlex
import subprocess

import pika
import pytest

from conftest import ROOT, WARREN_BIN, free_port, wait_port


@pytest.fixture(autouse=True)
def warren_only(broker):
    if broker.is_reference:
        pytest.skip("Warren's packaging")


def test_systemd_unit_command_line_runs(tmp_path):
    unit = open(os.path.join(ROOT, "packaging", "warren.service")).read()
    assert re.search(r"^User=warren$", unit, re.M) and re.search(r"^KillSignal=SIGTERM$", unit, re.M)
    exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1)
    argv = shlex.split(exec_start.replace("$WARREN_ARGS", ""))
    assert argv[0] == "/usr/local/bin/warren"
    port = free_port()
    # the unit's own flags, with this test's binary, data directory and free ports
    argv = [WARREN_BIN] + [a if a != "/var/lib/warren" else str(tmp_path / "data") for a in argv[1:]]
    argv += ["--bind", "127.0.0.1", "--amqp-port", str(port), "--http-port", "0", "--mqtt-port", "0",
             "--stomp-port", "0", "--prometheus-port", "0", "--web-mqtt-port", "0", "--web-stomp-port", "0"]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port("127.0.0.1", port, proc=p)
        pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port, connection_attempts=1)).close()
        assert os.path.isdir(tmp_path / "data")
    finally:
        p.terminate()
        assert p.wait(10) == 0, "SIGTERM (the unit's KillSignal) did not stop the broker cleanly"


def test_container_configuration_opens_guest_to_the_network(tmp_path):
    ip = None
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.255.255.255", 1))
        ip = s.getsockname()[0]
    except OSError:
        pass
    finally:
        s.close()
    if not ip or ip.startswith("127."):
        pytest.skip("no non-loopback address on this machine")
    port = free_port()
    env = {**os.environ, "WARREN_CONFIG": os.path.join(ROOT, "packaging", "docker.conf"),
           "WARREN_DATA_DIR": str(tmp_path / "data")}
    p = subprocess.Popen([WARREN_BIN, "--bind", "0.0.0.0", "--amqp-port", str(port), "--http-port", "0",
                          "--mqtt-port", "0", "--stomp-port", "0", "--prometheus-port", "0",
                          "--web-mqtt-port", "0", "--web-stomp-port", "0"],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port("127.0.0.1", port, proc=p)
        pika.BlockingConnection(pika.ConnectionParameters(ip, port, connection_attempts=1)).close()
    finally:
        p.terminate()
        p.wait(10)


def test_dockerfile_exposes_the_listener_ports():
    docker = open(os.path.join(ROOT, "Dockerfile")).read()
    exposed = {int(x) for line in re.findall(r"^EXPOSE (.*)$", docker, re.M) for x in line.split()}
    help_text = subprocess.run([WARREN_BIN, "--help"], capture_output=True, text=True, check=True).stdout
    defaults = {int(m) for m in re.findall(r"--(?:\w+-)*port <\w+>\n.*?\[default: (\d+)\]", help_text, re.S)}
    assert defaults, help_text
    assert exposed == defaults, f"EXPOSE {sorted(exposed)} vs listener defaults {sorted(defaults)}"
    assert re.search(r"^USER warren$", docker, re.M), "the image must not run as root"
    assert "WARREN_DATA_DIR=/var/lib/warren" in docker and "VOLUME /var/lib/warren" in docker
