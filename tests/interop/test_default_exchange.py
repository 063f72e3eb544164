"""The default exchange "": every queue is reachable by its own name, and nothing else
may be done with it."""

import pika
import pytest

from helpers import (
    QUEUE_BIND,
    QUEUE_UNBIND,
    bodies,
    channel_closed,
    cleanup,  # noqa: F401  (fixture)
    settle,
)

DEFAULT_X = "ACCESS_REFUSED - operation not permitted on the default exchange"


def test_routes_by_queue_name(ch, uniq, cleanup):
    named = cleanup.queue(uniq("q"))
    ch.queue_declare(named)
    server_named = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", named, b"to-named")
    ch.basic_publish("", server_named, b"to-server-named")
    assert bodies(ch, named) == [b"to-named"]
    assert bodies(ch, server_named) == [b"to-server-named"]


def test_delivery_fields(ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"m")
    m, _p, b = ch.basic_get(q, auto_ack=True)
    assert (m.exchange, m.routing_key, b) == ("", q, b"m")


def test_name_must_match_exactly(ch, uniq, cleanup):
    name = cleanup.queue(uniq("Q"))
    ch.queue_declare(name)
    for key in [name.lower(), name.upper(), name + " ", name + ".x", "", "#"]:
        if key != name:
            ch.basic_publish("", key, b"wrong")
    ch.basic_publish("", name, b"right")
    assert bodies(ch, name) == [b"right"]


def test_unroutable_is_dropped(conn, uniq):
    ch = conn.channel()
    returned = []
    ch.add_on_return_callback(lambda *a: returned.append(a))
    ch.basic_publish("", uniq("no-such-queue"), b"lost")
    # the channel is fine and nothing comes back without mandatory
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"ok")
    assert bodies(ch, q) == [b"ok"]
    settle(conn, 0.1)
    assert returned == []


def test_deleted_queue_no_longer_reachable(ch, uniq):
    name = uniq("q")
    ch.queue_declare(name)
    ch.queue_delete(name)
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish("", name, b"nowhere", mandatory=True)


def test_bind_to_default_exchange_refused(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    with channel_closed(403, DEFAULT_X, QUEUE_BIND):
        ch.queue_bind(q, "", routing_key=q)
    assert conn.is_open


def test_bind_to_default_exchange_with_other_key_refused(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    with channel_closed(403, DEFAULT_X, QUEUE_BIND):
        ch.queue_bind(q, "", routing_key="some-other-key")


def test_unbind_from_default_exchange_refused(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    with channel_closed(403, DEFAULT_X, QUEUE_UNBIND):
        ch.queue_unbind(q, "", routing_key=q)
    # the implicit binding is still there
    ch = conn.channel()
    ch.basic_publish("", q, b"still")
    assert bodies(ch, q) == [b"still"]


def test_bind_missing_queue_to_default_exchange_refused_first(conn, uniq):
    # the default-exchange check comes before the queue lookup
    ch = conn.channel()
    with channel_closed(403, DEFAULT_X, QUEUE_BIND):
        ch.queue_bind(uniq("no-such-queue"), "", routing_key="k")


def test_properties_pass_through(ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    props = pika.BasicProperties(content_type="application/json", headers={"k": "v"},
                                 correlation_id="c1")
    ch.basic_publish("", q, b"{}", props)
    _m, p, b = ch.basic_get(q, auto_ack=True)
    assert (p.content_type, p.headers, p.correlation_id, b) == (
        "application/json", {"k": "v"}, "c1", b"{}")
