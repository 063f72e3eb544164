"""Deleting users, permissions, topic permissions and vhosts through the API, and what
AMQP clients see afterwards. Runs against Warren and, with REFERENCE_HTTP_URL, against the
reference RabbitMQ: the answers must be the same.

Recorded against RabbitMQ 3.10.8:
- a deleted user's open connections are closed: 320 "CONNECTION_FORCED - user 'u' is
  deleted"; logging in again: 403 "ACCESS_REFUSED - Login was refused using
  authentication mechanism PLAIN. For details see the broker logfile."; the API answers
  its credentials 401 "Login failed"; its permissions and topic permissions are gone
  (also for a new user of the same name);
- a deleted permission: open connections stay open; opening the vhost again: 530
  "NOT_ALLOWED - access to vhost 'v' refused for user 'u'";
- a deleted vhost: its connections are closed with 320 "CONNECTION_FORCED - vhost 'v' is
  deleted"; opening it: 530 "NOT_ALLOWED - vhost v not found"; permissions, topic
  permissions, policies, parameters and queues in it are gone, also for a new vhost of
  the same name;
- the connection's `auth_mechanism` is the SASL mechanism the client used.
"""

import os
import sys
import time

import pika
import pytest

from helpers import find_connection, local_port, q, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "interop"))
import amqp_raw as A  # noqa: E402

LOGIN_REFUSED = ("ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
                 "For details see the broker logfile.")
ALL = {"configure": ".*", "write": ".*", "read": ".*"}


@pytest.fixture(params=["warren", "rabbitmq"])
def server(request, warren):
    if request.param == "warren":
        return warren
    from conftest import reference_server

    ref = reference_server()
    if ref is None:
        pytest.skip("REFERENCE_HTTP_URL not set: no reference RabbitMQ to compare with")
    return ref


def amqp_open(server, user, password, vhost="/", mechanism="PLAIN"):
    """The handshake as far as it goes: ("open", connection) or (reply code, reply text)
    of the broker's connection.close."""
    c = A.start("127.0.0.1", server.amqp_port, mechanism=mechanism, user=user, password=password)
    m = c.read_method()
    if m.name == "connection.close":
        c.close()
        return m.args[0], m.args[1]
    assert m.name == "connection.tune", m
    c.send_method(0, "connection.tune-ok", m.args[0], m.args[1], 0)
    c.send_method(0, "connection.open", vhost, "", False)
    m = c.read_method()
    if m.name == "connection.close":
        c.close()
        return m.args[0], m.args[1]
    assert m.name == "connection.open-ok", m
    return "open", c


def opens(server, user, password, vhost="/"):
    r = amqp_open(server, user, password, vhost)
    if r[0] == "open":
        r[1].close()
        return True
    return r


def closed_by_broker(conn, timeout=10.0):
    """(reply code, reply text) the broker closed this pika connection with."""
    deadline = time.time() + timeout
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        while time.time() < deadline:
            conn.process_data_events(0.2)
    return e.value.reply_code, e.value.reply_text


def make_user(api, name, vhosts=("/",), tags="management"):
    assert api.put(f"/api/users/{q(name)}", {"password": "pw", "tags": tags}).status_code in (201, 204)
    for v in vhosts:
        assert api.put(f"/api/permissions/{q(v)}/{q(name)}", ALL).status_code in (201, 204)


def test_deleted_user_cannot_log_in_and_loses_its_permissions(server, uniq):
    api = server.api
    u = uniq("user")
    make_user(api, u)
    assert api.put(f"/api/topic-permissions/%2F/{q(u)}",
                   {"exchange": "amq.topic", "write": "^a", "read": "^b"}).status_code in (201, 204)
    assert opens(server, u, "pw") is True
    conn = server.connect(user=u, password="pw")
    assert api.delete(f"/api/users/{q(u)}").status_code == 204
    assert closed_by_broker(conn) == (320, f"CONNECTION_FORCED - user '{u}' is deleted")
    assert amqp_open(server, u, "pw") == (403, LOGIN_REFUSED)
    r = api.as_user(u, "pw").get("/api/whoami")
    assert (r.status_code, r.json()) == (401, {"error": "not_authorized", "reason": "Login failed"})
    assert api.get(f"/api/users/{q(u)}").status_code == 404
    assert api.get(f"/api/permissions/%2F/{q(u)}").status_code == 404
    assert [p for p in api.get("/api/permissions").json() if p["user"] == u] == []
    assert [t for t in api.get("/api/topic-permissions").json() if t["user"] == u] == []
    assert [x for x in api.get("/api/users").json() if x["name"] == u] == []
    assert api.delete(f"/api/users/{q(u)}").status_code == 404
    # A new user of the same name starts with nothing.
    assert api.put(f"/api/users/{q(u)}", {"password": "pw", "tags": ""}).status_code == 201
    try:
        assert api.get(f"/api/users/{q(u)}/permissions").json() == []
        assert api.get(f"/api/users/{q(u)}/topic-permissions").json() == []
        assert amqp_open(server, u, "pw") == (530, f"NOT_ALLOWED - access to vhost '/' refused for user '{u}'")
    finally:
        api.delete(f"/api/users/{q(u)}")


