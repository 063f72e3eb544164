"""queue.declare: durable, exclusive, auto-delete, server-named, passive, equivalence."""

import re

import pika
import pytest
from pika import spec

from helpers import (
    BASIC_CONSUME,
    BASIC_GET,
    QUEUE_BIND,
    QUEUE_DECLARE,
    QUEUE_DELETE,
    QUEUE_PURGE,
    QUEUE_UNBIND,
    RawClient,
    bodies,
    channel_closed,
    cleanup,  # noqa: F401  (fixture)
    eventually,
    not_found_queue,
    publish_confirmed,
    queue_exists,
    wait_until,
)

SERVER_NAME = re.compile(r"^amq\.gen-[A-Za-z0-9_-]{22}$")


def locked(name):
    return (
        f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}' in vhost '/'."
        " It could be originally declared on another connection or the exclusive property"
        " value does not match that of the original declaration."
    )


# ---------------------------------------------------------------- basics / durable


def test_declare_ok_fields(ch, uniq, cleanup):
    name = cleanup.queue(uniq("q"))
    ok = ch.queue_declare(name)
    assert isinstance(ok.method, spec.Queue.DeclareOk)
    assert (ok.method.queue, ok.method.message_count, ok.method.consumer_count) == (name, 0, 0)


@pytest.mark.parametrize("durable", [True, False])
def test_durable_and_transient(broker, conn, uniq, cleanup, durable):
    name = cleanup.queue(uniq("q"))
    ch = conn.channel()
    ch.queue_declare(name, durable=durable)
    # equivalent redeclare from another connection is fine: the queue is shared
    other = broker.connect()
    try:
        ok = other.channel().queue_declare(name, durable=durable)
        assert ok.method.queue == name
        publish_confirmed(other, "", name, [b"m"])
    finally:
        other.close()
    assert bodies(ch, name) == [b"m"]


def test_declare_counts(conn, uniq, cleanup):
    name = cleanup.queue(uniq("q"))
    ch = conn.channel()
    ch.queue_declare(name)
    publish_confirmed(conn, "", name, [b"1", b"2", b"3", b"4"])
    ok = ch.queue_declare(name)
    assert (ok.method.message_count, ok.method.consumer_count) == (4, 0)
    # a consumer with prefetch 1 holds one unacked message: it is not counted
    cch = conn.channel()
    cch.basic_qos(prefetch_count=1)
    got = []
    cch.basic_consume(name, lambda c, m, p, b: got.append(m.delivery_tag))
    cch2 = conn.channel()
    cch2.basic_qos(prefetch_count=1)
    cch2.basic_consume(name, lambda c, m, p, b: got.append(m.delivery_tag))
    wait_until(conn, lambda: len(got) == 2, what="two deliveries")
    ok = ch.queue_declare(name, passive=True)
    assert (ok.method.message_count, ok.method.consumer_count) == (2, 2)
    ok = ch.queue_declare(name)  # active equivalent redeclare reports the same
    assert (ok.method.message_count, ok.method.consumer_count) == (2, 2)


# ---------------------------------------------------------------- exclusive


@pytest.fixture
def exclusive_queue(broker, uniq):
    """An exclusive queue (with one binding to amq.fanout-like exchange) owned by
    another connection."""
    owner = broker.connect()
    och = owner.channel()
    name = uniq("excl")
    och.queue_declare(name, exclusive=True)
    x = uniq("x")
    och.exchange_declare(x, "fanout")
    och.queue_bind(name, x, routing_key="bk")
    yield owner, name, x
    if owner.is_open:
        c = owner.channel()
        c.exchange_delete(x)
        owner.close()


EXCLUSIVE_OPS = [
    ("declare-exclusive", lambda ch, q, x: ch.queue_declare(q, exclusive=True), QUEUE_DECLARE),
    ("declare-shared", lambda ch, q, x: ch.queue_declare(q), QUEUE_DECLARE),
    ("declare-passive", lambda ch, q, x: ch.queue_declare(q, passive=True), QUEUE_DECLARE),
    ("consume", lambda ch, q, x: ch.basic_consume(q, lambda *a: None), BASIC_CONSUME),
    ("get", lambda ch, q, x: ch.basic_get(q), BASIC_GET),
    ("purge", lambda ch, q, x: ch.queue_purge(q), QUEUE_PURGE),
    ("delete", lambda ch, q, x: ch.queue_delete(q), QUEUE_DELETE),
    ("bind", lambda ch, q, x: ch.queue_bind(q, x, routing_key="other"), QUEUE_BIND),
    ("unbind", lambda ch, q, x: ch.queue_unbind(q, x, routing_key="bk"), QUEUE_UNBIND),
]


