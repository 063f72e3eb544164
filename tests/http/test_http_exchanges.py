"""Exchanges through the API: declare (201/204), RabbitMQ's refusals, delete, bindings as
source and destination, and publishing (`POST .../publish`) that real consumers receive."""

import base64

import pika

from helpers import q


def test_list_and_default_exchange(api):
    names = [e["name"] for e in api.get("/api/exchanges/%2F").json()]
    for n in ["", "amq.direct", "amq.fanout", "amq.headers", "amq.match", "amq.topic"]:
        assert n in names
    d = api.get("/api/exchanges/%2F/amq.default").json()
    assert d["name"] == "" and d["type"] == "direct" and d["durable"] is True
    assert d["user_who_performed_action"] == "rmq-internal"
    assert {"incoming", "outgoing", "arguments", "internal", "auto_delete", "vhost"} <= set(d)


def test_declare_show_delete(api, uniq):
    x = uniq("x")
    r = api.put(f"/api/exchanges/%2F/{q(x)}", {"type": "topic", "durable": True,
                                               "arguments": {"alternate-exchange": "amq.fanout"}})
    assert r.status_code == 201
    assert api.put(f"/api/exchanges/%2F/{q(x)}", {"type": "topic", "durable": True,
                                                  "arguments": {"alternate-exchange": "amq.fanout"}}).status_code == 204
    j = api.get(f"/api/exchanges/%2F/{q(x)}").json()
    assert (j["type"], j["durable"], j["auto_delete"], j["internal"]) == ("topic", True, False, False)
    assert j["arguments"] == {"alternate-exchange": "amq.fanout"}
    r = api.put(f"/api/exchanges/%2F/{q(x)}", {"type": "fanout", "durable": True})
    assert r.status_code == 400
    assert r.json() == {"error": "bad_request", "reason":
                        f"inequivalent arg 'type' for exchange '{x}' in vhost '/': received 'fanout' but current is 'topic'"}
    assert api.delete(f"/api/exchanges/%2F/{q(x)}").status_code == 204
    assert api.get(f"/api/exchanges/%2F/{q(x)}").status_code == 404
    assert api.delete(f"/api/exchanges/%2F/{q(x)}").status_code == 404


def test_defaults_of_an_empty_body(api, uniq):
    x = uniq("x")
    assert api.put(f"/api/exchanges/%2F/{q(x)}", {}).status_code == 201
    j = api.get(f"/api/exchanges/%2F/{q(x)}").json()
    assert (j["type"], j["durable"], j["auto_delete"]) == ("direct", False, False)
    api.delete(f"/api/exchanges/%2F/{q(x)}")