def test_bulk_deleted_users_cannot_log_in(server, uniq):
    api = server.api
    a, b = uniq("a"), uniq("b")
    make_user(api, a)
    make_user(api, b)
    assert api.post("/api/users/bulk-delete", {"users": [a, b]}).status_code == 204
    for u in (a, b):
        assert amqp_open(server, u, "pw") == (403, LOGIN_REFUSED)


def test_deleted_permission_refuses_the_vhost_but_leaves_connections_open(server, uniq):
    api = server.api
    u = uniq("user")
    make_user(api, u)
    try:
        conn = server.connect(user=u, password="pw")
        assert api.delete(f"/api/permissions/%2F/{q(u)}").status_code == 204
        conn.process_data_events(1.0)
        assert conn.is_open
        conn.close()
        assert amqp_open(server, u, "pw") == (530, f"NOT_ALLOWED - access to vhost '/' refused for user '{u}'")
        assert api.get(f"/api/permissions/%2F/{q(u)}").status_code == 404
        assert api.delete(f"/api/permissions/%2F/{q(u)}").status_code == 404
        # Granted again, it works again.
        assert api.put(f"/api/permissions/%2F/{q(u)}", ALL).status_code == 201
        assert opens(server, u, "pw") is True
    finally:
        api.delete(f"/api/users/{q(u)}")


def test_deleted_topic_permissions_are_gone(server, uniq):
    """RabbitMQ 3.10 deletes all of a user's topic permissions in the vhost, whatever the
    query string says."""
    api = server.api
    u = uniq("user")
    make_user(api, u)
    try:
        for x in ("amq.topic", "t2"):
            body = {"exchange": x, "write": "^w", "read": "^r"}
            # The resource is the user's topic permissions in the vhost: created once.
            want = 201 if x == "amq.topic" else 204
            assert api.put(f"/api/topic-permissions/%2F/{q(u)}", body).status_code == want
        got = api.get(f"/api/topic-permissions/%2F/{q(u)}").json()
        assert sorted(t["exchange"] for t in got) == ["amq.topic", "t2"]
        assert api.delete(f"/api/topic-permissions/%2F/{q(u)}?exchange=t2").status_code == 204
        assert api.get(f"/api/topic-permissions/%2F/{q(u)}").status_code == 404
        assert api.delete(f"/api/topic-permissions/%2F/{q(u)}").status_code == 404
        assert api.get(f"/api/users/{q(u)}/topic-permissions").json() == []
    finally:
        api.delete(f"/api/users/{q(u)}")


