"""Virtual host limits (max-connections, max-queues) and user limits (max-connections,
max-channels), set through the management API (/api/vhost-limits, /api/user-limits) and
enforced on real pika connections, with RabbitMQ's codes and texts.

Recorded against RabbitMQ 3.10.8 (the same tests pass against it):
- a connection past a vhost's max-connections: 530 NOT_ALLOWED "access to vhost 'v'
  refused for user 'u': connection limit (N) is reached", at connection.open;
- past a user's max-connections: 530 "connection refused for user 'u': user connection
  limit (N) is reached";
- a new queue past a vhost's max-queues: channel closed 406 PRECONDITION_FAILED "cannot
  declare queue 'q': queue limit in vhost 'v' (N) is reached"; redeclaring an existing
  queue is fine;
- a channel past a user's max-channels (counted over all its connections): connection
  closed 530 "number of channels opened for user 'u' has reached the maximum allowed user
  limit of (N)";
- removing a limit lifts it at once; -1 means no limit.
"""

import uuid

import pika
import pytest

from helpers import broker_with_http, eventually, quote


@pytest.fixture(scope="module")
def mgmt(broker):
    with broker_with_http(broker) as (b, http):
        yield b, http


@pytest.fixture
def world(mgmt):
    """A fresh vhost and user (both with full permissions there), removed afterwards."""
    b, http = mgmt
    tag = uuid.uuid4().hex[:8]
    vhost, user = f"lim-{tag}", f"limu-{tag}"
    assert http.put(f"/api/vhosts/{quote(vhost)}")[0] in (201, 204)
    assert http.put(f"/api/users/{user}", {"password": "pw", "tags": ""})[0] in (201, 204)
    for u in ("guest", user):
        http.put(f"/api/permissions/{quote(vhost)}/{u}",
                 {"configure": ".*", "write": ".*", "read": ".*"})
    conns = []

    def connect(as_user="guest", password="guest"):
        c = pika.BlockingConnection(pika.ConnectionParameters(
            b.host, b.port, vhost, pika.PlainCredentials(as_user, password),
            connection_attempts=1))
        conns.append(c)
        return c
    yield http, vhost, user, connect
    for c in conns:
        if c.is_open:
            c.close()
    http.delete(f"/api/vhosts/{quote(vhost)}")
    http.delete(f"/api/users/{user}")


def refused(connect, *args):
    with pytest.raises(pika.exceptions.AMQPConnectionError) as e:
        connect(*args)
    # pika wraps the connection.close the broker sent at connection.open
    return str(e.value)


def test_vhost_max_connections(world):
    http, vhost, _user, connect = world
    assert http.put(f"/api/vhost-limits/{quote(vhost)}/max-connections", {"value": 1})[0] == 204
    first = connect()
    text = refused(connect)
    assert "(530)" in text
    assert f"NOT_ALLOWED - access to vhost '{vhost}' refused for user 'guest': connection limit (1) is reached" in text
    first.close()

    def can_connect():
        try:
            return connect().is_open
        except pika.exceptions.AMQPConnectionError:
            return False
    eventually(can_connect, what="a connection once the first closed")
    assert http.delete(f"/api/vhost-limits/{quote(vhost)}/max-connections")[0] == 204
    connect()


def test_vhost_max_connections_zero_forbids(world):
    http, vhost, _user, connect = world
    http.put(f"/api/vhost-limits/{quote(vhost)}/max-connections", {"value": 0})
    assert "connection limit (0) is reached" in refused(connect)
    http.put(f"/api/vhost-limits/{quote(vhost)}/max-connections", {"value": -1})
    connect()


def test_vhost_max_queues(world):
    http, vhost, _user, connect = world
    http.put(f"/api/vhost-limits/{quote(vhost)}/max-queues", {"value": 2})
    ch = connect().channel()
    ch.queue_declare("a")
    ch.queue_declare("b")
    ch.queue_declare("a")  # redeclaring is not a new queue
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare("c")
    assert e.value.reply_code == 406
    assert e.value.reply_text == (
        f"PRECONDITION_FAILED - cannot declare queue 'c': queue limit in vhost '{vhost}' (2) is reached")
    ch = connect().channel()
    ch.queue_delete("b")
    ch.queue_declare("c")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare("", exclusive=True)
    assert "cannot declare queue" in e.value.reply_text and "(2) is reached" in e.value.reply_text


def test_user_max_connections(world):
    http, _vhost, user, connect = world
    assert http.put(f"/api/user-limits/{user}/max-connections", {"value": 2})[0] == 204
    connect(user, "pw")
    connect(user, "pw")
    text = refused(connect, user, "pw")
    assert f"NOT_ALLOWED - connection refused for user '{user}': user connection limit (2) is reached" in text
    connect()  # other users are not limited
    assert http.delete(f"/api/user-limits/{user}/max-connections")[0] == 204
    connect(user, "pw")


def test_user_max_channels_counts_all_connections(world):
    http, _vhost, user, connect = world
    http.put(f"/api/user-limits/{user}/max-channels", {"value": 2})
    c1 = connect(user, "pw")
    c1.channel()
    c2 = connect(user, "pw")
    c2.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        c2.channel()
    assert e.value.reply_code == 530
    assert e.value.reply_text == (
        f"NOT_ALLOWED - number of channels opened for user '{user}' has reached the maximum allowed user limit of (2)")
    assert c1.is_open
    c1.channel().close()  # c1 had one channel; with c2 gone there is room again
