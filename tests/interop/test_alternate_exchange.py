"""Alternate exchanges: the `alternate-exchange` exchange argument, also in combination
with exchange-to-exchange bindings (plain e2e bindings are in
test_exchange_to_exchange_bindings.py; the policy key in test_policies.py).

Recorded against RabbitMQ 3.10.8:
- a message that an exchange routes nowhere goes to its alternate exchange, with the
  original exchange name and routing key in the delivery; AEs chain;
- a missing AE, an AE that routes nowhere, or an AE cycle make the message unroutable:
  returned (312 NO_ROUTE) to a mandatory publisher, with the original exchange;
- a mandatory message routed by the AE is not returned; confirms are acks;
- every exchange the message passes through applies its own AE when it routes nothing,
  including one reached through an exchange-to-exchange binding; an exchange that routes
  to another exchange has routed the message, so its own AE is not used even if that
  exchange then routes nowhere;
- an internal exchange can be an AE.
"""

import pika
import pytest

from helpers import (
    bodies,
    cleanup,  # noqa: F401  (fixture)
    get_all,
    settle,
)


@pytest.fixture
def x(ch, uniq, cleanup):
    """x(suffix, type, ae=None, internal=False) declares an exchange; returns its name."""

    def make(suffix, etype="direct", ae=None, internal=False):
        name = cleanup.exchange(uniq(suffix))
        ch.exchange_declare(name, etype, internal=internal,
                            arguments={"alternate-exchange": ae} if ae else None)
        return name

    return make


@pytest.fixture
def returns(ch):
    got = []
    ch.add_on_return_callback(
        lambda c, m, p, b: got.append((m.reply_code, m.reply_text, m.exchange, m.routing_key, b)))
    return got


def new_queue(ch, exchange=None, key=""):
    q = ch.queue_declare("", exclusive=True).method.queue
    if exchange:
        ch.queue_bind(q, exchange, key)
    return q


def deliveries(ch, q):
    return [(m.exchange, m.routing_key, b) for m, _p, b in get_all(ch, q)]


def test_unroutable_goes_to_alternate_exchange(ch, x):
    ae = x("ae", "fanout")
    main = x("main", "direct", ae=ae)
    q_ae, q_main = new_queue(ch, ae), new_queue(ch, main, "k")
    ch.basic_publish(main, "k", b"routed")
    ch.basic_publish(main, "other", b"unrouted")
    assert deliveries(ch, q_main) == [(main, "k", b"routed")]
    assert deliveries(ch, q_ae) == [(main, "other", b"unrouted")]


def test_mandatory_routed_by_ae_is_not_returned_and_confirmed(conn, ch, x, returns):
    ae = x("ae", "fanout")
    main = x("main", "direct", ae=ae)
    q_ae = new_queue(ch, ae)
    ch.basic_publish(main, "nomatch", b"m", mandatory=True)
    pub = conn.channel()
    pub.confirm_delivery()
    pub.basic_publish(main, "nomatch", b"c", mandatory=True)  # UnroutableError if returned
    settle(conn, 0.1)
    assert returns == []
    assert bodies(ch, q_ae) == [b"m", b"c"]


def test_missing_alternate_exchange_makes_message_unroutable(conn, ch, x, uniq, returns):
    main = x("main", "direct", ae=uniq("missing"))
    ch.basic_publish(main, "k", b"lost", mandatory=True)
    settle(conn, 0.2)
    assert returns == [(312, "NO_ROUTE", main, "k", b"lost")]


def test_alternate_exchange_that_routes_nowhere(conn, ch, x, returns):
    ae = x("ae", "direct")
    q = new_queue(ch, ae, "only")
    main = x("main", "direct", ae=ae)
    ch.basic_publish(main, "nomatch", b"x", mandatory=True)
    ch.basic_publish(main, "only", b"y", mandatory=True)  # the AE routes by the same key
    settle(conn, 0.2)
    assert returns == [(312, "NO_ROUTE", main, "nomatch", b"x")]
    assert deliveries(ch, q) == [(main, "only", b"y")]


def test_alternate_exchanges_chain(ch, x):
    last = x("ae2", "fanout")
    q = new_queue(ch, last)
    first = x("ae1", "direct", ae=last)
    main = x("main", "direct", ae=first)
    ch.basic_publish(main, "zz", b"chained")
    assert deliveries(ch, q) == [(main, "zz", b"chained")]


