"""Queues through the API: declare (201/204) with arguments, RabbitMQ's refusals, show
with figures, delete with if-empty/if-unused, bindings, purge, and getting messages with
each ackmode."""

import base64

import pytest

from helpers import q


@pytest.fixture
def queue(api, uniq):
    name = uniq("q")
    assert api.put(f"/api/queues/%2F/{q(name)}", {"durable": True, "arguments": {"x-max-length": 100}}).status_code == 201
    yield name
    api.delete(f"/api/queues/%2F/{q(name)}")


def publish(api, name, payload, **props):
    r = api.post("/api/exchanges/%2F/amq.default/publish", {
        "routing_key": name, "payload": payload, "payload_encoding": "string", "properties": props})
    assert r.json() == {"routed": True}


def test_declare_show(api, queue):
    assert api.put(f"/api/queues/%2F/{q(queue)}", {"durable": True, "arguments": {"x-max-length": 100}}).status_code == 204
    j = api.get(f"/api/queues/%2F/{q(queue)}").json()
    assert (j["name"], j["vhost"], j["durable"], j["auto_delete"], j["exclusive"]) == (queue, "/", True, False, False)
    assert j["arguments"] == {"x-max-length": 100}
    assert j["type"] == "classic" and j["state"] == "running" and j["node"] == "warren@localhost"
    assert j["messages"] == 0 and j["consumers"] == 0 and j["consumer_details"] == []
    assert j["policy"] is None and j["effective_policy_definition"] == {}


def test_defaults_of_an_empty_body(api, uniq):
    n = uniq("q")
    assert api.put(f"/api/queues/%2F/{q(n)}", {}).status_code == 201
    j = api.get(f"/api/queues/%2F/{q(n)}").json()
    assert (j["durable"], j["auto_delete"], j["arguments"]) == (False, False, {})
    api.delete(f"/api/queues/%2F/{q(n)}")


def test_refusals(api, queue, uniq):
    r = api.put(f"/api/queues/%2F/{q(queue)}", {"durable": False})
    assert r.status_code == 400
    assert r.json() == {"error": "bad_request", "reason":
                        f"inequivalent arg 'durable' for queue '{queue}' in vhost '/': received 'false' but current is 'true'"}
    r = api.put(f"/api/queues/%2F/{q(queue)}", data="garbage", headers={"content-type": "application/json"})
    assert r.json() == {"error": "bad_request", "reason": "not_json"}
    r = api.put("/api/queues/%2F/amq.mine", {})
    assert r.status_code == 401 and r.json()["reason"] == "Access refused."
    r = api.put(f"/api/queues/%2F/{q(uniq('bad'))}", {"arguments": {"x-max-length": "ten"}})
    assert r.status_code == 400 and "x-max-length" in r.json()["reason"]
    assert api.get("/api/queues/%2F/no-such-queue").status_code == 404
    assert api.delete("/api/queues/%2F/no-such-queue").status_code == 404
    assert api.get("/api/queues/no-such-vhost").status_code == 404


