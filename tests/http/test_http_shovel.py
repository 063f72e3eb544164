"""Moving messages with a one-shot shovel, as RabbitMQ's UI does ("Move messages"):
PUT /api/parameters/shovel/{vhost}/{name} with src-queue, dest-queue (or dest-exchange)
and src-delete-after. Messages keep their properties and order; none is lost or
duplicated, also when the destination refuses some or publishers keep publishing."""

import threading
import time

import pika

from helpers import q


def move_body(src, dest, vhost="%2F", **extra):
    """The body RabbitMQ's management UI sends for "Move messages"."""
    value = {
        "src-uri": f"amqp:///{vhost}", "src-queue": src, "src-protocol": "amqp091",
        "src-prefetch-count": 1000, "src-delete-after": "queue-length",
        "dest-protocol": "amqp091", "dest-uri": f"amqp:///{vhost}",
        "dest-add-forward-headers": False, "ack-mode": "on-confirm", "dest-queue": dest,
    }
    value.update(extra)
    return {"component": "shovel", "vhost": "/", "name": f"Move from {src}", "value": value}


def shovel(api, src, body):
    return api.put(f"/api/parameters/shovel/%2F/{q('Move from ' + src)}", body)


def declare(api, name, **body):
    assert api.put(f"/api/queues/%2F/{q(name)}", body).status_code == 201


def count(api, name):
    return api.get(f"/api/queues/%2F/{q(name)}").json()["messages"]


def wait_count(api, name, n):
    """Waits for pika's unconfirmed publishes to be in the queue."""
    deadline = time.time() + 10
    while count(api, name) < n and time.time() < deadline:
        time.sleep(0.05)
    assert count(api, name) == n


def drain(ch, name):
    out = []
    while True:
        m, props, body = ch.basic_get(name, auto_ack=True)
        if m is None:
            return out
        out.append((m, props, body))


def test_move_keeps_order_and_properties(warren, api, uniq):
    src, dest = uniq("src"), uniq("dest")
    declare(api, src, durable=True)
    declare(api, dest, durable=True)
    conn = warren.connect()
    ch = conn.channel()
    try:
        for i in range(300):
            ch.basic_publish("", src, f"m{i}".encode(), pika.BasicProperties(
                delivery_mode=2 if i % 2 else 1, headers={"i": i}, content_type="text/plain", message_id=f"id{i}"))
        wait_count(api, src, 300)
        r = shovel(api, src, move_body(src, dest))
        assert r.status_code == 201, r.text
        assert count(api, src) == 0
        assert count(api, dest) == 300
        # One-shot: nothing is left behind, as RabbitMQ's shovel deletes itself when done.
        assert api.get(f"/api/parameters/shovel/%2F/{q('Move from ' + src)}").status_code == 404
        assert api.get("/api/parameters/shovel").json() == []
        got = drain(ch, dest)
        assert [b for _, _, b in got] == [f"m{i}".encode() for i in range(300)]
        for i, (m, p, _) in enumerate(got):
            assert (m.exchange, m.routing_key) == ("", dest)
            assert (p.headers, p.content_type, p.message_id, p.delivery_mode) == ({"i": i}, "text/plain", f"id{i}", 2 if i % 2 else 1)
            assert not m.redelivered
        stats = api.get(f"/api/queues/%2F/{q(src)}").json()
        assert stats["messages_unacknowledged"] == 0
    finally:
        conn.close()
        api.delete(f"/api/queues/%2F/{q(src)}")
        api.delete(f"/api/queues/%2F/{q(dest)}")


def test_count_moves_only_that_many_and_a_missing_destination_is_declared(warren, api, uniq):
    src, dest = uniq("src"), uniq("dest")
    declare(api, src)
    for i in range(10):
        api.post("/api/exchanges/%2F/amq.default/publish",
                 {"properties": {}, "routing_key": src, "payload": str(i), "payload_encoding": "string"})
    try:
        r = shovel(api, src, move_body(src, dest, **{"src-delete-after": 4}))
        assert r.status_code == 201, r.text
        d = api.get(f"/api/queues/%2F/{q(dest)}").json()
        assert (d["messages"], d["durable"], d["type"]) == (4, True, "classic")
        assert count(api, src) == 6
        got = api.post(f"/api/queues/%2F/{q(dest)}/get", {"count": 10, "ackmode": "ack_requeue_false", "encoding": "auto"}).json()
        assert [m["payload"] for m in got] == ["0", "1", "2", "3"]
        left = api.post(f"/api/queues/%2F/{q(src)}/get", {"count": 10, "ackmode": "ack_requeue_false", "encoding": "auto"}).json()
        assert [m["payload"] for m in left] == ["4", "5", "6", "7", "8", "9"]
    finally:
        api.delete(f"/api/queues/%2F/{q(src)}")
        api.delete(f"/api/queues/%2F/{q(dest)}")