@pytest.mark.parametrize("op", EXCLUSIVE_OPS, ids=[o[0] for o in EXCLUSIVE_OPS])
def test_exclusive_queue_locked_for_other_connections(conn, exclusive_queue, op):
    owner, name, x = exclusive_queue
    _, fn, ids = op
    ch = conn.channel()
    with channel_closed(405, locked(name), ids):
        fn(ch, name, x)
    assert conn.is_open
    # still intact for its owner
    och = owner.channel()
    och.basic_publish(x, "", b"m")
    assert bodies(och, name) == [b"m"]


def test_exclusive_queue_usable_by_owner_on_any_channel(exclusive_queue):
    owner, name, x = exclusive_queue
    ch = owner.channel()
    ch.queue_declare(name, exclusive=True)
    ch.queue_declare(name, passive=True)
    ch.queue_bind(name, x, routing_key="k2")
    ch.basic_publish("", name, b"a")
    assert ch.queue_purge(name).method.message_count == 1
    ch.basic_publish("", name, b"b")
    assert bodies(ch, name) == [b"b"]
    tag = ch.basic_consume(name, lambda *a: None)
    ch.basic_cancel(tag)
    ch.queue_unbind(name, x, routing_key="k2")


def test_other_connections_may_publish_to_exclusive_queue(conn, exclusive_queue):
    owner, name, _x = exclusive_queue
    publish_confirmed(conn, "", name, [b"from-outside"])
    assert bodies(owner.channel(), name) == [b"from-outside"]


def test_exclusive_redeclare_as_shared_by_owner_is_locked(conn, uniq):
    name = uniq("excl")
    conn.channel().queue_declare(name, exclusive=True)
    ch = conn.channel()
    with channel_closed(405, locked(name), QUEUE_DECLARE):
        ch.queue_declare(name, exclusive=False)


def test_shared_queue_redeclared_exclusive_is_locked(conn, uniq, cleanup):
    name = cleanup.queue(uniq("shared"))
    conn.channel().queue_declare(name)
    ch = conn.channel()
    with channel_closed(405, locked(name), QUEUE_DECLARE):
        ch.queue_declare(name, exclusive=True)


def test_exclusive_queue_is_never_durable(conn, uniq):
    # RabbitMQ ignores durable=true on exclusive queues: both declarations are equivalent
    name = uniq("excl")
    ch = conn.channel()
    ch.queue_declare(name, exclusive=True, durable=True)
    ok = ch.queue_declare(name, exclusive=True, durable=False)
    assert ok.method.queue == name
    ok = ch.queue_declare(name, exclusive=True, durable=True)
    assert ok.method.queue == name


def test_exclusive_queue_deleted_when_connection_closes(broker, uniq):
    owner = broker.connect()
    name = uniq("excl")
    owner.channel().queue_declare(name, exclusive=True)
    assert queue_exists_from_owner(owner, name)
    owner.close()
    eventually(lambda: not queue_exists(broker, name), what="exclusive queue deletion")


def queue_exists_from_owner(owner, name):
    owner.channel().queue_declare(name, passive=True)
    return True


def test_exclusive_queue_survives_its_channel(broker, uniq):
    owner = broker.connect()
    try:
        ch = owner.channel()
        name = uniq("excl")
        ch.queue_declare(name, exclusive=True)
        ch.basic_publish("", name, b"kept")
        ch.close()
        assert bodies(owner.channel(), name) == [b"kept"]
    finally:
        owner.close()


def test_exclusive_queue_name_reusable_after_owner_closes(broker, uniq):
    name = uniq("excl")
    first = broker.connect()
    first.channel().queue_declare(name, exclusive=True)
    first.close()
    second = broker.connect()
    try:
        def redeclared():
            try:
                second.channel().queue_declare(name, exclusive=True)
                return True
            except pika.exceptions.ChannelClosedByBroker as e:
                assert e.reply_code == 405
                return False
        eventually(redeclared, what="exclusive queue released")
    finally:
        second.close()


# ---------------------------------------------------------------- auto-delete


def test_auto_delete_queue_kept_until_first_consumer(broker, conn, uniq, cleanup):
    name = cleanup.queue(uniq("ad"))
    ch = conn.channel()
    ch.queue_declare(name, auto_delete=True)
    ch.basic_publish("", name, b"1")
    assert bodies(ch, name) == [b"1"]  # basic.get is not a consumer
    assert queue_exists(broker, name)
    tag = ch.basic_consume(name, lambda *a: None)
    assert queue_exists(broker, name)
    ch.basic_cancel(tag)
    eventually(lambda: not queue_exists(broker, name), what="auto-delete queue deletion")


