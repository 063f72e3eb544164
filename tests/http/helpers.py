"""Helpers for the HTTP API tests."""

import base64
import hashlib
import os
import time
import urllib.parse


def q(s):
    """URL-encodes one path segment (the default vhost becomes %2F)."""
    return urllib.parse.quote(s, safe="")


def wait_for(cond, timeout=10.0, interval=0.1, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def rabbit_hash(password, salt=None):
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt ++ sha256(salt ++ password))."""
    salt = salt if salt is not None else os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def make_user(api, name, tags="", password="pw", vhost_perms=("/",)):
    r = api.put(f"/api/users/{q(name)}", {"password": password, "tags": tags})
    assert r.status_code in (201, 204), r.text
    for v in vhost_perms:
        r = api.put(
            f"/api/permissions/{q(v)}/{q(name)}",
            {"configure": ".*", "write": ".*", "read": ".*"},
        )
        assert r.status_code in (201, 204), r.text


def find_connection(api, pred, timeout=10.0):
    """The API's view of a connection matching `pred` (RabbitMQ lists them with a delay)."""

    def look():
        r = api.get("/api/connections")
        assert r.status_code == 200, r.text
        for c in r.json():
            if pred(c):
                return c
        return None

    return wait_for(look, timeout=timeout, what="connection in /api/connections")


def local_port(conn):
    """The client-side port of a pika BlockingConnection."""
    return conn._impl._transport._sock.getsockname()[1]


def shape(v):
    """A JSON value's shape: key -> type name (recursively for objects), to compare with
    RabbitMQ's."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    return "null"
