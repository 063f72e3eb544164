"""exchange.declare / exchange.delete, as RabbitMQ 3.10 does them."""

import pika
import pytest

from helpers import (
    BASIC_PUBLISH,
    EXCHANGE_DECLARE,
    EXCHANGE_DELETE,
    channel_closed,
    cleanup,  # noqa: F401  (fixture)
    connection_closed,
    eventually,
    exchange_exists,
    not_found_exchange,
    wait_channel_closed,
)

TYPES = ["direct", "fanout", "topic", "headers"]
FLAGS = [
    # durable, auto_delete, internal
    (False, False, False),
    (True, False, False),
    (False, True, False),
    (False, False, True),
    (True, True, True),
]


@pytest.mark.parametrize("etype", TYPES)
@pytest.mark.parametrize("durable,auto_delete,internal", FLAGS)
def test_declare_each_type_and_flags(broker, ch, uniq, cleanup, etype, durable, auto_delete, internal):
    x = cleanup.exchange(uniq("x"))
    ok = ch.exchange_declare(x, etype, durable=durable, auto_delete=auto_delete, internal=internal)
    assert isinstance(ok.method, pika.spec.Exchange.DeclareOk)
    # redeclaring with identical properties is fine
    ok = ch.exchange_declare(x, etype, durable=durable, auto_delete=auto_delete, internal=internal)
    assert isinstance(ok.method, pika.spec.Exchange.DeclareOk)
    # passive declare ignores type and flags
    other = "fanout" if etype != "fanout" else "direct"
    ok = ch.exchange_declare(x, other, passive=True, durable=not durable)
    assert isinstance(ok.method, pika.spec.Exchange.DeclareOk)
    ch.exchange_delete(x)
    assert not exchange_exists(broker, x)


def test_declare_ok_is_returned_without_nowait(ch, uniq, cleanup):
    x = cleanup.exchange(uniq("x"))
    frame = ch.exchange_declare(x, "topic")
    assert frame.method.NAME == "Exchange.DeclareOk"


def test_passive_declare_existing(ch, uniq, cleanup):
    x = cleanup.exchange(uniq("x"))
    ch.exchange_declare(x, "fanout")
    other = ch.connection.channel()
    assert isinstance(other.exchange_declare(x, passive=True).method, pika.spec.Exchange.DeclareOk)


def test_passive_declare_missing(conn, ch, uniq):
    x = uniq("missing")
    with channel_closed(404, not_found_exchange(x), EXCHANGE_DECLARE):
        ch.exchange_declare(x, passive=True)
    assert ch.is_closed
    assert conn.is_open  # channel error only


@pytest.mark.parametrize(
    "first,second,arg,received,current",
    [
        (dict(exchange_type="direct"), dict(exchange_type="fanout"), "type", "fanout", "direct"),
        (dict(exchange_type="topic"), dict(exchange_type="headers"), "type", "headers", "topic"),
        (dict(durable=False), dict(durable=True), "durable", "true", "false"),
        (dict(durable=True), dict(durable=False), "durable", "false", "true"),
        (dict(auto_delete=False), dict(auto_delete=True), "auto_delete", "true", "false"),
        (dict(auto_delete=True), dict(auto_delete=False), "auto_delete", "false", "true"),
        (dict(internal=False), dict(internal=True), "internal", "true", "false"),
        (dict(internal=True), dict(internal=False), "internal", "false", "true"),
    ],
)
def test_redeclare_inequivalent(conn, uniq, cleanup, first, second, arg, received, current):
    x = cleanup.exchange(uniq("x"))
    ch = conn.channel()
    ch.exchange_declare(x, **first)
    ch2 = conn.channel()
    text = (
        f"PRECONDITION_FAILED - inequivalent arg '{arg}' for exchange '{x}' in vhost '/': "
        f"received '{received}' but current is '{current}'"
    )
    with channel_closed(406, text, EXCHANGE_DECLARE):
        ch2.exchange_declare(x, **second)
    assert conn.is_open
    # the exchange is unchanged
    ch.exchange_declare(x, **first)