def test_auto_delete_queue_deleted_with_last_of_several_consumers(broker, conn, uniq, cleanup):
    name = cleanup.queue(uniq("ad"))
    ch = conn.channel()
    ch.queue_declare(name, auto_delete=True)
    t1 = ch.basic_consume(name, lambda *a: None)
    t2 = ch.basic_consume(name, lambda *a: None)
    ch.basic_cancel(t1)
    assert ch.queue_declare(name, passive=True).method.consumer_count == 1
    ch.basic_cancel(t2)
    eventually(lambda: not queue_exists(broker, name), what="auto-delete queue deletion")


def test_auto_delete_queue_deleted_when_consumer_channel_closes(broker, conn, uniq, cleanup):
    name = cleanup.queue(uniq("ad"))
    conn.channel().queue_declare(name, auto_delete=True)
    cch = conn.channel()
    cch.basic_consume(name, lambda *a: None)
    publish_confirmed(conn, "", name, [b"pending"])  # messages do not keep it alive
    cch.close()
    eventually(lambda: not queue_exists(broker, name), what="auto-delete queue deletion")


def test_auto_delete_queue_deleted_when_consumer_connection_closes(broker, uniq, cleanup):
    name = cleanup.queue(uniq("ad"))
    c = broker.connect()
    ch = c.channel()
    ch.queue_declare(name, auto_delete=True)
    ch.basic_consume(name, lambda *a: None)
    c.close()
    eventually(lambda: not queue_exists(broker, name), what="auto-delete queue deletion")


def test_auto_delete_queue_shared_between_connections(broker, conn, uniq, cleanup):
    name = cleanup.queue(uniq("ad"))
    ch = conn.channel()
    ch.queue_declare(name, auto_delete=True)
    other = broker.connect()
    try:
        och = other.channel()
        och.queue_declare(name, auto_delete=True)
        och.basic_consume(name, lambda *a: None)
        t = ch.basic_consume(name, lambda *a: None)
        ch.basic_cancel(t)
        assert queue_exists(broker, name)  # the other connection still consumes
    finally:
        other.close()
    eventually(lambda: not queue_exists(broker, name), what="auto-delete queue deletion")


# ---------------------------------------------------------------- server-named


def test_server_named_queue(conn):
    ch = conn.channel()
    names = {ch.queue_declare("", exclusive=True).method.queue for _ in range(5)}
    assert len(names) == 5
    for n in names:
        assert SERVER_NAME.match(n), n


def test_server_named_non_exclusive_queue(conn, cleanup):
    ch = conn.channel()
    name = cleanup.queue(ch.queue_declare("").method.queue)
    assert SERVER_NAME.match(name), name
    ch.basic_publish("", name, b"m")
    assert bodies(ch, name) == [b"m"]


def test_explicit_amq_gen_name_refused(conn):
    ch = conn.channel()
    with channel_closed(403, "ACCESS_REFUSED - queue name 'amq.gen-abc' contains reserved prefix 'amq.*'",
                        QUEUE_DECLARE):
        ch.queue_declare("amq.gen-abc")


def test_passive_declare_of_empty_name(conn):
    ch = conn.channel()
    ch.queue_declare("", exclusive=True)
    with channel_closed(404, "NOT_FOUND - no queue '' in vhost '/'", QUEUE_DECLARE):
        ch.queue_declare("", passive=True)


NO_PREVIOUS = "NOT_FOUND - no previously declared queue"


@pytest.mark.parametrize(
    "op,ids",
    [
        (lambda ch: ch.queue_bind("", "amq.fanout"), QUEUE_BIND),
        (lambda ch: ch.queue_unbind("", "amq.fanout"), QUEUE_UNBIND),
        (lambda ch: ch.basic_get(""), BASIC_GET),
        (lambda ch: ch.queue_purge(""), QUEUE_PURGE),
        (lambda ch: ch.queue_delete(""), QUEUE_DELETE),
        (lambda ch: ch.basic_consume("", lambda *a: None), BASIC_CONSUME),
    ],
    ids=["bind", "unbind", "get", "purge", "delete", "consume"],
)
def test_empty_queue_name_without_previous_declare(conn, op, ids):
    ch = conn.channel()
    with channel_closed(404, NO_PREVIOUS, ids):
        op(ch)


