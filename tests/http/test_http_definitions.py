"""Definitions export and import: Warren's own round trip, a document exported by
RabbitMQ 3.10 imported into Warren (users keep their passwords, policies apply, bindings
route), one vhost's definitions, and Warren's export imported into RabbitMQ."""

import json
import os
import uuid

import pytest

from conftest import spawn
from helpers import q

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "rabbitmq-3.10-definitions.json")


def populate(api):
    """A broker with one of everything."""
    v = "shop"
    api.put(f"/api/vhosts/{v}", {"description": "the shop", "tags": "a,b"})
    api.put("/api/users/carol", {"password": "carol-pw", "tags": "management"})
    api.put(f"/api/permissions/{v}/carol", {"configure": "^carol", "write": ".*", "read": ".*"})
    api.put(f"/api/topic-permissions/{v}/carol", {"exchange": "amq.topic", "write": "^c", "read": ".*"})
    api.put(f"/api/policies/{v}/cap", {"pattern": "^capped", "definition": {"max-length": 3}, "priority": 4})
    api.put(f"/api/vhost-limits/{v}/max-queues", {"value": 50})
    api.put("/api/global-parameters/marker", {"value": {"x": 1}})
    api.put(f"/api/exchanges/{v}/orders", {"type": "topic", "durable": True, "arguments": {"alternate-exchange": "amq.fanout"}})
    api.put(f"/api/exchanges/{v}/fan", {"type": "fanout", "durable": True})
    api.put(f"/api/queues/{v}/capped.q", {"durable": True, "arguments": {"x-message-ttl": 1000}})
    api.put(f"/api/queues/{v}/plain", {"durable": True})
    api.post(f"/api/bindings/{v}/e/orders/q/plain", {"routing_key": "o.*", "arguments": {"k": "v"}})
    api.post(f"/api/bindings/{v}/e/orders/e/fan", {"routing_key": "#"})


def normalised(d):
    """A definitions document as comparable sets (order and Warren's type hints aside)."""
    def strip(x):
        x = dict(x)
        x.pop("x-warren-types", None)
        return json.dumps(x, sort_keys=True)
    out = {}
    for k in ["users", "vhosts", "permissions", "topic_permissions", "parameters", "policies",
              "queues", "exchanges", "bindings"]:
        out[k] = sorted(strip(x) for x in d.get(k, []))
    out["global_parameters"] = sorted(
        strip(x) for x in d.get("global_parameters", []) if x["name"] != "internal_cluster_id")
    return out


def test_export_shape(api):
    d = api.get("/api/definitions").json()
    assert list(d)[:4] == ["rabbit_version", "rabbitmq_version", "product_name", "product_version"]
    for k in ["users", "vhosts", "permissions", "topic_permissions", "parameters",
              "global_parameters", "policies", "queues", "exchanges", "bindings"]:
        assert isinstance(d[k], list), k
    assert any(u["name"] == "guest" and u["tags"] == ["administrator"] for u in d["users"])
    assert {"name": "/", "tags": []}.items() <= [v for v in d["vhosts"] if v["name"] == "/"][0].items()
    assert not any(x["name"].startswith("amq.") or x["name"] == "" for x in d["exchanges"])
    r = api.get("/api/definitions?download=defs.json")
    assert r.headers["content-disposition"] == 'attachment; filename="defs.json"'


def test_round_trip_between_two_brokers():
    with spawn() as a, spawn() as b:
        populate(a.api)
        exported = a.api.get("/api/definitions").json()
        r = b.api.post("/api/definitions", exported)
        assert r.status_code == 204, r.text
        again = b.api.get("/api/definitions").json()
        assert normalised(again) == normalised(exported)
        # The imported user logs in with its password, over HTTP and AMQP.
        assert b.api.as_user("carol", "carol-pw").get("/api/whoami").status_code == 200
        b.connect(vhost="shop", user="carol", password="carol-pw").close()
        # The imported policy applies.
        assert b.api.get("/api/queues/shop/capped.q").json()["policy"] == "cap"