def test_deleted_vhost_cannot_be_opened_and_takes_everything_with_it(server, uniq):
    api = server.api
    v, u = uniq("vh"), uniq("user")
    assert api.put(f"/api/vhosts/{q(v)}", {"description": "doomed"}).status_code == 201
    make_user(api, u, vhosts=(v,))
    try:
        assert api.put(f"/api/topic-permissions/{q(v)}/{q(u)}",
                       {"exchange": "amq.topic", "write": ".*", "read": ".*"}).status_code == 201
        assert api.put(f"/api/policies/{q(v)}/p", {"pattern": ".*", "definition": {"max-length": 5}}).status_code == 201
        assert api.put(f"/api/vhost-limits/{q(v)}/max-queues", {"value": 10}).status_code == 204
        conn = server.connect(vhost=v, user=u, password="pw")
        ch = conn.channel()
        ch.queue_declare("kept", durable=True)
        ch.basic_publish("", "kept", b"m", pika.BasicProperties(delivery_mode=2))
        assert api.delete(f"/api/vhosts/{q(v)}").status_code == 204
        code, text = closed_by_broker(conn)
        # RabbitMQ says "is down" instead when the vhost's processes stop first.
        assert (code, text) == (320, f"CONNECTION_FORCED - vhost '{v}' is deleted") or (
            server.is_reference and (code, text) == (320, f"CONNECTION_FORCED - vhost '{v}' is down"))
        assert amqp_open(server, u, "pw", vhost=v) == (530, f"NOT_ALLOWED - vhost {v} not found")
        assert amqp_open(server, "guest", "guest", vhost=v) == (530, f"NOT_ALLOWED - vhost {v} not found")
        assert api.get(f"/api/vhosts/{q(v)}").status_code == 404
        assert api.delete(f"/api/vhosts/{q(v)}").status_code == 404
        assert [p for p in api.get("/api/permissions").json() if p["vhost"] == v] == []
        assert [t for t in api.get("/api/topic-permissions").json() if t["vhost"] == v] == []
        assert [p for p in api.get("/api/policies").json() if p["vhost"] == v] == []
        assert [x for x in api.get("/api/vhost-limits").json() if x["vhost"] == v] == []
        assert [x for x in api.get("/api/queues").json() if x["vhost"] == v] == []
        # A new vhost of the same name starts empty; its creator (guest) gets permissions,
        # nobody else.
        assert api.put(f"/api/vhosts/{q(v)}").status_code == 201
        assert api.get(f"/api/queues/{q(v)}").json() == []
        assert api.get(f"/api/policies/{q(v)}").json() == []
        assert [p["user"] for p in api.get(f"/api/vhosts/{q(v)}/permissions").json()] == ["guest"]
        assert api.get(f"/api/vhosts/{q(v)}").json()["description"] == ""
        assert amqp_open(server, u, "pw", vhost=v) == (530, f"NOT_ALLOWED - access to vhost '{v}' refused for user '{u}'")
    finally:
        api.delete(f"/api/vhosts/{q(v)}")
        api.delete(f"/api/users/{q(u)}")


@pytest.mark.parametrize("mechanism", ["PLAIN", "AMQPLAIN"])
def test_connection_shows_the_mechanism_used(server, mechanism):
    kind, c = amqp_open(server, "guest", "guest", mechanism=mechanism)
    assert kind == "open"
    try:
        port = c.sock.getsockname()[1]
        info = find_connection(server.api, lambda x: x["peer_port"] == port, timeout=15)
        assert info["auth_mechanism"] == mechanism
    finally:
        c.close()


def test_default_vhost_description(warren_private):
    """A first start creates "/" described as RabbitMQ describes it."""
    j = warren_private.api.get("/api/vhosts/%2F").json()
    assert j["description"] == "Default virtual host"
    assert j["metadata"] == {"description": "Default virtual host", "tags": []}


def test_reference_default_vhost_description(reference):
    assert reference.api.get("/api/vhosts/%2F").json()["description"] == "Default virtual host"


def test_deleted_user_http_session_is_refused(server, uniq):
    """An API caller deleted mid-session is refused on its next request."""
    api = server.api
    u = uniq("admin")
    make_user(api, u, tags="administrator")
    me = api.as_user(u, "pw")
    assert me.get("/api/whoami").status_code == 200
    assert api.delete(f"/api/users/{q(u)}").status_code == 204
    wait_for(lambda: me.get("/api/whoami").status_code == 401, what="401 for a deleted user")


def test_user_limits_survive_tag_changes(server, uniq):
    api = server.api
    u = uniq("user")
    make_user(api, u)
    try:
        assert api.put(f"/api/user-limits/{q(u)}/max-connections", {"value": 3}).status_code == 204
        assert api.put(f"/api/users/{q(u)}", {"password": "pw2", "tags": "monitoring"}).status_code == 204
        got = api.get(f"/api/users/{q(u)}").json()
        assert got["tags"] == ["monitoring"] and got["limits"] == {"max-connections": 3}
        assert opens(server, u, "pw2") is True
    finally:
        api.delete(f"/api/users/{q(u)}")


def test_a_connection_from_a_deleted_users_peer_port_is_gone_from_the_list(server, uniq):
    api = server.api
    u = uniq("user")
    make_user(api, u)
    conn = server.connect(user=u, password="pw")
    port = local_port(conn)
    find_connection(api, lambda c: c["peer_port"] == port, timeout=15)
    api.delete(f"/api/users/{q(u)}")
    closed_by_broker(conn)
    wait_for(lambda: not [c for c in api.get("/api/connections").json() if c["peer_port"] == port],
             timeout=15, what="the closed connection to leave the list")
