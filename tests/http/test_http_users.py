"""Users through the API: create with a password or RabbitMQ's password hash, tags,
update, delete, bulk delete, users without permissions, per-user limits."""

import pika
import pytest

from helpers import make_user, q, rabbit_hash


def test_create_show_update_delete(api, uniq):
    u = uniq("u")
    assert api.put(f"/api/users/{q(u)}", {"password": "secret", "tags": "management"}).status_code == 201
    j = api.get(f"/api/users/{q(u)}").json()
    assert j["name"] == u and j["tags"] == ["management"] and j["limits"] == {}
    assert j["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    assert len(j["password_hash"]) == 48
    assert api.put(f"/api/users/{q(u)}", {"tags": "monitoring"}).status_code == 204
    # The password stays when an update gives none.
    assert api.as_user(u, "secret").get("/api/nodes").status_code == 200
    assert api.delete(f"/api/users/{q(u)}").status_code == 204
    assert api.get(f"/api/users/{q(u)}").status_code == 404
    assert api.delete(f"/api/users/{q(u)}").status_code == 404


def test_list_users(api, uniq):
    u = uniq("u")
    make_user(api, u, tags="management")
    users = api.get("/api/users").json()
    names = [x["name"] for x in users]
    assert "guest" in names and u in names
    assert names == sorted(names)
    assert set(users[0]) == {"name", "password_hash", "hashing_algorithm", "tags", "limits"}


def test_new_user_logs_in_over_amqp(api, warren, uniq):
    u = uniq("u")
    make_user(api, u, password="s3cret")
    c = warren.connect(user=u, password="s3cret")
    c.close()
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        warren.connect(user=u, password="wrong")


def test_password_hash_from_rabbitmq(api, warren, uniq):
    u = uniq("u")
    h = rabbit_hash("from-rabbit")
    r = api.put(f"/api/users/{q(u)}", {"password_hash": h, "tags": "administrator",
                                        "hashing_algorithm": "rabbit_password_hashing_sha256"})
    assert r.status_code == 201
    assert api.get(f"/api/users/{q(u)}").json()["password_hash"] == h
    assert api.as_user(u, "from-rabbit").get("/api/whoami").status_code == 200


def test_user_without_password_cannot_log_in(api, uniq):
    u = uniq("u")
    assert api.put(f"/api/users/{q(u)}", {"tags": "administrator"}).status_code == 201
    assert api.as_user(u, "").get("/api/whoami").status_code == 401


def test_without_permissions_and_bulk_delete(api, uniq):
    a, b = uniq("a"), uniq("b")
    make_user(api, a, vhost_perms=())
    make_user(api, b, vhost_perms=("/",))
    names = [x["name"] for x in api.get("/api/users/without-permissions").json()]
    assert a in names and b not in names
    assert api.post("/api/users/bulk-delete", {"users": [a, b]}).status_code == 204
    assert api.get(f"/api/users/{q(a)}").status_code == 404
    r = api.post("/api/users/bulk-delete", {"users": ["no-such-user-x"]})
    assert r.status_code == 400
    assert r.json() == {"error": "bad_request", "reason": ["no_such_user", "no-such-user-x"]}


def test_deleting_a_user_closes_its_connections(api, warren, uniq):
    u = uniq("u")
    make_user(api, u, password="pw")
    c = warren.connect(user=u, password="pw")
    assert api.delete(f"/api/users/{q(u)}").status_code == 204
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        for _ in range(50):
            c.process_data_events(0.1)
    assert e.value.reply_code == 320


def test_user_limits(api, uniq):
    u = uniq("u")
    make_user(api, u)
    assert api.put(f"/api/user-limits/{q(u)}/max-connections", {"value": 10}).status_code == 204
    assert api.get(f"/api/user-limits/{q(u)}").json() == [{"user": u, "value": {"max-connections": 10}}]
    assert {"user": u, "value": {"max-connections": 10}} in api.get("/api/user-limits").json()
    assert api.get(f"/api/users/{q(u)}").json()["limits"] == {"max-connections": 10}
    assert api.put(f"/api/user-limits/{q(u)}/max-nope", {"value": 1}).status_code == 400
    assert api.delete(f"/api/user-limits/{q(u)}/max-connections").status_code == 204
    assert api.get(f"/api/user-limits/{q(u)}").json() == []
