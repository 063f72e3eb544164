"""The OpenAPI document (crates/http/openapi.json) against the running server: every GET
it describes answers 200 with the documented top-level JSON shape."""

import json
import os

import pytest

from helpers import find_connection, local_port, q

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "http", "openapi.json")
doc = json.load(open(DOC))
GETS = [p for p, item in doc["paths"].items() if "get" in item]


@pytest.fixture(scope="module")
def objects(api, warren):
    """One object of each kind, named as path parameters expect them."""
    api.put("/api/queues/%2F/openapi.q", {})
    api.put("/api/exchanges/%2F/openapi.x", {"type": "topic"})
    api.post("/api/bindings/%2F/e/openapi.x/q/openapi.q", {"routing_key": "k"})
    api.post("/api/bindings/%2F/e/openapi.x/e/amq.fanout", {"routing_key": "k2"})
    api.put("/api/policies/%2F/openapi.p", {"pattern": "^openapi-none$", "definition": {"max-length": 1}})
    api.put("/api/operator-policies/%2F/openapi.op", {"pattern": "^openapi-none$", "definition": {"max-length": 1}})
    api.put("/api/topic-permissions/%2F/guest", {"exchange": "amq.topic", "write": ".*", "read": ".*"})
    conn = warren.connect()
    ch = conn.channel()
    ch.basic_consume("openapi.q", lambda *a: None)
    info = find_connection(api, lambda c: c["peer_port"] == local_port(conn))
    values = {
        "vhost": "%2F", "user": "guest", "node": "warren@localhost",
        "port": str(warren.amqp_port), "protocol": "amqp", "within": "1", "unit": "days",
        "component": "operator_policy", "source": "openapi.x",
    }
    by_path = {
        "/api/queues/{vhost}/{name}": {"name": "openapi.q"},
        "/api/exchanges/{vhost}/{name}": {"name": "openapi.x"},
        "/api/connections/{name}": {"name": q(info["name"])},
        "/api/channels/{name}": {"name": q(f"{info['name']} ({ch.channel_number})")},
        "/api/policies/{vhost}/{name}": {"name": "openapi.p"},
        "/api/operator-policies/{vhost}/{name}": {"name": "openapi.op"},
        "/api/parameters/{component}/{vhost}/{name}": {"name": "openapi.op"},
        "/api/global-parameters/{name}": {"name": "internal_cluster_id"},
        "/api/bindings/{vhost}/e/{source}/q/{dest}": {"dest": "openapi.q"},
        "/api/bindings/{vhost}/e/{source}/q/{dest}/{props}": {"dest": "openapi.q", "props": "k"},
        "/api/bindings/{vhost}/e/{source}/e/{dest}": {"dest": "amq.fanout"},
        "/api/bindings/{vhost}/e/{source}/e/{dest}/{props}": {"dest": "amq.fanout", "props": "k2"},
    }
    yield values, by_path
    conn.close()
    api.delete("/api/queues/%2F/openapi.q")
    api.delete("/api/exchanges/%2F/openapi.x")
    api.delete("/api/policies/%2F/openapi.p")
    api.delete("/api/operator-policies/%2F/openapi.op")
    api.delete("/api/topic-permissions/%2F/guest")


def fill(path, values, by_path):
    """The path with its parameters replaced by existing objects' names: the most
    specific entry of `by_path` whose template starts the path wins."""
    extra = {}
    for template, names in sorted(by_path.items(), key=lambda kv: len(kv[0])):
        if path.startswith(template):
            extra = names
    out = path
    for k, v in {**values, **extra}.items():
        out = out.replace("{" + k + "}", v)
    assert "{" not in out, out
    return out


def top_level(schema):
    if "oneOf" in schema:
        return list
    return list if schema.get("type") == "array" else dict


@pytest.mark.parametrize("path", GETS)
def test_documented_get_answers(api, objects, path):
    values, by_path = objects
    url = fill(path, values, by_path)
    r = api.get(url)
    assert r.status_code == 200, f"{url}: {r.status_code} {r.text[:300]}"
    schema = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert isinstance(r.json(), top_level(schema)), url


def test_every_documented_path_needs_credentials_except_auth(api):
    import requests

    for path in GETS:
        if "{" in path or path == "/api/auth":
            continue
        assert requests.get(api.url(path)).status_code == 401, path
