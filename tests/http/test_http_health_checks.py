"""Health checks and the aliveness test, with RabbitMQ's answers."""

from helpers import q


def test_alarm_and_vhost_checks(api):
    assert api.get("/api/health/checks/alarms").json() == {"status": "ok"}
    assert api.get("/api/health/checks/local-alarms").json() == {"status": "ok"}
    assert api.get("/api/health/checks/virtual-hosts").json() == {"status": "ok"}
    assert api.get("/api/healthchecks/node").json() == {"status": "ok"}
    assert api.get("/api/healthchecks/node/warren@localhost").json() == {"status": "ok"}
    r = api.get("/api/health/checks/node-is-quorum-critical").json()
    assert r["status"] == "ok"
    assert api.get("/api/health/checks/node-is-mirror-sync-critical").json()["status"] == "ok"
    assert api.get("/api/health/checks/certificate-expiration/1/days").json() == {"status": "ok"}


def test_port_and_protocol_listeners(api, warren):
    assert api.get(f"/api/health/checks/port-listener/{warren.amqp_port}").json() == {"status": "ok", "port": warren.amqp_port}
    r = api.get("/api/health/checks/port-listener/1")
    assert r.status_code == 503
    j = r.json()
    assert j["status"] == "failed" and j["reason"] == "No active listener" and j["missing"] == 1
    assert warren.amqp_port in j["ports"]
    r = api.get("/api/health/checks/port-listener/abc")
    assert r.status_code == 400 and r.json() == {"error": "bad_request", "reason": "Invalid port"}
    assert api.get("/api/health/checks/protocol-listener/amqp").json() == {"status": "ok", "protocol": "amqp"}
    r = api.get("/api/health/checks/protocol-listener/nope")
    assert r.status_code == 503 and r.json()["missing"] == "nope"


def test_aliveness(api, uniq):
    assert api.get("/api/aliveness-test/%2F").json() == {"status": "ok"}
    assert api.get("/api/aliveness-test/%2F").json() == {"status": "ok"}
    assert api.get("/api/aliveness-test/no-such-vhost").status_code == 404
    assert api.get("/api/queues/%2F/aliveness-test").json()["messages"] == 0


def test_checks_need_credentials(api):
    assert api.get("/api/health/checks/alarms", auth=None).status_code == 401