def test_redeclare_inequivalent_type_checked_before_durable(conn, uniq, cleanup):
    x = cleanup.exchange(uniq("x"))
    conn.channel().exchange_declare(x, "direct", durable=False)
    text = (
        f"PRECONDITION_FAILED - inequivalent arg 'type' for exchange '{x}' in vhost '/': "
        f"received 'fanout' but current is 'direct'"
    )
    with channel_closed(406, text, EXCHANGE_DECLARE):
        conn.channel().exchange_declare(x, "fanout", durable=True, auto_delete=True)


@pytest.mark.parametrize(
    "first,second,detail",
    [
        ({"alternate-exchange": "ae1"}, {"alternate-exchange": "ae2"},
         "received 'ae2' but current is 'ae1'"),
        ({"alternate-exchange": "ae1"}, {"alternate-exchange": 5},
         "received '5' but current is 'ae1'"),
        (None, {"alternate-exchange": "ae1"},
         "received the value 'ae1' of type 'longstr' but current is none"),
        ({"alternate-exchange": "ae1"}, None,
         "received none but current is the value 'ae1' of type 'longstr'"),
    ],
    ids=["str-str", "str-int", "none-str", "str-none"],
)
def test_redeclare_inequivalent_alternate_exchange(conn, uniq, cleanup, first, second, detail):
    x = cleanup.exchange(uniq("x"))
    conn.channel().exchange_declare(x, "direct", arguments=first)
    # same argument: fine
    conn.channel().exchange_declare(x, "direct", arguments=first)
    text = (
        f"PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange '{x}' "
        f"in vhost '/': {detail}"
    )
    with channel_closed(406, text, EXCHANGE_DECLARE):
        conn.channel().exchange_declare(x, "direct", arguments=second)


def test_redeclare_other_arguments_not_checked(conn, uniq, cleanup):
    x = cleanup.exchange(uniq("x"))
    conn.channel().exchange_declare(x, "direct", arguments={"x-foo": "a"})
    ok = conn.channel().exchange_declare(x, "direct", arguments={"x-foo": "b", "bar": 1})
    assert isinstance(ok.method, pika.spec.Exchange.DeclareOk)


def test_invalid_type_closes_connection(broker, uniq):
    c = broker.connect()
    ch = c.channel()
    x = uniq("x")
    with connection_closed(503, "COMMAND_INVALID - unknown exchange type 'no-such-type'",
                           EXCHANGE_DECLARE):
        ch.exchange_declare(x, "no-such-type")
    assert c.is_closed


def test_invalid_type_on_passive_declare_of_missing_is_404(ch, uniq):
    # passive declare never looks at the type
    x = uniq("x")
    with channel_closed(404, not_found_exchange(x), EXCHANGE_DECLARE):
        ch.exchange_declare(x, "no-such-type", passive=True)


@pytest.mark.parametrize("name", ["amq.foo", "amq.direct.x", "amq."])
def test_reserved_amq_prefix_refused(conn, name):
    ch = conn.channel()
    text = f"ACCESS_REFUSED - exchange name '{name}' contains reserved prefix 'amq.*'"
    with channel_closed(403, text, EXCHANGE_DECLARE):
        ch.exchange_declare(name, "direct")
    assert conn.is_open


def test_reserved_prefix_is_case_sensitive(ch, uniq, cleanup):
    x = cleanup.exchange("AMQ." + uniq("x"))
    assert isinstance(ch.exchange_declare(x, "direct").method, pika.spec.Exchange.DeclareOk)


