"""Policies (applied by the core: a queue matching a policy takes its settings),
operator policies, runtime parameters, global parameters and vhost limits."""

from helpers import q, wait_for


def test_policy_crud_and_effect(api, warren, uniq):
    pol, qn = uniq("pol"), uniq("capped")
    r = api.put(f"/api/policies/%2F/{q(pol)}", {"pattern": "^" + qn.replace(".", "\\.") + "$",
                                                "definition": {"max-length": 2}, "apply-to": "queues", "priority": 1})
    assert r.status_code == 201, r.text
    try:
        got = api.get(f"/api/policies/%2F/{q(pol)}").json()
        assert got == {"vhost": "/", "name": pol, "pattern": "^" + qn.replace(".", "\\.") + "$",
                       "apply-to": "queues", "definition": {"max-length": 2}, "priority": 1}
        assert got in api.get("/api/policies").json() and got in api.get("/api/policies/%2F").json()
        api.put(f"/api/queues/%2F/{q(qn)}", {})
        for i in range(5):
            api.post("/api/exchanges/%2F/amq.default/publish",
                     {"routing_key": qn, "payload": str(i), "payload_encoding": "string", "properties": {}})
        j = api.get(f"/api/queues/%2F/{q(qn)}").json()
        assert j["policy"] == pol and j["effective_policy_definition"] == {"max-length": 2}
        assert j["messages"] == 2
        assert api.put(f"/api/policies/%2F/{q(pol)}", {"pattern": "^nothing$", "definition": {"max-length": 2}}).status_code == 204
        assert api.get(f"/api/policies/%2F/{q(pol)}").json()["apply-to"] == "all"
    finally:
        assert api.delete(f"/api/policies/%2F/{q(pol)}").status_code == 204
        api.delete(f"/api/queues/%2F/{q(qn)}")
    assert api.get(f"/api/policies/%2F/{q(pol)}").status_code == 404
    assert api.delete(f"/api/policies/%2F/{q(pol)}").status_code == 404


def test_policy_validation(api, uniq):
    p = f"/api/policies/%2F/{q(uniq('pol'))}"
    r = api.put(p, {"pattern": "^a", "definition": {"nope": 10}})
    assert r.status_code == 400
    assert r.json()["error"] == "bad_request"
    assert "are not recognised policy settings" in r.json()["reason"]
    r = api.put(p, {"pattern": "^a"})
    assert r.json() == {"error": "bad_request", "reason": "[{key_missing,definition}]"}
    assert api.put(p, {"pattern": "(", "definition": {"max-length": 1}}).status_code == 400
    assert api.put("/api/policies/no-such-vhost/x", {"pattern": "a", "definition": {"max-length": 1}}).status_code == 404


def test_operator_policies(api, uniq):
    n = uniq("op")
    assert api.put(f"/api/operator-policies/%2F/{q(n)}", {"pattern": "^a", "definition": {"max-length": 10},
                                                          "apply-to": "queues"}).status_code == 201
    want = {"vhost": "/", "name": n, "pattern": "^a", "apply-to": "queues", "definition": {"max-length": 10}, "priority": 0}
    assert api.get(f"/api/operator-policies/%2F/{q(n)}").json() == want
    assert want in api.get("/api/operator-policies").json()
    ps = [p for p in api.get("/api/parameters").json() if p["name"] == n]
    assert ps[0]["component"] == "operator_policy" and ps[0]["value"]["pattern"] == "^a"
    assert api.delete(f"/api/operator-policies/%2F/{q(n)}").status_code == 204
    assert api.get(f"/api/operator-policies/%2F/{q(n)}").status_code == 404


def test_runtime_parameters_of_unknown_components_are_refused(api):
    r = api.put("/api/parameters/federation-upstream/%2F/up1", {"value": {"uri": "amqp://x"}})
    assert r.status_code == 400
    assert r.json() == {"error": "bad_request", "reason": "Validation failed\n\ncomponent federation-upstream not found\n"}
    assert api.get("/api/parameters/federation-upstream").json() == []
    assert api.get("/api/parameters/shovel/%2F").json() == []
    assert api.get("/api/parameters/shovel/%2F/x").status_code == 404


def test_global_parameters(api, uniq):
    n = uniq("g")
    assert api.put(f"/api/global-parameters/{q(n)}", {"value": {"a": 1}}).status_code == 201
    assert api.put(f"/api/global-parameters/{q(n)}", {"value": {"a": 2}}).status_code == 204
    assert api.get(f"/api/global-parameters/{q(n)}").json() == {"name": n, "value": {"a": 2}}
    names = [p["name"] for p in api.get("/api/global-parameters").json()]
    assert n in names and "internal_cluster_id" in names
    assert api.delete(f"/api/global-parameters/{q(n)}").status_code == 204
    assert api.get(f"/api/global-parameters/{q(n)}").status_code == 404


def test_vhost_limits(api, uniq):
    v = uniq("vh")
    api.put(f"/api/vhosts/{q(v)}")
    try:
        assert api.put(f"/api/vhost-limits/{q(v)}/max-connections", {"value": 10}).status_code == 204
        assert api.put(f"/api/vhost-limits/{q(v)}/max-queues", {"value": 5}).status_code == 204
        want = {"vhost": v, "value": {"max-connections": 10, "max-queues": 5}}
        assert api.get(f"/api/vhost-limits/{q(v)}").json() == [want]
        assert want in api.get("/api/vhost-limits").json()
        assert api.put(f"/api/vhost-limits/{q(v)}/max-nope", {"value": 1}).status_code == 400
        assert api.delete(f"/api/vhost-limits/{q(v)}/max-connections").status_code == 204
        assert api.get(f"/api/vhost-limits/{q(v)}").json() == [{"vhost": v, "value": {"max-queues": 5}}]
    finally:
        api.delete(f"/api/vhosts/{q(v)}")


def test_parameters_survive_a_restart():
    from conftest import spawn, start_warren, stop

    s = start_warren()
    data = s.tmp + "/data"
    try:
        s.api.put("/api/global-parameters/kept", {"value": "yes"})
        s.api.put("/api/policies/%2F/p", {"pattern": "^x", "definition": {"max-length": 1}})
        s.api.put("/api/topic-permissions/%2F/guest", {"exchange": "amq.topic", "write": ".*", "read": ".*"})
    finally:
        stop(s, keep_data=True)
    with spawn(data_dir=data) as s2:
        assert s2.api.get("/api/global-parameters/kept").json()["value"] == "yes"
        assert s2.api.get("/api/policies/%2F/p").status_code == 200
        assert len(s2.api.get("/api/topic-permissions/%2F/guest").json()) == 1
