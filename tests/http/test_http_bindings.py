"""Bindings through the API: exchange to queue and exchange to exchange, created with a
Location naming the binding's properties_key, read and deleted by that key."""

from helpers import q


def setup(api, uniq):
    x, y, qn = uniq("x"), uniq("y"), uniq("q")
    api.put(f"/api/exchanges/%2F/{q(x)}", {"type": "topic"})
    api.put(f"/api/exchanges/%2F/{q(y)}", {"type": "fanout"})
    api.put(f"/api/queues/%2F/{q(qn)}", {})
    return x, y, qn


def teardown(api, x, y, qn):
    api.delete(f"/api/exchanges/%2F/{q(x)}")
    api.delete(f"/api/exchanges/%2F/{q(y)}")
    api.delete(f"/api/queues/%2F/{q(qn)}")


def test_exchange_to_queue(api, warren, uniq):
    x, y, qn = setup(api, uniq)
    try:
        r = api.post(f"/api/bindings/%2F/e/{q(x)}/q/{q(qn)}", {"routing_key": "a.#"})
        assert r.status_code == 201
        assert r.headers["location"] == f"{qn}/a.%23"
        r = api.post(f"/api/bindings/%2F/e/{q(x)}/q/{q(qn)}", {"routing_key": "", "arguments": {"x": 1}})
        loc = r.headers["location"]
        assert loc.startswith(f"{qn}/~")
        listed = api.get(f"/api/bindings/%2F/e/{q(x)}/q/{q(qn)}").json()
        keys = {b["properties_key"] for b in listed}
        assert keys == {"a.%23", loc.split("/", 1)[1]}
        b = api.get(f"/api/bindings/%2F/e/{q(x)}/q/{q(qn)}/{q('a.%23')}").json()
        assert (b["routing_key"], b["arguments"], b["destination_type"]) == ("a.#", {}, "queue")
        # Routing uses it.
        c = warren.connect()
        ch = c.channel()
        ch.basic_publish(x, "a.b.c", b"routed")
        assert ch.basic_get(qn, auto_ack=True)[2] == b"routed"
        c.close()
        assert api.delete(f"/api/bindings/%2F/e/{q(x)}/q/{q(qn)}/{q('a.%23')}").status_code == 204
        assert api.delete(f"/api/bindings/%2F/e/{q(x)}/q/{q(qn)}/{q('a.%23')}").status_code == 404
        assert api.get(f"/api/bindings/%2F/e/{q(x)}/q/{q(qn)}/nope").status_code == 404
        assert len(api.get(f"/api/bindings/%2F/e/{q(x)}/q/{q(qn)}").json()) == 1
    finally:
        teardown(api, x, y, qn)


def test_exchange_to_exchange(api, uniq):
    x, y, qn = setup(api, uniq)
    try:
        r = api.post(f"/api/bindings/%2F/e/{q(x)}/e/{q(y)}", {"routing_key": "b.*"})
        assert r.status_code == 201 and r.headers["location"] == f"{y}/b.%2A"
        got = api.get(f"/api/bindings/%2F/e/{q(x)}/e/{q(y)}").json()
        assert got == [{"source": x, "vhost": "/", "destination": y, "destination_type": "exchange",
                        "routing_key": "b.*", "arguments": {}, "properties_key": "b.%2A"}]
        everything = api.get("/api/bindings/%2F").json()
        assert got[0] in everything
        assert got[0] in api.get("/api/bindings").json()
        assert api.delete(f"/api/bindings/%2F/e/{q(x)}/e/{q(y)}/b.%252A").status_code == 204
        assert api.get(f"/api/bindings/%2F/e/{q(x)}/e/{q(y)}").json() == []
    finally:
        teardown(api, x, y, qn)


def test_missing_ends(api, uniq):
    x, y, qn = setup(api, uniq)
    try:
        r = api.post(f"/api/bindings/%2F/e/no-such-x/q/{q(qn)}", {"routing_key": "r"})
        assert r.status_code == 404
        assert r.json() == {"error": "not_found", "reason": "no exchange 'no-such-x' in vhost '/'"}
        r = api.post(f"/api/bindings/%2F/e/{q(x)}/q/no-such-q", {"routing_key": "r"})
        assert r.json() == {"error": "not_found", "reason": "no queue 'no-such-q' in vhost '/'"}
        assert api.get(f"/api/bindings/%2F/e/{q(x)}/q/no-such-q").status_code == 404
        r = api.post(f"/api/bindings/%2F/e/amq.default/q/{q(qn)}", {"routing_key": "r"})
        assert r.status_code == 401
    finally:
        teardown(api, x, y, qn)