def test_rabbitmq_export_imports_into_warren():
    doc = json.load(open(FIXTURE))
    with spawn() as s:
        api = s.api
        r = api.post("/api/definitions", doc)
        assert r.status_code == 204, r.text
        # RabbitMQ 3.10 exports no vhost metadata: the vhost comes with its name only.
        assert api.get("/api/vhosts/imported").json()["name"] == "imported"
        # Passwords hashed by RabbitMQ work in Warren.
        assert api.as_user("alice", "alice-pw").get("/api/whoami").json() == {"name": "alice", "tags": ["management"]}
        assert api.as_user("bob", "bob-pw").get("/api/nodes").status_code == 200
        assert api.as_user("guest", "guest").get("/api/whoami").status_code == 200
        assert api.get("/api/users/bob").json()["limits"] == {"max-connections": 7}
        assert api.get("/api/permissions/imported/alice").json()["configure"] == "^alice\\."
        assert api.get("/api/topic-permissions/imported/alice").json()[0]["write"] == "^alice\\."
        assert api.get("/api/vhost-limits/imported").json() == [{"vhost": "imported", "value": {"max-connections": 100}}]
        assert api.get("/api/global-parameters/imported_marker").json()["value"] == {"from": "rabbitmq"}
        orders = api.get("/api/queues/imported/orders").json()
        assert orders["durable"] is True
        assert orders["arguments"] == {"x-max-length": 500, "x-overflow": "reject-publish", "x-dead-letter-exchange": "unrouted"}
        assert api.get("/api/queues/imported/ttl.audit").json()["policy"] == "ttl"
        assert api.get("/api/exchanges/imported/inner").json()["internal"] is True
        assert api.get("/api/exchanges/imported/events").json()["arguments"] == {"alternate-exchange": "unrouted"}
        # Bindings route: topic, alternate exchange, headers, exchange to exchange.
        c = s.connect(vhost="imported", user="bob", password="bob-pw")
        ch = c.channel()
        ch.basic_publish("events", "order.new", b"o")
        ch.basic_publish("events.missing" if False else "by-header", "", b"h",
                         properties=__import__("pika").BasicProperties(headers={"region": "eu"}))
        c.close()
        assert api.get("/api/queues/imported/orders").json()["messages"] == 1
        assert api.get("/api/queues/imported/ttl.audit").json()["messages"] == 1
        assert api.get("/api/queues/imported/eu").json()["messages"] == 1
        e2e = api.get("/api/bindings/imported/e/events/e/inner").json()
        assert [b["routing_key"] for b in e2e] == ["internal.#"]
        # And Warren's export holds what RabbitMQ's did.
        back = normalised(api.get("/api/definitions").json())
        want = normalised(doc)
        for k in ["queues", "exchanges", "bindings", "policies", "permissions", "topic_permissions", "parameters"]:
            assert back[k] == want[k], k
        users = {json.loads(u)["name"]: json.loads(u) for u in back["users"]}
        for u in doc["users"]:
            assert users[u["name"]]["password_hash"] == u["password_hash"]
            assert users[u["name"]]["tags"] == u["tags"]


def test_one_vhost_export_and_import(api, uniq):
    src, dst = uniq("src"), uniq("dst")
    api.put(f"/api/vhosts/{q(src)}")
    api.put(f"/api/vhosts/{q(dst)}")
    try:
        api.put(f"/api/queues/{q(src)}/q1", {"durable": True, "arguments": {"x-max-length": 9}})
        api.put(f"/api/exchanges/{q(src)}/x1", {"type": "direct", "durable": True})
        api.post(f"/api/bindings/{q(src)}/e/x1/q/q1", {"routing_key": "k"})
        api.put(f"/api/policies/{q(src)}/p1", {"pattern": "^q", "definition": {"max-length": 5}})
        d = api.get(f"/api/definitions/{q(src)}").json()
        assert set(d) >= {"rabbit_version", "parameters", "policies", "queues", "exchanges", "bindings"}
        assert d["queues"] == [{"name": "q1", "durable": True, "auto_delete": False,
                                "arguments": {"x-max-length": 9}, "x-warren-types": {"x-max-length": "l"}}] or \
            [{k: v for k, v in x.items() if k != "x-warren-types"} for x in d["queues"]] == [
                {"name": "q1", "durable": True, "auto_delete": False, "arguments": {"x-max-length": 9}}]
        assert "vhost" not in d["queues"][0]
        assert api.post(f"/api/definitions/{q(dst)}", d).status_code == 204
        assert api.get(f"/api/queues/{q(dst)}/q1").json()["arguments"] == {"x-max-length": 9}
        assert api.get(f"/api/bindings/{q(dst)}/e/x1/q/q1").json()[0]["routing_key"] == "k"
        assert api.get(f"/api/policies/{q(dst)}/p1").status_code == 200
    finally:
        api.delete(f"/api/vhosts/{q(src)}")
        api.delete(f"/api/vhosts/{q(dst)}")


