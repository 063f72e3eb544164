"""Permissions and topic permissions through the API, with RabbitMQ's answers to
missing keys, unknown users or vhosts and invalid patterns."""

from helpers import make_user, q


def test_set_show_update_delete(api, uniq):
    u = uniq("u")
    make_user(api, u, vhost_perms=())
    path = f"/api/permissions/%2F/{q(u)}"
    assert api.put(path, {"configure": ".*", "write": ".*", "read": ".*"}).status_code == 201
    assert api.put(path, {"configure": ".*", "write": ".*", "read": "^$"}).status_code == 204
    assert api.get(path).json() == {"user": u, "vhost": "/", "configure": ".*", "write": ".*", "read": "^$"}
    assert {"user": u, "vhost": "/", "configure": ".*", "write": ".*", "read": "^$"} in api.get("/api/permissions").json()
    assert [p["vhost"] for p in api.get(f"/api/users/{q(u)}/permissions").json()] == ["/"]
    assert u in [p["user"] for p in api.get("/api/vhosts/%2F/permissions").json()]
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404
    assert api.delete(path).status_code == 404


def test_refusals(api, uniq):
    u = uniq("u")
    make_user(api, u, vhost_perms=())
    r = api.put(f"/api/permissions/%2F/{q(u)}", {"configure": ".*"})
    assert r.status_code == 400
    assert r.json() == {"error": "bad_request", "reason": "[{key_missing,write},{key_missing,read}]"}
    r = api.put("/api/permissions/%2F/no-such-user", {"configure": ".*", "write": ".*", "read": ".*"})
    assert r.json() == {"error": "bad_request", "reason": "vhost_or_user_not_found"}
    r = api.put(f"/api/permissions/no-such-vhost/{q(u)}", {"configure": ".*", "write": ".*", "read": ".*"})
    assert r.json() == {"error": "bad_request", "reason": "vhost_or_user_not_found"}
    r = api.put(f"/api/permissions/%2F/{q(u)}", {"configure": "(", "write": ".*", "read": ".*"})
    assert r.status_code == 400 and r.json()["reason"][0] == "invalid_regexp"


def test_deleted_permission_hides_the_vhost(api, uniq):
    u = uniq("u")
    make_user(api, u, tags="management")
    me = api.as_user(u, "pw")
    assert me.get("/api/queues/%2F").status_code == 200
    api.delete(f"/api/permissions/%2F/{q(u)}")
    assert me.get("/api/queues/%2F").status_code == 401


def test_topic_permissions(api, uniq):
    u = uniq("u")
    make_user(api, u)
    path = f"/api/topic-permissions/%2F/{q(u)}"
    assert api.put(path, {"exchange": "amq.topic", "write": "^a", "read": ".*"}).status_code == 201
    assert api.put(path, {"exchange": "amq.topic", "write": "^b", "read": ".*"}).status_code == 204
    # As RabbitMQ: the resource is the user's topic permissions in the vhost, so another
    # exchange's updates it.
    assert api.put(path, {"exchange": "other", "write": "^c", "read": ".*"}).status_code == 204
    got = api.get(path).json()
    assert {"user": u, "vhost": "/", "exchange": "amq.topic", "write": "^b", "read": ".*"} in got
    assert len(got) == 2
    assert len(api.get(f"/api/users/{q(u)}/topic-permissions").json()) == 2
    assert any(t["user"] == u for t in api.get("/api/vhosts/%2F/topic-permissions").json())
    assert any(t["user"] == u for t in api.get("/api/topic-permissions").json())
    r = api.put(path, {"write": "^b", "read": ".*"})
    assert r.json() == {"error": "bad_request", "reason": "[{key_missing,exchange}]"}
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404


def test_permission_refusals_are_worded_as_rabbitmq_words_them(api, uniq):
    u = uniq("u")
    make_user(api, u, tags="management", vhost_perms=())
    api.put(f"/api/permissions/%2F/{q(u)}", {"configure": "^ok", "write": "^ok", "read": "^ok"})
    me = api.as_user(u, "pw")
    r = me.put("/api/queues/%2F/denied", {})
    assert (r.status_code, r.json()) == (401, {"error": "not_authorised", "reason": "Access refused."})
    r = me.post("/api/exchanges/%2F/amq.default/publish",
                {"routing_key": "x", "payload": "", "payload_encoding": "string", "properties": {}})
    assert (r.status_code, r.json()) == (400, {"error": "bad_request", "reason":
        f"403 ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user '{u}'"})
    api.put("/api/queues/%2F/denied", {})
    try:
        r = me.post("/api/queues/%2F/denied/get", {"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"})
        assert (r.status_code, r.json()) == (401, {"error": "not_authorised", "reason":
            f"ACCESS_REFUSED - access to queue 'denied' in vhost '/' refused for user '{u}'"})
    finally:
        api.delete("/api/queues/%2F/denied")


def test_topic_permissions_set_through_the_api_apply_to_amqp(api, warren, uniq):
    import pika
    import pytest

    u = uniq("u")
    make_user(api, u)
    api.put(f"/api/topic-permissions/%2F/{q(u)}", {"exchange": "amq.topic", "write": "^allowed\\.", "read": ".*"})
    c = warren.connect(user=u, password="pw")
    ch = c.channel()
    ch.confirm_delivery()
    ch.basic_publish("amq.topic", "allowed.x", b"ok")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.basic_publish("amq.topic", "forbidden.x", b"no")
    assert e.value.reply_code == 403
    c.close()
