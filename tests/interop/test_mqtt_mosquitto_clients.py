"""Debian's mosquitto_pub and mosquitto_sub against the broker: MQTT 3.1, 3.1.1 and 5,
QoS 0 and 1, retained messages, wildcards."""

import shutil
import subprocess
import time

import pytest

from test_cross_protocol_fixtures import *  # noqa: F401,F403

if not shutil.which("mosquitto_pub"):
    pytest.fail("mosquitto-clients missing: apt-get install -y mosquitto-clients", pytrace=False)


def mosquitto_sub(proto, topic, count, version="mqttv311", qos=1, extra=()):
    return subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(proto.mqtt_port), "-u", "guest",
         "-P", "guest", "-V", version, "-q", str(qos), "-t", topic, "-C", str(count), "-v",
         "-W", "10", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def mosquitto_pub(proto, topic, message, version="mqttv311", qos=1, extra=()):
    subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(proto.mqtt_port), "-u", "guest",
         "-P", "guest", "-V", version, "-q", str(qos), "-t", topic, "-m", message, *extra],
        check=True, timeout=10)


@pytest.mark.parametrize("version", ["mqttv31", "mqttv311", "mqttv5"])
def test_pub_sub(proto, uniq_topic, version):
    if version == "mqttv5":
        require_warren(proto, "RabbitMQ 3.10 has no MQTT 5")
    sub = mosquitto_sub(proto, f"{uniq_topic}/#", 2, version)
    time.sleep(0.5)
    mosquitto_pub(proto, f"{uniq_topic}/a", "one", version, qos=1)
    mosquitto_pub(proto, f"{uniq_topic}/b/c", "two", version, qos=0)
    out, err = sub.communicate(timeout=15)
    assert sub.returncode == 0, err
    assert out.decode().splitlines() == [f"{uniq_topic}/a one", f"{uniq_topic}/b/c two"]


def test_retained_message_for_a_late_subscriber(proto, uniq_topic):
    mosquitto_pub(proto, f"{uniq_topic}/state", "on", extra=["-r"])
    sub = mosquitto_sub(proto, f"{uniq_topic}/state", 1)
    out, err = sub.communicate(timeout=15)
    assert out.decode().splitlines() == [f"{uniq_topic}/state on"]
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(proto.mqtt_port), "-u", "guest",
                    "-P", "guest", "-t", f"{uniq_topic}/state", "-r", "-n"], check=True, timeout=10)


def test_bad_password_is_refused(proto, uniq_topic):
    r = subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(proto.mqtt_port), "-u", "guest",
         "-P", "nope", "-t", f"{uniq_topic}/x", "-m", "m"],
        capture_output=True, timeout=10)
    assert r.returncode != 0
    assert b"not authorised" in r.stderr.lower() or b"bad user name" in r.stderr.lower() \
        or b"refused" in r.stderr.lower(), r.stderr
