"""What the API changes survives a restart, through the definitions journal: users (and
deleted users), permissions, topic permissions, vhosts with their metadata (and deleted
vhosts, whose files go), runtime parameters (vhost limits, operator policies), global
parameters and the cluster name. Older data directories kept some of these in
`management.json`: it is imported once, then removed.

Warren only (these restart the broker)."""

import hashlib
import json
import os
import signal

import pika
import pytest

from conftest import start_warren, stop
from helpers import q

ALL = {"configure": ".*", "write": ".*", "read": ".*"}


def restart(server, data_dir, crash=False):
    if crash:
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
    else:
        stop(server, keep_data=True)
    return start_warren(data_dir)


def queue_dir(data_dir, vhost, name):
    """Where Warren keeps a durable queue (a hash of its vhost and name)."""
    h = hashlib.sha256(vhost.encode() + b"\0" + name.encode() + b"\0").hexdigest()[:32]
    return os.path.join(data_dir, "queues", h)


def amqp_refusal(server, user, password, vhost="/"):
    try:
        c = server.connect(vhost=vhost, user=user, password=password)
    except pika.exceptions.ProbableAuthenticationError as e:
        return "login refused", str(e)
    except pika.exceptions.ProbableAccessDeniedError as e:
        return "vhost refused", str(e)
    c.close()
    return None


@pytest.fixture
def data_dir(tmp_path):
    return str(tmp_path / "data")


def setup_world(api):
    assert api.put("/api/users/keeper", {"password": "pw", "tags": "management"}).status_code == 201
    assert api.put("/api/users/goner", {"password": "pw", "tags": ""}).status_code == 201
    assert api.put("/api/vhosts/kept", {"description": "stays", "tags": "a,b"}).status_code == 201
    assert api.put("/api/vhosts/gone").status_code == 201
    for v in ("kept", "gone", "/"):
        assert api.put(f"/api/permissions/{q(v)}/keeper", ALL).status_code == 201
    assert api.put("/api/permissions/%2F/goner", ALL).status_code == 201
    for x in ("amq.topic", "t2"):
        body = {"exchange": x, "write": "^w\\.", "read": "^r\\."}
        assert api.put("/api/topic-permissions/kept/keeper", body).status_code in (201, 204)
    assert api.put("/api/topic-permissions/%2F/goner",
                   {"exchange": "amq.topic", "write": ".*", "read": ".*"}).status_code == 201
    assert api.put("/api/vhost-limits/kept/max-connections", {"value": 5}).status_code == 204
    assert api.put("/api/vhost-limits/gone/max-queues", {"value": 3}).status_code == 204
    assert api.put("/api/operator-policies/kept/op", {"pattern": "^op", "definition": {"max-length": 9},
                                                      "priority": 2, "apply-to": "queues"}).status_code == 201
    assert api.put("/api/policies/kept/pol", {"pattern": "^p", "definition": {"max-length": 4}}).status_code == 201
    assert api.put("/api/global-parameters/my-setting", {"value": {"k": [1, "two"]}}).status_code == 201
    assert api.put("/api/global-parameters/temporary", {"value": 1}).status_code == 201
    assert api.put("/api/cluster-name", {"name": "journaled-cluster"}).status_code == 204
    assert api.put("/api/user-limits/keeper/max-channels", {"value": 7}).status_code == 204


def change_world(server, api):
    # Deletions, which must stick too.
    c = server.connect(vhost="gone", user="keeper", password="pw")
    ch = c.channel()
    ch.queue_declare("q-in-gone", durable=True)
    ch.basic_publish("", "q-in-gone", b"x", pika.BasicProperties(delivery_mode=2))
    c.close()
    assert api.delete("/api/users/goner").status_code == 204
    assert api.delete("/api/permissions/%2F/keeper").status_code == 204
    assert api.delete("/api/global-parameters/temporary").status_code == 204
    assert api.delete("/api/vhosts/gone").status_code == 204