def test_refusals(api, uniq):
    r = api.put(f"/api/exchanges/%2F/{q(uniq('x'))}", {"type": "nope"})
    assert r.status_code == 400
    assert r.json() == {"error": "bad_request", "reason": "unknown exchange type 'nope'"}
    r = api.put("/api/exchanges/%2F/amq.mine", {"type": "direct"})
    assert r.status_code == 401
    assert r.json() == {"error": "not_authorised", "reason": "Access refused."}
    assert api.delete("/api/exchanges/%2F/amq.direct").status_code == 401
    r = api.put(f"/api/exchanges/%2F/{q(uniq('x'))}", data="garbage",
                headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json() == {"error": "bad_request", "reason": "not_json"}
    assert api.get("/api/exchanges/no-such-vhost/x").status_code == 404


def test_delete_if_unused(api, uniq):
    x, qn = uniq("x"), uniq("q")
    api.put(f"/api/exchanges/%2F/{q(x)}", {"type": "direct"})
    api.put(f"/api/queues/%2F/{q(qn)}", {})
    api.post(f"/api/bindings/%2F/e/{q(x)}/q/{q(qn)}", {"routing_key": "k"})
    r = api.delete(f"/api/exchanges/%2F/{q(x)}?if-unused=true")
    assert r.status_code == 400
    assert r.json()["reason"] == f"exchange '{x}' in vhost '/' in use"
    assert api.delete(f"/api/exchanges/%2F/{q(x)}").status_code == 204
    api.delete(f"/api/queues/%2F/{q(qn)}")


def test_bindings_source_and_destination(api, uniq):
    a, b, qn = uniq("a"), uniq("b"), uniq("q")
    api.put(f"/api/exchanges/%2F/{q(a)}", {"type": "topic"})
    api.put(f"/api/exchanges/%2F/{q(b)}", {"type": "fanout"})
    api.put(f"/api/queues/%2F/{q(qn)}", {})
    api.post(f"/api/bindings/%2F/e/{q(a)}/q/{q(qn)}", {"routing_key": "a.#", "arguments": {"k": "v"}})
    api.post(f"/api/bindings/%2F/e/{q(a)}/e/{q(b)}", {"routing_key": "b.*"})
    src = api.get(f"/api/exchanges/%2F/{q(a)}/bindings/source").json()
    assert {(x["destination"], x["destination_type"], x["routing_key"]) for x in src} == {
        (qn, "queue", "a.#"), (b, "exchange", "b.*")}
    dst = api.get(f"/api/exchanges/%2F/{q(b)}/bindings/destination").json()
    assert [(x["source"], x["properties_key"]) for x in dst] == [(a, "b.%2A")]
    for x in (a, b):
        api.delete(f"/api/exchanges/%2F/{q(x)}")
    api.delete(f"/api/queues/%2F/{q(qn)}")


def test_publish_reaches_consumers_with_properties(api, warren, uniq):
    x, qn = uniq("x"), uniq("q")
    api.put(f"/api/exchanges/%2F/{q(x)}", {"type": "direct"})
    api.put(f"/api/queues/%2F/{q(qn)}", {"durable": True})
    api.post(f"/api/bindings/%2F/e/{q(x)}/q/{q(qn)}", {"routing_key": "rk"})
    r = api.post(f"/api/exchanges/%2F/{q(x)}/publish", {
        "routing_key": "rk", "payload": "hello", "payload_encoding": "string",
        "properties": {"delivery_mode": 2, "priority": 3, "content_type": "text/plain",
                       "headers": {"h": 1, "s": "v"}, "message_id": "m-1", "timestamp": 1700000000}})
    assert r.status_code == 200 and r.json() == {"routed": True}
    r = api.post(f"/api/exchanges/%2F/{q(x)}/publish", {
        "routing_key": "nowhere", "payload": "x", "payload_encoding": "string", "properties": {}})
    assert r.json() == {"routed": False}
    r = api.post("/api/exchanges/%2F/amq.default/publish", {
        "routing_key": qn, "payload": base64.b64encode(b"\x00\x01bin").decode(),
        "payload_encoding": "base64", "properties": {}})
    assert r.json() == {"routed": True}
    c = warren.connect()
    ch = c.channel()
    m1 = ch.basic_get(qn, auto_ack=True)
    assert m1[2] == b"hello"
    p = m1[1]
    assert (p.delivery_mode, p.priority, p.content_type, p.message_id, p.timestamp) == (2, 3, "text/plain", "m-1", 1700000000)
    assert p.headers == {"h": 1, "s": "v"}
    assert m1[0].exchange == x and m1[0].routing_key == "rk"
    assert ch.basic_get(qn, auto_ack=True)[2] == b"\x00\x01bin"
    c.close()
    r = api.post(f"/api/exchanges/%2F/{q(x)}/publish", {"routing_key": "rk"})
    assert r.status_code == 400 and "key_missing" in r.json()["reason"]
    assert api.post("/api/exchanges/%2F/no-such-x/publish", {
        "routing_key": "", "payload": "", "payload_encoding": "string", "properties": {}}).status_code == 404
    api.delete(f"/api/exchanges/%2F/{q(x)}")
    api.delete(f"/api/queues/%2F/{q(qn)}")


def test_delayed_exchange_shows_its_type_and_pending_count(api, warren, uniq):
    """As the delayed-message plugin's API shows it: type `x-delayed-message` and
    `messages_delayed`, the messages waiting for their time."""
    x = uniq("x")
    r = api.put(f"/api/exchanges/%2F/{q(x)}", {"type": "x-delayed-message",
                                               "arguments": {"x-delayed-type": "direct"}})
    assert r.status_code == 201, r.text
    j = api.get(f"/api/exchanges/%2F/{q(x)}").json()
    assert j["type"] == "x-delayed-message" and j["messages_delayed"] == 0
    assert j["arguments"] == {"x-delayed-type": "direct"}
    c = warren.connect()
    ch = c.channel()
    for _ in range(3):
        ch.basic_publish(x, "k", b"later", properties=pika.BasicProperties(
            headers={"x-delay": 60000}))
    c.close()
    assert api.get(f"/api/exchanges/%2F/{q(x)}").json()["messages_delayed"] == 3
    assert "messages_delayed" not in api.get("/api/exchanges/%2F/amq.direct").json()
    api.delete(f"/api/exchanges/%2F/{q(x)}")