@pytest.mark.parametrize(
    "name,etype",
    [
        ("amq.direct", "direct"),
        ("amq.fanout", "fanout"),
        ("amq.topic", "topic"),
        ("amq.headers", "headers"),
        ("amq.match", "headers"),
    ],
)
def test_predeclared_exchanges_exist(conn, name, etype):
    ch = conn.channel()
    assert isinstance(ch.exchange_declare(name, passive=True).method, pika.spec.Exchange.DeclareOk)
    # the amq.* prefix check only applies to exchanges that do not exist yet:
    # an equivalent active redeclare (durable, not auto-delete, not internal) is fine
    ok = ch.exchange_declare(name, etype, durable=True)
    assert isinstance(ok.method, pika.spec.Exchange.DeclareOk)
    # ...and an inequivalent one is the usual 406
    text = (
        f"PRECONDITION_FAILED - inequivalent arg 'durable' for exchange '{name}' in vhost '/': "
        f"received 'false' but current is 'true'"
    )
    with channel_closed(406, text, EXCHANGE_DECLARE):
        ch.exchange_declare(name, etype, durable=False)
    ch = conn.channel()
    other = "fanout" if etype != "fanout" else "direct"
    text = (
        f"PRECONDITION_FAILED - inequivalent arg 'type' for exchange '{name}' in vhost '/': "
        f"received '{other}' but current is '{etype}'"
    )
    with channel_closed(406, text, EXCHANGE_DECLARE):
        ch.exchange_declare(name, other, durable=True)


def test_predeclared_exchanges_route(ch, uniq):
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "amq.direct", routing_key=q)
    ch.queue_bind(q, "amq.topic", routing_key=q + ".#")
    ch.queue_bind(q, "amq.fanout")
    ch.queue_bind(q, "amq.headers", arguments={"x-match": "all", "k": q})
    ch.queue_bind(q, "amq.match", arguments={"x-match": "all", "k2": q})
    ch.basic_publish("amq.direct", q, b"direct")
    ch.basic_publish("amq.topic", q + ".a.b", b"topic")
    ch.basic_publish("amq.fanout", "whatever", b"fanout")
    ch.basic_publish("amq.headers", "", b"headers", pika.BasicProperties(headers={"k": q}))
    ch.basic_publish("amq.match", "", b"match", pika.BasicProperties(headers={"k2": q}))
    got = []
    for _ in range(5):
        m, _p, b = ch.basic_get(q, auto_ack=True)
        assert m is not None, got
        got.append(b)
    assert sorted(got) == sorted([b"direct", b"topic", b"fanout", b"headers", b"match"])
    for x in ["amq.direct", "amq.topic", "amq.fanout"]:
        ch.queue_unbind(q, x, routing_key={"amq.direct": q, "amq.topic": q + ".#",
                                            "amq.fanout": None}[x])


def test_default_exchange_passive_declare_refused(conn):
    # even a passive declare of "" is refused
    ch = conn.channel()
    with channel_closed(403, "ACCESS_REFUSED - operation not permitted on the default exchange",
                        EXCHANGE_DECLARE):
        ch.exchange_declare("", passive=True)
    assert conn.is_open


def test_default_exchange_with_unknown_type_is_connection_error(broker):
    # the type is checked before the name
    c = broker.connect()
    with connection_closed(503, "COMMAND_INVALID - unknown exchange type 'bogus'", EXCHANGE_DECLARE):
        c.channel().exchange_declare("", "bogus")


@pytest.mark.parametrize("durable", [True, False])
def test_declare_default_exchange_refused(conn, durable):
    ch = conn.channel()
    with channel_closed(403, "ACCESS_REFUSED - operation not permitted on the default exchange",
                        EXCHANGE_DECLARE):
        ch.exchange_declare("", "direct", durable=durable)
    assert conn.is_open


def test_delete_default_exchange_refused(conn):
    ch = conn.channel()
    with channel_closed(403, "ACCESS_REFUSED - operation not permitted on the default exchange",
                        EXCHANGE_DELETE):
        ch.exchange_delete("")
    assert conn.is_open
    # still routes
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"still-there")
    assert ch.basic_get(q, auto_ack=True)[2] == b"still-there"


@pytest.mark.parametrize("name", ["amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match"])
def test_delete_predeclared_exchange_refused(conn, name):
    ch = conn.channel()
    text = f"ACCESS_REFUSED - deletion of system exchange '{name}' in vhost '/' not allowed"
    with channel_closed(403, text, EXCHANGE_DELETE):
        ch.exchange_delete(name)
    ch = conn.channel()
    with channel_closed(403, text, EXCHANGE_DELETE):
        ch.exchange_delete(name, if_unused=True)
    # still there
    conn.channel().exchange_declare(name, passive=True)


