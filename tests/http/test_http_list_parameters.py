"""List parameters as RabbitMQ takes them: sort, sort_reverse, columns (nested too),
pagination (page, page_size, name, use_regex) and its errors."""

import pytest

from helpers import q


@pytest.fixture(scope="module")
def vhost(api):
    v = "list-params-vhost"
    api.put(f"/api/vhosts/{q(v)}")
    api.put(f"/api/permissions/{q(v)}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
    for i, n in enumerate(["b2", "a1", "C3", "d4", "e5"]):
        api.put(f"/api/queues/{q(v)}/{n}", {"durable": i % 2 == 0})
        for _ in range(i):
            api.post(f"/api/exchanges/{q(v)}/amq.default/publish",
                     {"routing_key": n, "payload": "x", "payload_encoding": "string", "properties": {}})
    yield v
    api.delete(f"/api/vhosts/{q(v)}")


def names(r):
    j = r.json()
    items = j["items"] if isinstance(j, dict) else j
    return [x["name"] for x in items]


def test_default_sort_is_by_name_bytewise(api, vhost):
    assert names(api.get(f"/api/queues/{q(vhost)}")) == ["C3", "a1", "b2", "d4", "e5"]


def test_sort_and_reverse(api, vhost):
    assert names(api.get(f"/api/queues/{q(vhost)}?sort=messages")) == ["b2", "a1", "C3", "d4", "e5"]
    assert names(api.get(f"/api/queues/{q(vhost)}?sort=messages&sort_reverse=true")) == ["e5", "d4", "C3", "a1", "b2"]
    assert names(api.get(f"/api/queues/{q(vhost)}?sort=name&sort_reverse=true"))[0] == "e5"
    # A field without a fast sort key sorts on the JSON.
    assert names(api.get(f"/api/queues/{q(vhost)}?sort=message_bytes_ready&sort_reverse=true"))[0] == "e5"
    assert names(api.get(f"/api/queues/{q(vhost)}?sort=backing_queue_status.len"))[-1] == "e5"
    # An unknown field leaves the order to the default.
    assert len(names(api.get(f"/api/queues/{q(vhost)}?sort=nope"))) == 5


def test_columns(api, vhost):
    r = api.get(f"/api/queues/{q(vhost)}?columns=name,messages,message_stats.publish,nope")
    rows = {x["name"]: x for x in r.json()}
    assert rows["d4"] == {"name": "d4", "messages": 3, "message_stats": {"publish": 3}}
    assert set(rows["a1"]) == {"name", "messages", "message_stats"}
    r = api.get(f"/api/exchanges/{q(vhost)}?columns=name,type&sort=type")
    assert r.json()[0] == {"name": "", "type": "direct"}


def test_pagination(api, vhost):
    r = api.get(f"/api/queues/{q(vhost)}?page=2&page_size=2&columns=name")
    assert r.json() == {"filtered_count": 5, "item_count": 2, "items": [{"name": "b2"}, {"name": "d4"}],
                        "page": 2, "page_count": 3, "page_size": 2, "total_count": 5}
    j = api.get(f"/api/queues/{q(vhost)}?page=1").json()
    assert j["page_size"] == 100 and j["item_count"] == 5
    j = api.get(f"/api/queues/{q(vhost)}?page=1&page_size=10&name=C").json()
    assert [x["name"] for x in j["items"]] == ["C3"] and j["filtered_count"] == 1 and j["total_count"] == 5
    j = api.get(f"/api/queues/{q(vhost)}?page=1&page_size=10&name=%5B" + "ab%5D&use_regex=true").json()
    assert [x["name"] for x in j["items"]] == ["a1", "b2"]
    j = api.get(f"/api/queues/{q(vhost)}?page=1&name=zzz").json()
    assert j["items"] == [] and j["page_count"] == 0
    # Without pagination the name filter does not apply.
    assert len(names(api.get(f"/api/queues/{q(vhost)}?name=a1"))) == 5


@pytest.mark.parametrize("query,status,error,reason", [
    ("page=9&page_size=2", 400, "page_out_of_range", "Page out of range, page: 9 page size: 2, len: 5"),
    ("page=0", 400, "invalid_pagination_parameters", "Invalid pagination parameters: page number 0, page size undefined"),
    ("page=1&page_size=501", 400, "invalid_pagination_parameters", "Invalid pagination parameters: page number 1, page size 501"),
    ("page=x", 400, "bad_request", "Pagination parameters are invalid"),
])
def test_pagination_errors(api, vhost, query, status, error, reason):
    r = api.get(f"/api/queues/{q(vhost)}?{query}")
    assert r.status_code == status
    assert r.json() == {"error": error, "reason": reason}


@pytest.mark.parametrize("path", ["/api/exchanges", "/api/vhosts", "/api/users", "/api/connections",
                                  "/api/channels", "/api/consumers", "/api/bindings", "/api/policies",
                                  "/api/permissions", "/api/queues"])
def test_every_list_paginates(api, path):
    j = api.get(path + "?page=1&page_size=1").json()
    assert set(j) == {"filtered_count", "item_count", "items", "page", "page_count", "page_size", "total_count"}
