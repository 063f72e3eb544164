"""exchange.bind / exchange.unbind (RabbitMQ's exchange-to-exchange bindings)."""

import pika
import pytest

from helpers import (
    EXCHANGE_BIND,
    EXCHANGE_UNBIND,
    bodies,
    channel_closed,
    cleanup,  # noqa: F401  (fixture)
    not_found_exchange,
)

DEFAULT_X = "ACCESS_REFUSED - operation not permitted on the default exchange"


def xq(ch, cleanup, uniq, *specs):
    """Declare exchanges from (suffix, type) specs; return their names."""
    names = []
    for suffix, etype in specs:
        x = cleanup.exchange(uniq(suffix))
        ch.exchange_declare(x, etype)
        names.append(x)
    return names


def new_queue(ch):
    return ch.queue_declare("", exclusive=True).method.queue


def test_bind_and_unbind_ok_frames(ch, uniq, cleanup):
    src, dst = xq(ch, cleanup, uniq, ("src", "direct"), ("dst", "fanout"))
    ok = ch.exchange_bind(destination=dst, source=src, routing_key="k")
    assert isinstance(ok.method, pika.spec.Exchange.BindOk)
    ok = ch.exchange_unbind(destination=dst, source=src, routing_key="k")
    assert isinstance(ok.method, pika.spec.Exchange.UnbindOk)


def test_messages_flow_through_binding(ch, uniq, cleanup):
    src, dst = xq(ch, cleanup, uniq, ("src", "direct"), ("dst", "fanout"))
    q = new_queue(ch)
    ch.queue_bind(q, dst)
    ch.exchange_bind(destination=dst, source=src, routing_key="k")
    ch.basic_publish(src, "k", b"routed")
    ch.basic_publish(src, "other", b"not-routed")
    got = ch.basic_get(q, auto_ack=True)
    assert got[2] == b"routed"
    # exchange and routing key are the ones the message was published with
    assert got[0].exchange == src
    assert got[0].routing_key == "k"
    assert ch.basic_get(q, auto_ack=True)[0] is None


def test_unbind_stops_flow(ch, uniq, cleanup):
    src, dst = xq(ch, cleanup, uniq, ("src", "fanout"), ("dst", "fanout"))
    q = new_queue(ch)
    ch.queue_bind(q, dst)
    ch.exchange_bind(destination=dst, source=src)
    ch.basic_publish(src, "", b"1")
    ch.exchange_unbind(destination=dst, source=src)
    ch.basic_publish(src, "", b"2")
    assert bodies(ch, q) == [b"1"]


def test_chain_of_exchanges(ch, uniq, cleanup):
    # direct -> topic -> headers -> fanout -> queue
    a, b, c, d = xq(ch, cleanup, uniq, ("a", "direct"), ("b", "topic"), ("c", "headers"),
                    ("d", "fanout"))
    q = new_queue(ch)
    ch.exchange_bind(destination=b, source=a, routing_key="x.y")
    ch.exchange_bind(destination=c, source=b, routing_key="x.*")
    ch.exchange_bind(destination=d, source=c, arguments={"x-match": "all", "h": "v"})
    ch.queue_bind(q, d)
    ch.basic_publish(a, "x.y", b"through", pika.BasicProperties(headers={"h": "v"}))
    ch.basic_publish(a, "x.y", b"stopped-at-c", pika.BasicProperties(headers={"h": "w"}))
    ch.basic_publish(a, "x.z", b"stopped-at-a")
    assert bodies(ch, q) == [b"through"]


def test_queue_reached_by_two_paths_gets_one_copy(ch, uniq, cleanup):
    top, left, right = xq(ch, cleanup, uniq, ("top", "fanout"), ("left", "fanout"),
                          ("right", "fanout"))
    q = new_queue(ch)
    ch.exchange_bind(destination=left, source=top)
    ch.exchange_bind(destination=right, source=top)
    ch.queue_bind(q, left)
    ch.queue_bind(q, right)
    ch.queue_bind(q, top)  # and directly
    ch.basic_publish(top, "", b"once")
    assert bodies(ch, q) == [b"once"]


def test_two_routes_from_same_source_to_same_destination(ch, uniq, cleanup):
    src, dst = xq(ch, cleanup, uniq, ("src", "direct"), ("dst", "fanout"))
    q = new_queue(ch)
    ch.queue_bind(q, dst)
    ch.exchange_bind(destination=dst, source=src, routing_key="k")
    ch.exchange_bind(destination=dst, source=src, routing_key="k")  # idempotent
    ch.exchange_bind(destination=dst, source=src, routing_key="j")
    ch.basic_publish(src, "k", b"k")
    ch.basic_publish(src, "j", b"j")
    assert bodies(ch, q) == [b"k", b"j"]
    # removing one of the two bindings leaves the other
    ch.exchange_unbind(destination=dst, source=src, routing_key="k")
    ch.basic_publish(src, "k", b"k2")
    ch.basic_publish(src, "j", b"j2")
    assert bodies(ch, q) == [b"j2"]


