"""Sender-selected distribution: the CC and BCC headers.

Recorded against RabbitMQ 3.10.8:
- a message is routed with its routing key plus every CC and BCC key (the union of the
  queues: one copy per queue), on every exchange type that uses routing keys;
- the delivered message keeps CC; BCC is removed; the delivery's routing key is the one
  of the publish;
- CC/BCC must be arrays: entries that are not strings are ignored; any other type closes
  the channel: 406 PRECONDITION_FAILED - invalid message:
  {unacceptable_type_in_header,"CC",longstr} (basic.publish);
- a message routed only by its CC keys is not returned to a mandatory publisher.
(CC/BCC in dead-lettering are in test_dead_lettering.py.)
"""

import pika
import pytest

from helpers import (
    BASIC_PUBLISH,
    cleanup,  # noqa: F401  (fixture)
    get_all,
    settle,
    wait_channel_closed,
)


def H(**headers):
    return pika.BasicProperties(headers=headers)


@pytest.fixture
def keyed(ch, uniq, cleanup):
    """keyed(type, {name: binding_key}) -> (exchange, {name: queue})."""

    def make(etype, bindings):
        x = cleanup.exchange(uniq(etype))
        ch.exchange_declare(x, etype)
        queues = {}
        for name, key in bindings.items():
            queues[name] = ch.queue_declare("", exclusive=True).method.queue
            ch.queue_bind(queues[name], x, key)
        return x, queues

    return make


def received(ch, queues):
    return {name: [(m.routing_key, b, (p.headers or {}).get("CC"), "BCC" in (p.headers or {}))
                   for m, p, b in get_all(ch, q)]
            for name, q in queues.items()}


def test_cc_routes_and_is_kept(ch, keyed):
    x, qs = keyed("direct", {"a": "a", "b": "b", "c": "c"})
    ch.basic_publish(x, "a", b"m", H(CC=["b"]))
    assert received(ch, qs) == {"a": [("a", b"m", ["b"], False)],
                                "b": [("a", b"m", ["b"], False)], "c": []}


def test_bcc_routes_and_is_removed(ch, keyed):
    x, qs = keyed("direct", {"a": "a", "b": "b", "c": "c"})
    ch.basic_publish(x, "a", b"m", H(BCC=["c"], other="kept"))
    got = {name: [(m.routing_key, b, p.headers) for m, p, b in get_all(ch, q)]
           for name, q in qs.items()}
    assert got == {"a": [("a", b"m", {"other": "kept"})], "b": [],
                   "c": [("a", b"m", {"other": "kept"})]}


def test_cc_and_bcc_together(ch, keyed):
    x, qs = keyed("direct", {"a": "a", "b": "b", "c": "c", "d": "d"})
    ch.basic_publish(x, "a", b"m", H(CC=["b", "nobody"], BCC=["c"]))
    assert received(ch, qs) == {
        "a": [("a", b"m", ["b", "nobody"], False)], "b": [("a", b"m", ["b", "nobody"], False)],
        "c": [("a", b"m", ["b", "nobody"], False)], "d": []}


def test_one_copy_per_queue(ch, keyed):
    x, qs = keyed("direct", {"a": "a"})
    ch.basic_publish(x, "a", b"m", H(CC=["a", "a"], BCC=["a"]))
    assert [b for _m, _p, b in get_all(ch, qs["a"])] == [b"m"]


def test_topic_exchange_matches_cc_keys(ch, keyed):
    x, qs = keyed("topic", {"eu": "orders.eu.*", "us": "orders.us.#", "all": "#.audit"})
    ch.basic_publish(x, "orders.eu.new", b"m", H(CC=["orders.us.east.new"], BCC=["x.audit"]))
    got = {name: [b for _m, _p, b in get_all(ch, q)] for name, q in qs.items()}
    assert got == {"eu": [b"m"], "us": [b"m"], "all": [b"m"]}


def test_default_exchange_routes_cc_to_queues_by_name(ch):
    qs = [ch.queue_declare("", exclusive=True).method.queue for _ in range(3)]
    ch.basic_publish("", qs[0], b"m", H(CC=[qs[1]], BCC=[qs[2]]))
    got = [[(m.routing_key, b) for m, _p, b in get_all(ch, q)] for q in qs]
    assert got == [[(qs[0], b"m")]] * 3


def test_fanout_ignores_keys(ch, keyed):
    x, qs = keyed("fanout", {"a": "", "b": ""})
    ch.basic_publish(x, "k", b"m", H(CC=["z"], BCC=["y"]))
    assert {n: [b for _m, _p, b in get_all(ch, q)] for n, q in qs.items()} == {
        "a": [b"m"], "b": [b"m"]}


def test_non_string_entries_are_ignored(ch, keyed):
    x, qs = keyed("direct", {"a": "a", "b": "b", "five": "5"})
    ch.basic_publish(x, "a", b"m", H(CC=["b", 5]))
    got = {name: [b for _m, _p, b in get_all(ch, q)] for name, q in qs.items()}
    assert got == {"a": [b"m"], "b": [b"m"], "five": []}


def test_empty_arrays(ch, keyed):
    x, qs = keyed("direct", {"a": "a"})
    ch.basic_publish(x, "a", b"m", H(CC=[], BCC=[]))
    [(m, p, b)] = get_all(ch, qs["a"])
    assert p.headers == {"CC": []}


def test_routed_only_by_cc_is_not_returned(conn, ch, keyed):
    x, qs = keyed("direct", {"b": "b"})
    returned = []
    ch.add_on_return_callback(lambda *a: returned.append(a))
    ch.basic_publish(x, "nobody", b"m", H(CC=["b"]), mandatory=True)
    settle(conn, 0.2)
    assert returned == []
    assert [(m.routing_key, b) for m, _p, b in get_all(ch, qs["b"])] == [("nobody", b"m")]


@pytest.mark.parametrize("header,value,type_name", [
    ("CC", "abc", "longstr"),
    ("CC", 5, "signedint"),
    ("BCC", "abc", "longstr"),
    ("BCC", {"k": "v"}, "table"),
], ids=["cc-string", "cc-int", "bcc-string", "bcc-table"])
def test_header_of_wrong_type_closes_channel(conn, header, value, type_name):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"m", H(**{header: value}))
    wait_channel_closed(conn, ch, 406, "PRECONDITION_FAILED - invalid message: "
                        f'{{unacceptable_type_in_header,"{header}",{type_name}}}', BASIC_PUBLISH)
    assert conn.is_open
    assert conn.channel().basic_get(q)[0] is None
