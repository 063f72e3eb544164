"""Users: passwords (RabbitMQ's salted SHA-256 hashes, as in a definitions file), tags,
the user_id property, and the loopback restriction of guest.

Recorded against RabbitMQ 3.10.8:
- a refused login with the authentication_failure_close capability (pika announces it):
  connection.close 403 ACCESS_REFUSED - Login was refused using authentication mechanism
  PLAIN. For details see the broker logfile. (class 0, method 0); the same text for
  guest connecting from a non-loopback address (recorded with loopback_users set to a test
  user: the reference runs with loopback_users = none, so that case runs against Warren
  only, whose guest is loopback-only as RabbitMQ's default);
- basic.publish with a user_id other than the connection's user: 406 PRECONDITION_FAILED -
  user_id property set to '<id>' but authenticated user was '<user>' (basic.publish),
  unless the user has the `impersonator` tag;
- management API: GET /api/whoami -> {"name", "tags": [...]} for a user with a management
  tag; 401 {"error":"not_authorised","reason":"Not management user"} without one; 401
  {"error":"not_authorized","reason":"Login failed"} for a wrong password;
  GET /api/users/<u> -> name, password_hash, hashing_algorithm, tags (a list), limits.
(Unknown users, wrong guest passwords and the capability-less silent close are in
test_connection_handshake.py.)
"""

import base64
import hashlib
import socket
import subprocess

import pika
import pytest

import amqp_raw as A
from helpers import (
    BASIC_PUBLISH,
    AccessWorld,
    quote,
    rabbit_password_hash,
    skip_on_reference,
    unique_tag,
    wait_channel_closed,
)

LOGIN_REFUSED = ("ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
                 "For details see the broker logfile.")


def make_users(tag):
    return {f"alice-{tag}": ("alice-secret", ["management"]),
            f"imp-{tag}": ("imp-secret", ["impersonator"]),
            f"plain-{tag}": ("plain-secret", [])}


@pytest.fixture(scope="module")
def world(broker):
    tag = unique_tag()
    users = make_users(tag)
    v = f"users-{tag}"
    with AccessWorld(broker, users=users, vhosts=[v],
                     permissions=[(u, v, ".*", ".*", ".*") for u in users]) as w:
        w.v = v
        w.alice, w.imp, w.plain = list(users)
        yield w


# ---------------------------------------------------------------- passwords


def test_password_hash_format():
    """base64(salt4 + sha256(salt4 + password)), as RabbitMQ stores it."""
    raw = base64.b64decode(rabbit_password_hash("secret", salt=b"\x01\x02\x03\x04"))
    assert raw[:4] == b"\x01\x02\x03\x04"
    assert raw[4:] == hashlib.sha256(b"\x01\x02\x03\x04secret").digest()


def test_defined_users_can_log_in(world):
    for user in (world.alice, world.imp, world.plain):
        c = world.connect(user, world.v)
        assert c.channel().is_open
        c.close()


@pytest.mark.parametrize("password", ["wrong", "", "alice-secret "])
def test_wrong_password_refused(world, password):
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as e:
        world.connect(world.alice, world.v, password=password)
    assert f"(403) '{LOGIN_REFUSED}'" in str(e.value)


def test_user_names_are_case_sensitive(world):
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        world.connect(world.alice.upper(), world.v, password="alice-secret")


# ---------------------------------------------------------------- user_id


def test_user_id_may_be_own_name(world):
    c = world.connect(world.plain, world.v)
    try:
        ch = c.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"m", pika.BasicProperties(user_id=world.plain))
        assert ch.basic_get(q, auto_ack=True)[1].user_id == world.plain
    finally:
        c.close()


@pytest.mark.parametrize("user_id", ["guest", "someone"])
def test_user_id_of_someone_else_refused(world, user_id):
    c = world.connect(world.alice, world.v)
    try:
        ch = c.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"m", pika.BasicProperties(user_id=user_id))
        wait_channel_closed(c, ch, 406, f"PRECONDITION_FAILED - user_id property set to "
                                        f"'{user_id}' but authenticated user was "
                                        f"'{world.alice}'", BASIC_PUBLISH)
        assert c.channel().basic_get(q)[0] is None
    finally:
        c.close()


