"""Virtual hosts through the API: create (201) and update (204) with description and
tags, list with totals, delete (204, then 404) with everything in it."""

import pika
import pytest

from helpers import q, wait_for


def test_create_update_show_delete(api, uniq):
    v = uniq("vh")
    assert api.put(f"/api/vhosts/{q(v)}", {"description": "d", "tags": "a,b"}).status_code == 201
    j = api.get(f"/api/vhosts/{q(v)}").json()
    assert j["name"] == v and j["description"] == "d" and j["tags"] == ["a", "b"]
    assert j["metadata"] == {"description": "d", "tags": ["a", "b"]}
    assert j["cluster_state"] == {"warren@localhost": "running"}
    assert api.put(f"/api/vhosts/{q(v)}", {"description": "d2"}).status_code == 204
    j = api.get(f"/api/vhosts/{q(v)}").json()
    assert j["description"] == "d2" and j["tags"] == ["a", "b"]
    # As RabbitMQ: the creator gets full permissions in it.
    assert api.get(f"/api/permissions/{q(v)}/guest").json() == {
        "user": "guest", "vhost": v, "configure": ".*", "write": ".*", "read": ".*"}
    assert api.delete(f"/api/vhosts/{q(v)}").status_code == 204
    assert api.get(f"/api/vhosts/{q(v)}").status_code == 404
    assert api.delete(f"/api/vhosts/{q(v)}").status_code == 404


def test_put_without_a_body(api, uniq):
    v = uniq("vh")
    r = api.request("PUT", f"/api/vhosts/{q(v)}")
    assert r.status_code == 201
    assert api.get(f"/api/vhosts/{q(v)}").json()["description"] == ""
    api.delete(f"/api/vhosts/{q(v)}")


def test_list_has_totals(api, warren, uniq):
    v = uniq("vh")
    api.put(f"/api/vhosts/{q(v)}")
    api.put(f"/api/permissions/{q(v)}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
    try:
        c = warren.connect(vhost=v)
        ch = c.channel()
        ch.queue_declare("q1")
        for _ in range(3):
            ch.basic_publish("", "q1", b"hello")
        c.close()
        row = [x for x in api.get("/api/vhosts").json() if x["name"] == v][0]
        assert row["messages"] == 3 and row["messages_ready"] == 3
        assert row["message_stats"]["publish"] == 3
        assert isinstance(row["recv_oct"], int) and row["recv_oct"] > 0
        assert "rate" in row["messages_details"]
    finally:
        api.delete(f"/api/vhosts/{q(v)}")


def test_delete_removes_its_queues_and_closes_its_connections(api, warren, uniq):
    v = uniq("vh")
    api.put(f"/api/vhosts/{q(v)}")
    api.put(f"/api/permissions/{q(v)}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
    c = warren.connect(vhost=v)
    ch = c.channel()
    ch.queue_declare("doomed", durable=True)
    assert api.delete(f"/api/vhosts/{q(v)}").status_code == 204
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        for _ in range(50):
            c.process_data_events(0.1)
    assert e.value.reply_code == 320
    assert api.get(f"/api/queues/{q(v)}").status_code == 404
    # A vhost of the same name starts empty.
    api.put(f"/api/vhosts/{q(v)}")
    try:
        assert api.get(f"/api/queues/{q(v)}").json() == []
    finally:
        api.delete(f"/api/vhosts/{q(v)}")


def test_vhost_survives_restart_with_metadata(uniq):
    from conftest import spawn, stop, start_warren

    s = start_warren()
    data = s.tmp + "/data"
    try:
        s.api.put("/api/vhosts/kept", {"description": "keep me", "tags": ["t"]})
        s.api.put("/api/vhosts/gone")
        assert s.api.delete("/api/vhosts/gone").status_code == 204
    finally:
        stop(s, keep_data=True)
    with spawn(data_dir=data) as s2:
        j = s2.api.get("/api/vhosts/kept").json()
        assert j["description"] == "keep me" and j["tags"] == ["t"]
        assert s2.api.get("/api/vhosts/gone").status_code == 404