def test_empty_queue_name_means_last_declared_queue_of_the_channel(conn, uniq, cleanup):
    ch = conn.channel()
    x = cleanup.exchange(uniq("x"))
    ch.exchange_declare(x, "direct")
    name = ch.queue_declare("", exclusive=True).method.queue
    # bind with queue "" and routing key "": both become the queue's name
    ch.queue_bind("", x)
    ch.basic_publish(x, name, b"by-name")
    ch.basic_publish(x, "", b"by-empty-key")
    m, _p, b = ch.basic_get("", auto_ack=True)
    assert (b, m.routing_key) == (b"by-name", name)
    assert ch.basic_get("", auto_ack=True)[0] is None
    ch.queue_unbind("", x)
    ch.basic_publish(x, name, b"unbound")
    assert ch.basic_get(name, auto_ack=True)[0] is None
    ch.basic_publish("", name, b"p")
    assert ch.queue_purge("").method.message_count == 1
    # another channel has no "last declared queue"
    other = conn.channel()
    with channel_closed(404, NO_PREVIOUS, BASIC_GET):
        other.basic_get("")
    assert ch.queue_delete("").method.message_count == 0
    # the name is remembered after deletion
    with channel_closed(404, not_found_queue(name), BASIC_GET):
        ch.basic_get("")


def test_server_generated_name_via_raw_frames(broker):
    raw = RawClient(broker)
    try:
        ok = raw.rpc(spec.Queue.Declare(queue="", exclusive=True), spec.Queue.DeclareOk)
        assert SERVER_NAME.match(ok.queue), ok.queue
        assert (ok.message_count, ok.consumer_count) == (0, 0)
    finally:
        raw.close()


# ---------------------------------------------------------------- passive


def test_passive_missing(conn, uniq):
    ch = conn.channel()
    name = uniq("missing")
    with channel_closed(404, not_found_queue(name), QUEUE_DECLARE):
        ch.queue_declare(name, passive=True)
    assert conn.is_open


def test_passive_ignores_other_flags(conn, uniq, cleanup):
    name = cleanup.queue(uniq("q"))
    ch = conn.channel()
    ch.queue_declare(name, arguments={"x-max-length": 5})
    ok = ch.queue_declare(name, passive=True, durable=True, auto_delete=True,
                          arguments={"x-max-length": 7})
    assert ok.method.queue == name


def test_passive_returns_counts(conn, uniq, cleanup):
    name = cleanup.queue(uniq("q"))
    ch = conn.channel()
    ch.queue_declare(name)
    publish_confirmed(conn, "", name, [b"a", b"b", b"c"])
    got = []
    ch.basic_consume(name, lambda c, m, p, b: got.append(b))  # no prefetch limit
    wait_until(conn, lambda: len(got) == 3, what="three deliveries")
    # unacked messages are not in message_count
    other = conn.channel()
    ok = other.queue_declare(name, passive=True)
    assert (ok.method.queue, ok.method.message_count, ok.method.consumer_count) == (name, 0, 1)


# ---------------------------------------------------------------- equivalence


def _ineq(arg, name, detail):
    return f"PRECONDITION_FAILED - inequivalent arg '{arg}' for queue '{name}' in vhost '/': {detail}"


EQUIV = [
    ("durable-on", {}, {"durable": True}, "durable", "received 'true' but current is 'false'"),
    ("durable-off", {"durable": True}, {}, "durable", "received 'false' but current is 'true'"),
    ("autodel-on", {}, {"auto_delete": True}, "auto_delete", "received 'true' but current is 'false'"),
    ("autodel-off", {"auto_delete": True}, {}, "auto_delete", "received 'false' but current is 'true'"),
    ("durable-first", {"durable": True, "auto_delete": True}, {}, "durable",
     "received 'false' but current is 'true'"),
    ("ttl-value", {"arguments": {"x-message-ttl": 1000}}, {"arguments": {"x-message-ttl": 2000}},
     "x-message-ttl", "received '2000' but current is '1000'"),
    ("ttl-missing", {"arguments": {"x-message-ttl": 1000}}, {}, "x-message-ttl",
     "received none but current is the value '1000' of type 'signedint'"),
    ("ttl-added", {}, {"arguments": {"x-message-ttl": 1000}}, "x-message-ttl",
     "received the value '1000' of type 'signedint' but current is none"),
    ("maxlen-value", {"arguments": {"x-max-length": 10}}, {"arguments": {"x-max-length": 20}},
     "x-max-length", "received '20' but current is '10'"),
    ("maxlen-type", {"arguments": {"x-max-length": 10}}, {"arguments": {"x-max-length": "10"}},
     "x-max-length", "received '10' but current is '10'"),
    ("maxlen-missing", {"arguments": {"x-max-length": 10}}, {}, "x-max-length",
     "received none but current is the value '10' of type 'signedint'"),
    ("expires", {"arguments": {"x-expires": 10000}}, {"arguments": {"x-expires": 20000}},
     "x-expires", "received '20000' but current is '10000'"),
    ("dlx", {"arguments": {"x-dead-letter-exchange": "a"}},
     {"arguments": {"x-dead-letter-exchange": "b"}}, "x-dead-letter-exchange",
     "received 'b' but current is 'a'"),
    ("max-priority", {"arguments": {"x-max-priority": 10}}, {"arguments": {"x-max-priority": 5}},
     "x-max-priority", "received '5' but current is '10'"),
    ("overflow", {"arguments": {"x-overflow": "drop-head"}},
     {"arguments": {"x-overflow": "reject-publish"}}, "x-overflow",
     "received 'reject-publish' but current is 'drop-head'"),
]