def test_delete_missing_exchange_is_ok(ch, uniq):
    ok = ch.exchange_delete(uniq("never-declared"))
    assert isinstance(ok.method, pika.spec.Exchange.DeleteOk)
    # the channel is still usable
    ok = ch.exchange_delete(uniq("never-declared-2"), if_unused=True)
    assert isinstance(ok.method, pika.spec.Exchange.DeleteOk)


def test_delete_missing_amq_prefixed_exchange_refused(conn):
    # any amq.* name is a "system exchange", even one that does not exist
    ch = conn.channel()
    name = "amq.no-such-exchange-for-tests"
    text = f"ACCESS_REFUSED - deletion of system exchange '{name}' in vhost '/' not allowed"
    with channel_closed(403, text, EXCHANGE_DELETE):
        ch.exchange_delete(name)


def test_passive_declare_missing_amq_prefixed(ch):
    with channel_closed(404, not_found_exchange("amq.nothere"), EXCHANGE_DECLARE):
        ch.exchange_declare("amq.nothere", passive=True)


def test_long_reply_text_is_truncated_to_255_bytes(ch):
    # RabbitMQ cuts reply texts longer than 255 bytes to 252 bytes + "..."
    name = "x" * 255
    full = not_found_exchange(name)
    assert len(full) > 255
    with channel_closed(404, full[:252] + "...", EXCHANGE_DECLARE) as info:
        ch.exchange_declare(name, passive=True)
    assert len(info.value.reply_text) == 255


def test_delete_removes_exchange_and_bindings(broker, ch, uniq):
    x = uniq("x")
    ch.exchange_declare(x, "fanout")
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, x)
    ch.exchange_delete(x)
    assert not exchange_exists(broker, x)
    # re-create: the old binding is gone
    ch.exchange_declare(x, "fanout")
    ch.basic_publish(x, "", b"m")
    assert ch.basic_get(q, auto_ack=True)[0] is None
    ch.exchange_delete(x)


def test_delete_if_unused_with_queue_binding(conn, uniq, cleanup):
    x = cleanup.exchange(uniq("x"))
    ch = conn.channel()
    ch.exchange_declare(x, "direct")
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, x, routing_key="k")
    ch2 = conn.channel()
    with channel_closed(406, f"PRECONDITION_FAILED - exchange '{x}' in vhost '/' in use",
                        EXCHANGE_DELETE):
        ch2.exchange_delete(x, if_unused=True)
    ch.exchange_declare(x, passive=True)
    ch.queue_unbind(q, x, routing_key="k")
    ok = ch.exchange_delete(x, if_unused=True)
    assert isinstance(ok.method, pika.spec.Exchange.DeleteOk)
    with channel_closed(404, not_found_exchange(x), EXCHANGE_DECLARE):
        ch.exchange_declare(x, passive=True)


def test_delete_if_unused_with_exchange_binding_as_source(conn, uniq, cleanup):
    src = cleanup.exchange(uniq("src"))
    dst = cleanup.exchange(uniq("dst"))
    ch = conn.channel()
    ch.exchange_declare(src, "fanout")
    ch.exchange_declare(dst, "fanout")
    ch.exchange_bind(destination=dst, source=src)
    with channel_closed(406, f"PRECONDITION_FAILED - exchange '{src}' in vhost '/' in use",
                        EXCHANGE_DELETE):
        conn.channel().exchange_delete(src, if_unused=True)


def test_delete_if_unused_ignores_bindings_as_destination(conn, uniq, cleanup):
    # "unused" means "has no bindings where it is the source"
    src = cleanup.exchange(uniq("src"))
    dst = cleanup.exchange(uniq("dst"))
    ch = conn.channel()
    ch.exchange_declare(src, "fanout")
    ch.exchange_declare(dst, "fanout")
    ch.exchange_bind(destination=dst, source=src)
    ok = ch.exchange_delete(dst, if_unused=True)
    assert isinstance(ok.method, pika.spec.Exchange.DeleteOk)
    # and the binding went with it: src is unused now
    ok = ch.exchange_delete(src, if_unused=True)
    assert isinstance(ok.method, pika.spec.Exchange.DeleteOk)