def test_impersonator_may_set_any_user_id(world):
    c = world.connect(world.imp, world.v)
    try:
        ch = c.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.confirm_delivery()
        ch.basic_publish("", q, b"m", pika.BasicProperties(user_id="someone-else"))
        assert ch.basic_get(q, auto_ack=True)[1].user_id == "someone-else"
    finally:
        c.close()


# ---------------------------------------------------------------- loopback users


def non_loopback_ipv4():
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True,
                             timeout=5).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    for addr in out:
        if ":" not in addr and not addr.startswith("127."):
            return addr
    return None


def login_from(source, broker, user, password):
    """Handshake up to connection.start-ok from a given local address; returns the next
    method the broker sends (connection.tune on success)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.bind((source, 0))
    s.connect((broker.host, broker.port))
    with A.RawConnection(s) as c:
        c.send(A.PROTOCOL_HEADER)
        c.expect("connection.start", 0)
        c.send_method(0, "connection.start-ok", A.client_properties(), "PLAIN",
                      A.plain_response(user, password), "en_US")
        return c.read_method()


@pytest.fixture
def source_address(world):
    skip_on_reference(world.broker, "the reference runs with loopback_users = none")
    addr = non_loopback_ipv4()
    if addr is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    return addr


def test_guest_refused_from_non_loopback_address(world, source_address):
    m = login_from(source_address, world.broker, "guest", "guest")
    assert m.name == "connection.close"
    assert tuple(m.args) == (403, LOGIN_REFUSED, 0, 0)


def test_guest_accepted_from_loopback(world):
    assert login_from("127.0.0.1", world.broker, "guest", "guest").name == "connection.tune"


def test_other_users_accepted_from_non_loopback_address(world, source_address):
    m = login_from(source_address, world.broker, world.plain, "plain-secret")
    assert m.name == "connection.tune"


def test_session_broker_guest_refused_from_non_loopback_address(broker):
    skip_on_reference(broker, "the reference runs with loopback_users = none")
    addr = non_loopback_ipv4()
    if addr is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    m = login_from(addr, broker, "guest", "guest")
    assert (m.name, tuple(m.args)) == ("connection.close", (403, LOGIN_REFUSED, 0, 0))


# ---------------------------------------------------------------- tags (management API)


@pytest.fixture(scope="module")
def http_world(broker):
    tag = unique_tag()
    users = make_users(tag)
    with AccessWorld(broker, users=users, http=True) as w:
        w.alice, w.imp, w.plain = list(users)
        yield w


def test_whoami_shows_tags(http_world):
    w = http_world
    status, body = w.http.get("/api/whoami", user=w.alice, password="alice-secret")
    assert (status, body) == (200, {"name": w.alice, "tags": ["management"]})
    status, body = w.http.get("/api/whoami")
    assert (status, body) == (200, {"name": "guest", "tags": ["administrator"]})


def test_management_api_needs_a_management_tag(http_world):
    w = http_world
    for user, password in [(w.plain, "plain-secret"), (w.imp, "imp-secret")]:
        status, body = w.http.get("/api/whoami", user=user, password=password)
        assert (status, body) == (401, {"error": "not_authorised",
                                        "reason": "Not management user"})


def test_management_api_wrong_password(http_world):
    w = http_world
    status, body = w.http.get("/api/whoami", user=w.alice, password="wrong")
    assert (status, body) == (401, {"error": "not_authorized", "reason": "Login failed"})


def test_user_record(http_world):
    w = http_world
    status, body = w.http.get(f"/api/users/{quote(w.alice)}")
    assert status == 200
    assert {k: body[k] for k in ("name", "hashing_algorithm", "tags")} == {
        "name": w.alice, "hashing_algorithm": "rabbit_password_hashing_sha256",
        "tags": ["management"]}
    raw = base64.b64decode(body["password_hash"])
    assert hashlib.sha256(raw[:4] + b"alice-secret").digest() == raw[4:]