@pytest.mark.parametrize("first,second,arg,detail", [e[1:] for e in EQUIV],
                         ids=[e[0] for e in EQUIV])
def test_inequivalent_redeclare(conn, uniq, cleanup, first, second, arg, detail):
    name = cleanup.queue(uniq("q"))
    conn.channel().queue_declare(name, **first)
    ch = conn.channel()
    with channel_closed(406, _ineq(arg, name, detail), QUEUE_DECLARE):
        ch.queue_declare(name, **second)
    assert conn.is_open
    # unchanged
    conn.channel().queue_declare(name, **first)


@pytest.mark.parametrize(
    "first,second",
    [
        ({"arguments": {"x-foo": 1}}, {"arguments": {"x-foo": 2}}),
        ({"arguments": {"x-foo": 1}}, {}),
        ({"arguments": {"x-queue-type": "classic"}}, {}),
        ({}, {"arguments": {"x-queue-type": "classic"}}),
        ({"arguments": {"x-message-ttl": 1000}}, {"arguments": {"x-message-ttl": 1000}}),
    ],
    ids=["unknown-arg-changed", "unknown-arg-dropped", "classic-vs-default", "default-vs-classic",
         "same-ttl"],
)
def test_equivalent_redeclare(conn, uniq, cleanup, first, second):
    name = cleanup.queue(uniq("q"))
    conn.channel().queue_declare(name, **first)
    ok = conn.channel().queue_declare(name, **second)
    assert ok.method.queue == name


@pytest.mark.parametrize(
    "args,detail",
    [
        ({"x-message-ttl": -1}, "{value_negative,-1}"),
        ({"x-message-ttl": "abc"}, '"expected integer, got longstr"'),
        ({"x-max-length": -1}, "{value_negative,-1}"),
        ({"x-expires": 0}, "{value_zero,0}"),
        ({"x-queue-type": "foo"}, "\"unsupported queue type 'foo'\""),
    ],
    ids=["ttl-negative", "ttl-string", "maxlen-negative", "expires-zero", "queue-type"],
)
def test_invalid_arguments(conn, uniq, args, detail):
    name = uniq("q")
    ch = conn.channel()
    arg = next(iter(args))
    text = f"PRECONDITION_FAILED - invalid arg '{arg}' for queue '{name}' in vhost '/': {detail}"
    with channel_closed(406, text, QUEUE_DECLARE):
        ch.queue_declare(name, arguments=args)
    assert not queue_exists_safe(conn, name)


def queue_exists_safe(conn, name):
    try:
        conn.channel().queue_declare(name, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False


# ---------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["amq.foo", "amq.", "amq.gen"])
def test_amq_prefix_refused(conn, name):
    ch = conn.channel()
    with channel_closed(403, f"ACCESS_REFUSED - queue name '{name}' contains reserved prefix 'amq.*'",
                        QUEUE_DECLARE):
        ch.queue_declare(name)
    assert conn.is_open


def test_amq_prefix_passive_is_404(conn):
    ch = conn.channel()
    with channel_closed(404, not_found_queue("amq.foo"), QUEUE_DECLARE):
        ch.queue_declare("amq.foo", passive=True)


def test_longest_name_255_bytes(conn):
    ch = conn.channel()
    name = "q" * 255
    ok = ch.queue_declare(name, exclusive=True)
    assert ok.method.queue == name
    ch.basic_publish("", name, b"m")
    assert bodies(ch, name) == [b"m"]


def test_unicode_name(conn, uniq):
    ch = conn.channel()
    name = uniq("очередь-队列")
    ok = ch.queue_declare(name, exclusive=True)
    assert ok.method.queue == name