def test_publish_to_internal_exchange_refused(conn, uniq, cleanup):
    x = cleanup.exchange(uniq("x"))
    ch = conn.channel()
    ch.exchange_declare(x, "fanout", internal=True)
    ch.basic_publish(x, "k", b"nope")
    wait_channel_closed(
        conn, ch, 403, f"ACCESS_REFUSED - cannot publish to internal exchange '{x}' in vhost '/'",
        BASIC_PUBLISH,
    )
    assert conn.is_open


def test_publish_to_missing_exchange(conn, uniq):
    x = uniq("missing")
    ch = conn.channel()
    ch.basic_publish(x, "k", b"nope")
    wait_channel_closed(conn, ch, 404, not_found_exchange(x), BASIC_PUBLISH)
    assert conn.is_open


def test_internal_exchange_still_routes_via_exchange_binding(ch, uniq, cleanup):
    front = cleanup.exchange(uniq("front"))
    inner = cleanup.exchange(uniq("inner"))
    ch.exchange_declare(front, "fanout")
    ch.exchange_declare(inner, "fanout", internal=True)
    ch.exchange_bind(destination=inner, source=front)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, inner)
    ch.basic_publish(front, "", b"via-internal")
    m, _p, b = ch.basic_get(q, auto_ack=True)
    assert b == b"via-internal"
    assert m.exchange == front


def test_auto_delete_exchange_survives_until_first_binding_removed(broker, ch, uniq):
    x = uniq("ad")
    ch.exchange_declare(x, "direct", auto_delete=True)
    # never bound: still there
    assert exchange_exists(broker, x)
    q1 = ch.queue_declare("", exclusive=True).method.queue
    q2 = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q1, x, routing_key="a")
    ch.queue_bind(q2, x, routing_key="b")
    ch.queue_unbind(q1, x, routing_key="a")
    assert exchange_exists(broker, x)  # one binding left
    ch.queue_unbind(q2, x, routing_key="b")
    assert not exchange_exists(broker, x)


def test_auto_delete_exchange_deleted_when_bound_queue_deleted(broker, ch, uniq):
    x = uniq("ad")
    ch.exchange_declare(x, "fanout", auto_delete=True)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, x)
    ch.queue_delete(q)
    assert not exchange_exists(broker, x)


def test_auto_delete_exchange_deleted_when_exclusive_queue_owner_closes(broker, uniq):
    x = uniq("ad")
    c = broker.connect()
    ch = c.channel()
    ch.exchange_declare(x, "fanout", auto_delete=True)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, x)
    c.close()
    # the exclusive queue, its binding and so the exchange go away once the
    # broker has noticed the connection is gone
    eventually(lambda: not exchange_exists(broker, x), what="auto-delete exchange to go")


def test_auto_delete_exchange_deleted_when_exchange_binding_removed(broker, ch, uniq, cleanup):
    x = uniq("ad")
    dst = cleanup.exchange(uniq("dst"))
    ch.exchange_declare(x, "fanout", auto_delete=True)
    ch.exchange_declare(dst, "fanout")
    ch.exchange_bind(destination=dst, source=x)
    ch.exchange_unbind(destination=dst, source=x)
    assert not exchange_exists(broker, x)
    assert exchange_exists(broker, dst)


def test_auto_delete_exchange_not_deleted_when_it_is_only_a_destination(broker, ch, uniq, cleanup):
    src = cleanup.exchange(uniq("src"))
    x = cleanup.exchange(uniq("ad"))
    ch.exchange_declare(src, "fanout")
    ch.exchange_declare(x, "fanout", auto_delete=True)
    ch.exchange_bind(destination=x, source=src)
    ch.exchange_unbind(destination=x, source=src)
    assert exchange_exists(broker, x)