def test_cycle_does_not_loop_or_duplicate(conn, ch, uniq, cleanup):
    a, b, c = xq(ch, cleanup, uniq, ("a", "fanout"), ("b", "fanout"), ("c", "fanout"))
    ch.exchange_bind(destination=b, source=a)
    ch.exchange_bind(destination=c, source=b)
    ch.exchange_bind(destination=a, source=c)
    qa, qb, qc = new_queue(ch), new_queue(ch), new_queue(ch)
    ch.queue_bind(qa, a)
    ch.queue_bind(qb, b)
    ch.queue_bind(qc, c)
    for x in (a, b, c):
        ch.basic_publish(x, "", x.encode())
    for q in (qa, qb, qc):
        assert sorted(bodies(ch, q)) == sorted([a.encode(), b.encode(), c.encode()])


def test_self_binding_does_not_loop(ch, uniq, cleanup):
    (a,) = xq(ch, cleanup, uniq, ("a", "fanout"))
    ok = ch.exchange_bind(destination=a, source=a)
    assert isinstance(ok.method, pika.spec.Exchange.BindOk)
    q = new_queue(ch)
    ch.queue_bind(q, a)
    ch.basic_publish(a, "", b"self")
    assert bodies(ch, q) == [b"self"]


def test_cycle_via_routing_keys(ch, uniq, cleanup):
    a, b = xq(ch, cleanup, uniq, ("a", "topic"), ("b", "topic"))
    ch.exchange_bind(destination=b, source=a, routing_key="#")
    ch.exchange_bind(destination=a, source=b, routing_key="#")
    q = new_queue(ch)
    ch.queue_bind(q, a, routing_key="r.#")
    ch.queue_bind(q, b, routing_key="#.k")
    ch.basic_publish(b, "r.k", b"one")
    assert bodies(ch, q) == [b"one"]


def test_delete_destination_removes_binding(ch, uniq, cleanup):
    src, dst = xq(ch, cleanup, uniq, ("src", "fanout"), ("dst", "fanout"))
    q = new_queue(ch)
    ch.exchange_bind(destination=dst, source=src)
    ch.exchange_delete(dst)
    ch.exchange_declare(dst, "fanout")
    ch.queue_bind(q, dst)
    ch.basic_publish(src, "", b"lost")
    assert bodies(ch, q) == []


def test_unbind_nonexistent_binding_ok(ch, uniq, cleanup):
    src, dst = xq(ch, cleanup, uniq, ("src", "direct"), ("dst", "direct"))
    ok = ch.exchange_unbind(destination=dst, source=src, routing_key="never-bound")
    assert isinstance(ok.method, pika.spec.Exchange.UnbindOk)


def test_unbind_with_missing_exchanges_ok(ch, uniq):
    # RabbitMQ 3.10 answers unbind-ok even if the exchanges do not exist
    ok = ch.exchange_unbind(destination=uniq("nodst"), source=uniq("nosrc"), routing_key="k")
    assert isinstance(ok.method, pika.spec.Exchange.UnbindOk)


def test_bind_missing_source(ch, uniq, cleanup):
    (dst,) = xq(ch, cleanup, uniq, ("dst", "fanout"))
    src = uniq("nosrc")
    with channel_closed(404, not_found_exchange(src), EXCHANGE_BIND):
        ch.exchange_bind(destination=dst, source=src)


def test_bind_missing_destination(ch, uniq, cleanup):
    (src,) = xq(ch, cleanup, uniq, ("src", "fanout"))
    dst = uniq("nodst")
    with channel_closed(404, not_found_exchange(dst), EXCHANGE_BIND):
        ch.exchange_bind(destination=dst, source=src)


def test_bind_both_missing_reports_source(ch, uniq):
    src, dst = uniq("nosrc"), uniq("nodst")
    with channel_closed(404, not_found_exchange(src), EXCHANGE_BIND):
        ch.exchange_bind(destination=dst, source=src)


@pytest.mark.parametrize("side", ["source", "destination"])
def test_bind_default_exchange_refused(conn, uniq, cleanup, side):
    ch = conn.channel()
    (x,) = xq(ch, cleanup, uniq, ("x", "fanout"))
    kw = {"source": "", "destination": x} if side == "source" else {"source": x, "destination": ""}
    with channel_closed(403, DEFAULT_X, EXCHANGE_BIND):
        ch.exchange_bind(**kw)
    ch = conn.channel()
    with channel_closed(403, DEFAULT_X, EXCHANGE_UNBIND):
        ch.exchange_unbind(**kw)


def test_bind_with_arguments_distinguishes_bindings(ch, uniq, cleanup):
    src, dst = xq(ch, cleanup, uniq, ("src", "headers"), ("dst", "fanout"))
    q = new_queue(ch)
    ch.queue_bind(q, dst)
    ch.exchange_bind(destination=dst, source=src, arguments={"x-match": "all", "a": 1})
    ch.exchange_bind(destination=dst, source=src, arguments={"x-match": "all", "b": 2})
    ch.basic_publish(src, "", b"a", pika.BasicProperties(headers={"a": 1}))
    ch.basic_publish(src, "", b"b", pika.BasicProperties(headers={"b": 2}))
    ch.basic_publish(src, "", b"ab", pika.BasicProperties(headers={"a": 1, "b": 2}))
    assert bodies(ch, q) == [b"a", b"b", b"ab"]
    # unbind must name the arguments exactly
    ch.exchange_unbind(destination=dst, source=src, arguments={"x-match": "all", "a": 1})
    ch.basic_publish(src, "", b"a2", pika.BasicProperties(headers={"a": 1}))
    ch.basic_publish(src, "", b"b2", pika.BasicProperties(headers={"b": 2}))
    assert bodies(ch, q) == [b"b2"]
