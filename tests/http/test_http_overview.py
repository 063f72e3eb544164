"""The overview, nodes, whoami, cluster name, extensions and feature flags, with
RabbitMQ's field names, and message rates (`*_details.rate`)."""

import time

from helpers import q, wait_for


def test_overview_fields(api, warren):
    o = api.get("/api/overview").json()
    for k in ["management_version", "rabbitmq_version", "product_name", "product_version",
              "cluster_name", "node", "listeners", "object_totals", "queue_totals",
              "message_stats", "churn_rates", "exchange_types", "rates_mode", "contexts"]:
        assert k in o, k
    assert o["product_name"] == "Warren"
    assert o["node"] == "warren@localhost"
    ports = {(l["protocol"], l["port"]) for l in o["listeners"]}
    assert ("amqp", warren.amqp_port) in ports
    assert {"channels", "connections", "consumers", "exchanges", "queues"} <= set(o["object_totals"])
    for k in ["messages", "messages_ready", "messages_unacknowledged"]:
        assert isinstance(o["queue_totals"][k], int)
        assert isinstance(o["queue_totals"][k + "_details"]["rate"], float)
    assert isinstance(o["message_stats"]["publish_details"]["rate"], float)
    assert sorted(t["name"] for t in o["exchange_types"]) == ["direct", "fanout", "headers", "topic"]


def test_object_totals_count_queues_connections_and_consumers(api, warren, uniq):
    before = api.get("/api/overview").json()["object_totals"]
    c = warren.connect()
    ch = c.channel()
    name = uniq("q")
    ch.queue_declare(name)
    ch.basic_consume(name, lambda *a: None)
    try:
        t = api.get("/api/overview").json()["object_totals"]
        assert t["queues"] == before["queues"] + 1
        assert t["connections"] >= before["connections"] + 1
        assert t["channels"] >= before["channels"] + 1
        assert t["consumers"] >= before["consumers"] + 1
    finally:
        ch.queue_delete(name)
        c.close()


def test_message_rates_follow_traffic(api, warren, uniq):
    c = warren.connect()
    ch = c.channel()
    name = uniq("q")
    ch.queue_declare(name)
    try:
        deadline = time.time() + 4
        while time.time() < deadline:
            for _ in range(50):
                ch.basic_publish("", name, b"x")
            c.process_data_events(0.05)

        def rates():
            r = api.get(f"/api/queues/%2F/{q(name)}").json()
            return r["message_stats"]["publish_details"]["rate"] > 0 and r
        qj = wait_for(rates, timeout=12, what="a publish rate on the queue")
        assert qj["messages_details"]["rate"] != 0 or qj["messages"] > 0
        o = api.get("/api/overview").json()
        assert o["message_stats"]["publish"] >= qj["message_stats"]["publish"]
    finally:
        ch.queue_delete(name)
        c.close()


def test_nodes_and_node(api):
    nodes = api.get("/api/nodes").json()
    assert len(nodes) == 1
    n = nodes[0]
    assert n["name"] == "warren@localhost" and n["running"] is True
    for k in ["mem_used", "mem_limit", "fd_used", "fd_total", "disk_free", "disk_free_limit",
              "uptime", "processors", "sockets_used", "proc_used"]:
        assert isinstance(n[k], int), k
    assert n["mem_used"] > 0 and n["disk_free"] > 0
    assert api.get("/api/nodes/warren@localhost").json()["name"] == "warren@localhost"
    assert api.get("/api/nodes/rabbit@nowhere").status_code == 404


def test_whoami_extensions_feature_flags_auth(api):
    assert api.get("/api/whoami").json() == {"name": "guest", "tags": ["administrator"]}
    assert api.get("/api/extensions").json() == []
    ff = api.get("/api/feature-flags").json()
    assert all(f["state"] == "enabled" for f in ff) and ff
    assert api.get("/api/auth", auth=None).status_code == 200


def test_cluster_name_get_and_put(warren_private):
    api = warren_private.api
    assert api.get("/api/cluster-name").json() == {"name": "warren@localhost"}
    assert api.put("/api/cluster-name", {"name": "blue"}).status_code == 204
    assert api.get("/api/cluster-name").json() == {"name": "blue"}
    assert api.get("/api/overview").json()["cluster_name"] == "blue"
    assert api.put("/api/cluster-name", {}).status_code == 400
