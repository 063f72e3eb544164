"""Connection limits over MQTT and STOMP: a vhost's and a user's `max-connections` count
the connections of every protocol, and an MQTT or STOMP login past a limit is refused as
RabbitMQ refuses it. Runs against Warren and the reference RabbitMQ.

Recorded against RabbitMQ 3.10.8:
- MQTT 3.1.1 CONNECT past a vhost's or a user's limit: CONNACK return code 5 (not
  authorized). MQTT 5 (RabbitMQ 3.13, not in 3.10; Warren only): reason code 0x97, quota
  exceeded.
- STOMP CONNECT past either limit: ERROR with `message:Bad CONNECT` and the body
  "Virtual host 'v' access denied" (the same answer as for a vhost without permission).
- MQTT and STOMP connections count towards the limits AMQP connections are refused by.
"""

import time
import uuid

import pika
import pytest

from test_cross_protocol_fixtures import *  # noqa: F401,F403
from test_cross_protocol_fixtures import _q, connect_packet, raw_mqtt, raw_stomp

CONNACK = 0x20


@pytest.fixture
def world(proto):
    """A fresh vhost and user, both with full permissions there, removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    vhost, user = f"plim-{tag}", f"plimu-{tag}"
    api = proto.api
    api.ok("PUT", f"/api/vhosts/{_q(vhost)}")
    api.ok("PUT", f"/api/users/{user}", {"password": "pw", "tags": ""})
    for u in ("guest", user):
        api.ok("PUT", f"/api/permissions/{_q(vhost)}/{u}", {"configure": ".*", "write": ".*", "read": ".*"})
    opened = []
    yield api, vhost, user, opened
    for c in opened:
        try:
            c.close()
        except Exception:
            pass
    api.request("DELETE", f"/api/vhosts/{_q(vhost)}")
    api.request("DELETE", f"/api/users/{user}")


def mqtt_connack(proto, username, password, version=4, opened=None):
    """The CONNACK code of a raw CONNECT; the socket stays open (in `opened`) when the
    login succeeded."""
    m = raw_mqtt(proto)
    m.send(connect_packet(f"lim-{uuid.uuid4().hex[:8]}", version=version, username=username,
                          password=password))
    first, body = m.recv_packet()
    assert first == CONNACK
    code = body[1]
    if code == 0 and opened is not None:
        opened.append(m)
    else:
        m.close()
    return code


def stomp_connect(proto, vhost, login, passcode, opened=None):
    """The answer to a raw CONNECT: (command, headers, body)."""
    s = raw_stomp(proto)
    s.send(f"CONNECT\naccept-version:1.2\nhost:{vhost}\nlogin:{login}\npasscode:{passcode}\n\n\0".encode())
    frame = s.frame()
    if frame and frame[0] == "CONNECTED" and opened is not None:
        opened.append(s)
    else:
        s.close()
    return frame


def amqp(proto, vhost, user="guest", password="guest"):
    return pika.BlockingConnection(pika.ConnectionParameters(
        proto.host, proto.amqp_port, vhost, pika.PlainCredentials(user, password), connection_attempts=1))


def eventually_refused(attempt, refused, timeout=10):
    """Tries until an attempt is refused: the reference counts a new connection only
    once its tracking has caught up (Warren at once)."""
    deadline = time.time() + timeout
    while True:
        answer = attempt()
        if refused(answer) or time.time() > deadline:
            return answer
        time.sleep(0.2)


def set_limit(api, kind, name, value):
    if value is None:
        api.request("DELETE", f"/api/{kind}/{_q(name)}/max-connections")
    else:
        api.ok("PUT", f"/api/{kind}/{_q(name)}/max-connections", {"value": value})


def test_mqtt_past_the_vhost_limit_gets_not_authorized(proto, world):
    api, vhost, _user, opened = world
    set_limit(api, "vhost-limits", vhost, 1)
    assert mqtt_connack(proto, f"{vhost}:guest", "guest", opened=opened) == 0
    code = eventually_refused(lambda: mqtt_connack(proto, f"{vhost}:guest", "guest", opened=opened),
                              lambda c: c != 0)
    assert code == 5
    # the MQTT connection counts for AMQP too
    with pytest.raises(pika.exceptions.AMQPConnectionError) as e:
        amqp(proto, vhost)
    assert "connection limit (1) is reached" in str(e.value)
    # lifting the limit lets MQTT in at once
    set_limit(api, "vhost-limits", vhost, None)
    assert mqtt_connack(proto, f"{vhost}:guest", "guest", opened=opened) == 0


def test_mqtt_past_the_user_limit_gets_not_authorized(proto, world):
    api, vhost, user, opened = world
    set_limit(api, "user-limits", user, 1)
    opened.append(amqp(proto, vhost, user, "pw"))
    code = eventually_refused(lambda: mqtt_connack(proto, f"{vhost}:{user}", "pw", opened=opened),
                              lambda c: c != 0)
    assert code == 5
    # other users are not limited
    assert mqtt_connack(proto, f"{vhost}:guest", "guest", opened=opened) == 0


def test_mqtt5_past_a_limit_gets_quota_exceeded(proto, world):
    require_warren(proto, "MQTT 5 is RabbitMQ 3.13's")
    api, vhost, _user, opened = world
    set_limit(api, "vhost-limits", vhost, 0)
    assert mqtt_connack(proto, f"{vhost}:guest", "guest", version=5) == 0x97


def test_stomp_past_the_vhost_limit_gets_an_error_frame(proto, world):
    api, vhost, _user, opened = world
    set_limit(api, "vhost-limits", vhost, 1)
    assert stomp_connect(proto, vhost, "guest", "guest", opened)[0] == "CONNECTED"
    frame = eventually_refused(lambda: stomp_connect(proto, vhost, "guest", "guest", opened),
                               lambda f: f[0] != "CONNECTED")
    command, headers, body = frame
    assert command == "ERROR"
    assert headers["message"] == "Bad CONNECT"
    assert body == f"Virtual host '{vhost}' access denied".encode()
    # the STOMP connection counts for MQTT too
    assert mqtt_connack(proto, f"{vhost}:guest", "guest") == 5
    set_limit(api, "vhost-limits", vhost, None)
    assert stomp_connect(proto, vhost, "guest", "guest", opened)[0] == "CONNECTED"


def test_stomp_past_the_user_limit_gets_an_error_frame(proto, world):
    api, vhost, user, opened = world
    set_limit(api, "user-limits", user, 1)
    assert mqtt_connack(proto, f"{vhost}:{user}", "pw", opened=opened) == 0
    frame = eventually_refused(lambda: stomp_connect(proto, vhost, user, "pw", opened),
                               lambda f: f[0] != "CONNECTED")
    assert frame[0] == "ERROR" and frame[1]["message"] == "Bad CONNECT"
    assert frame[2] == f"Virtual host '{vhost}' access denied".encode()
    # the MQTT connection counts for AMQP's user limit too
    with pytest.raises(pika.exceptions.AMQPConnectionError) as e:
        amqp(proto, vhost, user, "pw")
    assert "user connection limit (1) is reached" in str(e.value)