def test_figures_and_get_messages(api, queue):
    publish(api, queue, "one", content_type="text/plain", headers={"k": "v"})
    publish(api, queue, "two")
    publish(api, queue, "\u00e9t\u00e9")
    j = api.get(f"/api/queues/%2F/{q(queue)}").json()
    assert j["messages"] == 3 and j["messages_ready"] == 3 and j["messages_unacknowledged"] == 0
    assert j["message_bytes"] == 3 + 3 + 5
    assert j["message_stats"]["publish"] == 3
    got = api.post(f"/api/queues/%2F/{q(queue)}/get", {"count": 2, "ackmode": "ack_requeue_true", "encoding": "auto"}).json()
    assert [m["payload"] for m in got] == ["one", "two"]
    assert got[0]["properties"] == {"content_type": "text/plain", "headers": {"k": "v"}}
    assert got[0]["payload_encoding"] == "string" and got[0]["payload_bytes"] == 3
    assert got[0]["exchange"] == "" and got[0]["routing_key"] == queue
    assert [m["message_count"] for m in got] == [2, 1]
    assert got[0]["redelivered"] is False
    again = api.post(f"/api/queues/%2F/{q(queue)}/get", {"count": 1, "ackmode": "ack_requeue_false", "encoding": "base64"}).json()
    assert again[0]["redelivered"] is True
    assert base64.b64decode(again[0]["payload"]) == b"one" and again[0]["payload_encoding"] == "base64"
    t = api.post(f"/api/queues/%2F/{q(queue)}/get", {"count": 5, "ackmode": "reject_requeue_false", "encoding": "auto", "truncate": 1}).json()
    assert t[0]["payload"] == "t" and t[0]["payload_bytes"] == 3
    # A cut through a UTF-8 sequence is no longer text: base64.
    assert t[1]["payload_encoding"] == "base64" and base64.b64decode(t[1]["payload"]) == b"\xc3"
    assert api.get(f"/api/queues/%2F/{q(queue)}").json()["messages"] == 0
    assert api.post(f"/api/queues/%2F/{q(queue)}/get", {"count": 1, "ackmode": "nope", "encoding": "auto"}).status_code == 400


def test_purge_and_delete_conditions(api, warren, queue):
    publish(api, queue, "x")
    r = api.delete(f"/api/queues/%2F/{q(queue)}?if-empty=true")
    assert r.status_code == 400
    assert r.json()["reason"] == f"queue '{queue}' in vhost '/' not empty"
    assert api.delete(f"/api/queues/%2F/{q(queue)}/contents").status_code == 204
    assert api.get(f"/api/queues/%2F/{q(queue)}").json()["messages"] == 0
    c = warren.connect()
    ch = c.channel()
    ch.basic_consume(queue, lambda *a: None)
    r = api.delete(f"/api/queues/%2F/{q(queue)}?if-unused=true")
    assert r.status_code == 400
    assert r.json()["reason"] == f"queue '{queue}' in vhost '/' in use"
    c.close()
    assert api.delete(f"/api/queues/%2F/{q(queue)}?if-empty=true&if-unused=true").status_code == 204


def test_bindings_include_the_default_exchange(api, queue, uniq):
    x = uniq("x")
    api.put(f"/api/exchanges/%2F/{q(x)}", {"type": "direct"})
    api.post(f"/api/bindings/%2F/e/{q(x)}/q/{q(queue)}", {"routing_key": "k"})
    b = api.get(f"/api/queues/%2F/{q(queue)}/bindings").json()
    assert b[0] == {"source": "", "vhost": "/", "destination": queue, "destination_type": "queue",
                    "routing_key": queue, "arguments": {}, "properties_key": q(queue).replace("%2E", ".")}
    assert (b[1]["source"], b[1]["routing_key"], b[1]["properties_key"]) == (x, "k", "k")
    api.delete(f"/api/exchanges/%2F/{q(x)}")


def test_exclusive_queue_shows_its_owner_and_can_be_deleted(api, warren):
    c = warren.connect()
    ch = c.channel()
    name = ch.queue_declare("", exclusive=True).method.queue
    j = api.get(f"/api/queues/%2F/{q(name)}").json()
    assert j["exclusive"] is True and j["durable"] is False
    assert j["owner_pid_details"]["peer_port"] == c._impl._transport._sock.getsockname()[1]
    assert api.delete(f"/api/queues/%2F/{q(name)}").status_code == 204
    c.close()


def test_queue_list_in_a_vhost_and_everywhere(api, queue):
    assert queue in [x["name"] for x in api.get("/api/queues/%2F").json()]
    row = [x for x in api.get("/api/queues").json() if x["name"] == queue][0]
    for k in ["messages", "messages_ready", "messages_unacknowledged", "consumers", "message_stats",
              "messages_details", "backing_queue_status", "arguments", "memory", "state"]:
        assert k in row