def test_import_errors(api):
    r = api.request("POST", "/api/definitions", data="junk", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json() == {"error": "bad_request", "reason": "failed_to_parse_json"}
    r = api.post("/api/definitions", {"queues": [{"name": "x", "vhost": "nope", "durable": True,
                                                  "auto_delete": False, "arguments": {}}]})
    assert r.status_code == 400 and r.json() == {"error": "bad_request", "reason": ["no_such_vhost", "nope"]}
    # A binding whose source is missing is skipped, as RabbitMQ 3.x does.
    r = api.post("/api/definitions", {"bindings": [{"source": "nope", "vhost": "/", "destination": "x",
                                                    "destination_type": "queue", "routing_key": "", "arguments": {}}]})
    assert r.status_code == 204


def test_warren_export_imports_into_rabbitmq(api, reference):
    """Warren's export of a user and a vhost, imported into the reference RabbitMQ: the
    user logs in there with the password set in Warren."""
    tag = uuid.uuid4().hex[:8]
    user, vhost = f"warren-export-{tag}", f"warren-export-{tag}"
    api.put(f"/api/users/{user}", {"password": "pw-" + tag, "tags": "management"})
    api.put(f"/api/vhosts/{vhost}")
    api.put(f"/api/permissions/{vhost}/{user}", {"configure": ".*", "write": ".*", "read": ".*"})
    api.put(f"/api/queues/{vhost}/q", {"durable": True, "arguments": {"x-message-ttl": 5000}})
    api.put(f"/api/exchanges/{vhost}/x", {"type": "topic", "durable": True})
    api.post(f"/api/bindings/{vhost}/e/x/q/q", {"routing_key": "a.#"})
    api.put(f"/api/policies/{vhost}/p", {"pattern": "^q$", "definition": {"max-length": 5}})
    full = api.get("/api/definitions").json()
    doc = {k: v for k, v in full.items() if not isinstance(v, list)}
    doc["users"] = [u for u in full["users"] if u["name"] == user]
    doc["vhosts"] = [v for v in full["vhosts"] if v["name"] == vhost]
    for k in ["permissions", "policies", "queues", "exchanges", "bindings"]:
        doc[k] = [x for x in full[k] if x["vhost"] == vhost]
    ref = reference.api
    try:
        r = ref.post("/api/definitions", doc)
        assert r.status_code in (201, 204), r.text
        assert ref.as_user(user, "pw-" + tag).get("/api/whoami").status_code == 200
        assert ref.get(f"/api/queues/{vhost}/q").json()["arguments"] == {"x-message-ttl": 5000}
        assert ref.get(f"/api/bindings/{vhost}/e/x/q/q").json()[0]["routing_key"] == "a.#"
        assert ref.get(f"/api/policies/{vhost}/p").json()["definition"] == {"max-length": 5}
        # And back: RabbitMQ's export of that vhost imports into Warren.
        back = ref.get(f"/api/definitions/{vhost}").json()
        api.delete(f"/api/vhosts/{vhost}")
        api.put(f"/api/vhosts/{vhost}")
        assert api.post(f"/api/definitions/{vhost}", back).status_code == 204
        assert api.get(f"/api/queues/{vhost}/q").json()["arguments"] == {"x-message-ttl": 5000}
    finally:
        ref.delete(f"/api/vhosts/{vhost}")
        ref.delete(f"/api/users/{user}")
        api.delete(f"/api/vhosts/{vhost}")
        api.delete(f"/api/users/{user}")