def check_world(server, api, data_dir, cluster_id):
    users = {u["name"]: u for u in api.get("/api/users").json()}
    assert set(users) == {"guest", "keeper"}
    assert users["keeper"]["tags"] == ["management"]
    assert users["keeper"]["limits"] == {"max-channels": 7}
    vhosts = {v["name"]: v for v in api.get("/api/vhosts").json()}
    assert set(vhosts) == {"/", "kept"}
    assert (vhosts["kept"]["description"], vhosts["kept"]["tags"]) == ("stays", ["a", "b"])
    perms = sorted((p["vhost"], p["user"]) for p in api.get("/api/permissions").json())
    assert perms == [("/", "guest"), ("kept", "guest"), ("kept", "keeper")]
    assert sorted(api.get("/api/topic-permissions").json(), key=lambda t: t["exchange"]) == [
        {"user": "keeper", "vhost": "kept", "exchange": x, "write": "^w\\.", "read": "^r\\."}
        for x in ("amq.topic", "t2")]
    assert api.get("/api/vhost-limits").json() == [{"vhost": "kept", "value": {"max-connections": 5}}]
    assert api.get("/api/operator-policies/kept/op").json() == {
        "vhost": "kept", "name": "op", "pattern": "^op", "apply-to": "queues",
        "definition": {"max-length": 9}, "priority": 2}
    assert [p["name"] for p in api.get("/api/policies/kept").json()] == ["pol"]
    globals_ = {g["name"]: g["value"] for g in api.get("/api/global-parameters").json()}
    assert globals_ == {"cluster_name": "journaled-cluster", "internal_cluster_id": cluster_id,
                        "my-setting": {"k": [1, "two"]}}
    assert api.get("/api/cluster-name").json() == {"name": "journaled-cluster"}
    # Enforced, not only listed.
    assert amqp_refusal(server, "goner", "pw")[0] == "login refused"
    assert amqp_refusal(server, "keeper", "pw", vhost="/")[0] == "vhost refused"
    assert amqp_refusal(server, "keeper", "pw", vhost="gone")[0] == "vhost refused"
    c = server.connect(vhost="kept", user="keeper", password="pw")
    ch = c.channel()
    ch.basic_publish("amq.topic", "w.ok", b"allowed")
    c.process_data_events(0.5)
    assert ch.is_open
    ch.basic_publish("amq.topic", "nope", b"refused")
    c.process_data_events(1.0)
    assert ch.is_closed
    c.close()
    assert not os.path.exists(queue_dir(data_dir, "gone", "q-in-gone"))


@pytest.mark.parametrize("crash", [False, True], ids=["clean-stop", "kill-9"])
def test_definitions_survive_a_restart(data_dir, crash):
    s = start_warren(data_dir)
    try:
        api = s.api
        setup_world(api)
        cluster_id = {g["name"]: g["value"] for g in api.get("/api/global-parameters").json()}["internal_cluster_id"]
        assert cluster_id.startswith("rabbitmq-cluster-id-")
        change_world(s, api)
        check_world(s, api, data_dir, cluster_id)
        s = restart(s, data_dir, crash=crash)
        check_world(s, s.api, data_dir, cluster_id)
        # And once more, from the snapshot the restart wrote.
        s = restart(s, data_dir)
        check_world(s, s.api, data_dir, cluster_id)
        assert not os.path.exists(os.path.join(data_dir, "management.json"))
    finally:
        stop(s)


def test_management_json_is_imported_once_and_removed(data_dir):
    s = start_warren(data_dir)
    try:
        api = s.api
        assert api.put("/api/users/mig", {"password": "pw", "tags": ""}).status_code == 201
        assert api.put("/api/vhosts/mv").status_code == 201
        assert api.put("/api/permissions/mv/mig", ALL).status_code == 201
        stop(s, keep_data=True)
        # What an older Warren wrote next to its definitions.
        old = {
            "cluster_name": "old-cluster",
            "topic_permissions": [
                {"user": "mig", "vhost": "mv", "exchange": "amq.topic", "write": "^w", "read": "^r"},
                {"user": "nobody", "vhost": "mv", "exchange": "amq.topic", "write": "", "read": ""},
            ],
            "parameters": [
                {"vhost": "mv", "component": "vhost-limits", "name": "limits", "value": {"max-queues": 4}},
                {"vhost": "no-such-vhost", "component": "vhost-limits", "name": "limits", "value": {}},
            ],
            "global_parameters": [
                {"name": "internal_cluster_id", "value": "rabbitmq-cluster-id-from-the-old-file"},
                {"name": "custom", "value": "kept"},
            ],
        }
        path = os.path.join(data_dir, "management.json")
        with open(path, "w") as f:
            json.dump(old, f)
        for _ in range(2):
            s = start_warren(data_dir)
            api = s.api
            assert not os.path.exists(path)
            assert api.get("/api/topic-permissions").json() == [
                {"user": "mig", "vhost": "mv", "exchange": "amq.topic", "write": "^w", "read": "^r"}]
            assert api.get("/api/vhost-limits").json() == [{"vhost": "mv", "value": {"max-queues": 4}}]
            globals_ = {g["name"]: g["value"] for g in api.get("/api/global-parameters").json()}
            assert globals_ == {"cluster_name": "old-cluster", "custom": "kept",
                                "internal_cluster_id": "rabbitmq-cluster-id-from-the-old-file"}
            assert api.get("/api/cluster-name").json() == {"name": "old-cluster"}
            # Restart: now from the journal alone.
            stop(s, keep_data=True)
        s = start_warren(data_dir)
    finally:
        stop(s)


def test_exported_definitions_carry_the_journaled_objects(data_dir):
    s = start_warren(data_dir)
    try:
        api = s.api
        setup_world(api)
        before = api.get("/api/definitions").json()
        s = restart(s, data_dir)
        after = s.api.get("/api/definitions").json()
        for k in ("users", "vhosts", "permissions", "topic_permissions", "parameters",
                  "global_parameters", "policies"):
            key = lambda x: json.dumps(x, sort_keys=True)  # noqa: E731
            assert sorted(map(key, after[k])) == sorted(map(key, before[k])), k
        assert any(p["component"] == "operator_policy" for p in after["parameters"])
        assert {"name": "cluster_name", "value": "journaled-cluster"} in after["global_parameters"]
    finally:
        stop(s)