def test_a_refusing_destination_loses_and_duplicates_nothing(api, uniq):
    src, dest = uniq("src"), uniq("dest")
    declare(api, src)
    declare(api, dest, arguments={"x-max-length": 3, "x-overflow": "reject-publish"})
    for i in range(10):
        api.post("/api/exchanges/%2F/amq.default/publish",
                 {"properties": {}, "routing_key": src, "payload": str(i), "payload_encoding": "string"})
    try:
        r = shovel(api, src, move_body(src, dest))
        assert r.status_code == 400
        assert "moved 3 of 10" in r.json()["reason"]
        assert count(api, dest) == 3
        s = api.get(f"/api/queues/%2F/{q(src)}").json()
        assert (s["messages"], s["messages_unacknowledged"]) == (7, 0)
        got = api.post(f"/api/queues/%2F/{q(src)}/get", {"count": 10, "ackmode": "ack_requeue_false", "encoding": "auto"}).json()
        assert sorted(int(m["payload"]) for m in got) == list(range(3, 10))
    finally:
        api.delete(f"/api/queues/%2F/{q(src)}")
        api.delete(f"/api/queues/%2F/{q(dest)}")


def test_move_while_publishing_loses_nothing(warren, api, uniq):
    src, dest = uniq("src"), uniq("dest")
    declare(api, src, durable=True)
    declare(api, dest, durable=True)
    conn = warren.connect()
    ch = conn.channel()
    for i in range(2000):
        ch.basic_publish("", src, str(i).encode(), pika.BasicProperties(delivery_mode=2))
    published = [2000]
    stop = threading.Event()

    def keep_publishing():
        c = warren.connect()
        k = c.channel()
        k.confirm_delivery()
        while not stop.is_set():
            k.basic_publish("", src, str(published[0]).encode())
            published[0] += 1
        c.close()

    t = threading.Thread(target=keep_publishing)
    try:
        wait_count(api, src, 2000)
        t.start()
        r = shovel(api, src, move_body(src, dest, **{"src-prefetch-count": 100}))
        assert r.status_code == 201, r.text
        stop.set()
        t.join()
        assert count(api, dest) >= 2000
        assert count(api, src) + count(api, dest) == published[0]
        bodies = [int(b) for _, _, b in drain(ch, src)] + [int(b) for _, _, b in drain(ch, dest)]
        assert sorted(bodies) == list(range(published[0]))
    finally:
        stop.set()
        conn.close()
        api.delete(f"/api/queues/%2F/{q(src)}")
        api.delete(f"/api/queues/%2F/{q(dest)}")


def test_to_an_exchange_with_a_routing_key(api, uniq):
    src, dest = uniq("src"), uniq("dest")
    declare(api, src)
    declare(api, dest)
    assert api.post(f"/api/bindings/%2F/e/amq.topic/q/{q(dest)}", {"routing_key": "moved.#"}).status_code == 201
    api.post("/api/exchanges/%2F/amq.default/publish",
             {"properties": {}, "routing_key": src, "payload": "x", "payload_encoding": "string"})
    try:
        body = move_body(src, None, **{"dest-exchange": "amq.topic", "dest-exchange-key": "moved.here"})
        del body["value"]["dest-queue"]
        assert shovel(api, src, body).status_code == 201
        m = api.post(f"/api/queues/%2F/{q(dest)}/get", {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"}).json()
        assert [(x["exchange"], x["routing_key"], x["payload"]) for x in m] == [("amq.topic", "moved.here", "x")]
    finally:
        api.delete(f"/api/queues/%2F/{q(src)}")
        api.delete(f"/api/queues/%2F/{q(dest)}")


def test_what_it_cannot_do_is_refused(api, uniq):
    src = uniq("src")
    declare(api, src)
    try:
        remote = shovel(api, src, move_body(src, "d", **{"dest-uri": "amqp://elsewhere:5672/%2F"}))
        assert remote.status_code == 400 and "only within this broker" in remote.json()["reason"]
        never = shovel(api, src, move_body(src, "d", **{"src-delete-after": "never"}))
        assert never.status_code == 400 and "one-shot" in never.json()["reason"]
        missing = shovel(api, "no-such-queue", move_body("no-such-queue", "d"))
        assert missing.status_code == 404
        assert missing.json()["reason"] == "no queue 'no-such-queue' in vhost '/'"
        assert api.get("/api/queues/%2F/d").status_code == 404
    finally:
        api.delete(f"/api/queues/%2F/{q(src)}")


def test_reading_the_source_needs_read_permission(api, uniq):
    src, user = uniq("src"), uniq("pm")
    declare(api, src)
    assert api.put(f"/api/users/{q(user)}", {"password": "pw", "tags": "policymaker"}).status_code == 201
    assert api.put(f"/api/permissions/%2F/{q(user)}", {"configure": ".*", "write": ".*", "read": "^nothing$"}).status_code == 201
    try:
        r = api.as_user(user, "pw").put(f"/api/parameters/shovel/%2F/{q('Move from ' + src)}", move_body(src, "d"))
        assert r.status_code == 401
        assert r.json()["reason"].startswith(f"ACCESS_REFUSED - access to queue '{src}' in vhost '/' refused")
    finally:
        api.delete(f"/api/users/{q(user)}")
        api.delete(f"/api/queues/%2F/{q(src)}")