def test_alternate_exchange_cycle_is_unroutable_once(conn, ch, uniq, cleanup, returns):
    a, b = cleanup.exchange(uniq("a")), cleanup.exchange(uniq("b"))
    ch.exchange_declare(a, "direct", arguments={"alternate-exchange": b})
    ch.exchange_declare(b, "direct", arguments={"alternate-exchange": a})
    ch.basic_publish(a, "zz", b"cyc", mandatory=True)
    settle(conn, 0.2)
    assert returns == [(312, "NO_ROUTE", a, "zz", b"cyc")]
    assert ch.is_open


def test_alternate_exchange_declared_later_is_used(ch, x, uniq, cleanup):
    ae = cleanup.exchange(uniq("ae"))
    main = x("main", "direct", ae=ae)  # dangling for now
    ch.exchange_declare(ae, "fanout")
    q = new_queue(ch, ae)
    ch.basic_publish(main, "k", b"m")
    assert bodies(ch, q) == [b"m"]


def test_deleted_alternate_exchange(conn, ch, x, returns):
    ae = x("ae", "fanout")
    main = x("main", "direct", ae=ae)
    ch.exchange_delete(ae)
    ch.basic_publish(main, "k", b"m", mandatory=True)
    settle(conn, 0.2)
    assert returns == [(312, "NO_ROUTE", main, "k", b"m")]


def test_internal_exchange_as_alternate(ch, x):
    ae = x("ae", "fanout", internal=True)
    q = new_queue(ch, ae)
    main = x("main", "direct", ae=ae)
    ch.basic_publish(main, "k", b"m")
    assert bodies(ch, q) == [b"m"]


def test_alternate_exchange_with_topic_routing(ch, x):
    ae = x("ae", "topic")
    q = new_queue(ch, ae, "orders.#")
    main = x("main", "topic", ae=ae)
    q_main = new_queue(ch, main, "*.created")
    ch.basic_publish(main, "user.created", b"a")
    ch.basic_publish(main, "orders.eu.shipped", b"b")
    ch.basic_publish(main, "misc", b"c")
    assert bodies(ch, q_main) == [b"a"]
    assert bodies(ch, q) == [b"b"]


def test_alternate_exchange_is_not_used_for_routed_messages_with_headers(ch, x):
    ae = x("ae", "fanout")
    q_ae = new_queue(ch, ae)
    main = x("main", "headers", ae=ae)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, main, arguments={"x-match": "all", "k": "v"})
    ch.basic_publish(main, "", b"match", pika.BasicProperties(headers={"k": "v"}))
    ch.basic_publish(main, "", b"miss", pika.BasicProperties(headers={"k": "w"}))
    assert bodies(ch, q) == [b"match"]
    assert bodies(ch, q_ae) == [b"miss"]


# ---------------------------------------------------------------- with exchange-to-exchange bindings


def test_ae_of_exchange_reached_through_binding(ch, x):
    dae = x("dae", "fanout")
    q = new_queue(ch, dae)
    dst = x("dst", "direct", ae=dae)
    src = x("src", "fanout")
    ch.exchange_bind(dst, src)
    ch.basic_publish(src, "nomatch", b"m")
    assert deliveries(ch, q) == [(src, "nomatch", b"m")]


def test_ae_not_used_when_message_routed_to_an_exchange(conn, ch, x, returns):
    sae = x("sae", "fanout")
    q_sae = new_queue(ch, sae)
    src = x("src", "fanout", ae=sae)
    dst = x("dst", "direct")  # no queue, no AE
    ch.exchange_bind(dst, src)
    ch.basic_publish(src, "nomatch", b"m", mandatory=True)
    settle(conn, 0.2)
    assert bodies(ch, q_sae) == []
    assert returns == [(312, "NO_ROUTE", src, "nomatch", b"m")]


def test_ae_that_binds_to_exchange(ch, x):
    final = x("final", "fanout")
    q = new_queue(ch, final)
    ae = x("ae", "fanout")
    ch.exchange_bind(final, ae)
    main = x("main", "direct", ae=ae)
    ch.basic_publish(main, "k", b"m")
    assert deliveries(ch, q) == [(main, "k", b"m")]


def test_queue_reached_directly_and_through_ae_gets_one_copy(ch, x):
    """src fans out to queue q and to exchange mid; mid routes nothing, so mid's AE (which
    also delivers to q) is used: q still gets one copy."""
    ae = x("ae", "fanout")
    mid = x("mid", "direct", ae=ae)
    src = x("src", "fanout")
    q = new_queue(ch, src)
    ch.queue_bind(q, ae)
    ch.exchange_bind(mid, src)
    ch.basic_publish(src, "k", b"once")
    assert bodies(ch, q) == [b"once"]
