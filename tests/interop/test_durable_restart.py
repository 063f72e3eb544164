"""Durable storage across broker restarts (issue 3).

Every test runs on a private broker it restarts on the same data directory and port:
gracefully (SIGTERM, wait for exit) and, where parametrized `how=kill9`, by SIGKILL
(only after everything the test relies on was confirmed: publisher confirms, tx.commit-ok,
declare-ok). What must survive: durable queues, durable exchanges, bindings between
durable things, queue arguments and flags, persistent messages in durable queues (order,
properties and bodies byte for byte), the delivered-but-unacked state (as redelivered).
What must not: transient messages, non-durable and exclusive queues, non-durable
exchanges, deleted definitions, acked messages.

Against the reference RabbitMQ these run only with WARREN_TEST_RESTART_REFERENCE=1 (and
the kill9 variants only with WARREN_TEST_KILL_REFERENCE=1 too): see durability_helpers.
"""

import random
import struct

import pika
import pytest
from pika import spec

from durability_helpers import (
    PERSISTENT,
    TRANSIENT,
    Closed,
    bounce,
    drain,
    killable,  # noqa: F401  (fixture)
    publish_confirmed,
    restartable,  # noqa: F401  (fixture)
)
from helpers import eventually

HOW = pytest.mark.parametrize("how", ["graceful", "kill9"])

P = spec.BasicProperties(delivery_mode=PERSISTENT)


# ---------------------------------------------------------------- small tools


def ch_of(rb):
    """A fresh pika connection and channel (the caller closes the connection)."""
    c = rb.connect()
    return c, c.channel()


def declare(rb, queues=(), exchanges=(), bindings=(), xbindings=()):
    """queues: (name, kwargs); exchanges: (name, type, kwargs);
    bindings: (queue, exchange, key, args); xbindings: (dest, source, key)."""
    rb.track(queues=[q for q, _ in queues], exchanges=[x for x, _, _ in exchanges])
    c, ch = ch_of(rb)
    try:
        for name, xtype, kw in exchanges:
            ch.exchange_declare(name, xtype, **kw)
        for name, kw in queues:
            ch.queue_declare(name, **kw)
        for q, x, key, args in bindings:
            ch.queue_bind(q, x, key, arguments=args)
        for dest, source, key in xbindings:
            ch.exchange_bind(dest, source, key)
    finally:
        c.close()


def count(rb, queue):
    """message_count of `queue` (ready messages), or None if it does not exist."""
    c = rb.raw()
    try:
        c.open_channel(1)
        ok = c.rpc(1, spec.Queue.Declare(queue=queue, passive=True), spec.Queue.DeclareOk)
        return ok.message_count
    except Closed as e:
        assert e.reply_code == 404, e
        return None
    finally:
        c.close()


def exchange_exists(rb, name):
    c = rb.raw()
    try:
        c.open_channel(1)
        c.rpc(1, spec.Exchange.Declare(exchange=name, passive=True), spec.Exchange.DeclareOk)
        return True
    except Closed as e:
        assert e.reply_code == 404, e
        return False
    finally:
        c.close()


def present(rb, queue, what, how):
    n = count(rb, queue)
    assert n is not None, f"{what} {queue!r} does not exist after the {how} restart"
    return n


def redeclare_fails(rb, code, text, declare_fn):
    """declare_fn(channel) must be refused with (code, text) — the channel closes."""
    c, ch = ch_of(rb)
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            declare_fn(ch)
        assert (info.value.reply_code, info.value.reply_text) == (code, text)
    finally:
        if c.is_open:
            c.close()


def ineq(kind, name, arg, detail):
    return (f"PRECONDITION_FAILED - inequivalent arg '{arg}' for {kind} '{name}' in vhost '/': "
            f"{detail}")


def bodies_of(contents):
    return [c.body for c in contents]


def mixed_bodies(n, seed, big_every=0):
    """n distinct bodies of varied sizes (some empty, some multi-frame if big_every)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        if big_every and i % big_every == big_every - 1:
            size = rnd.randint(131072, 300_000)  # more than one body frame
        elif i % 97 == 0:
            size = 0
        else:
            size = rnd.choice((1, 10, 100, 1000, 4000)) + rnd.randint(0, 50)
        tag = b"#%06d#" % i  # makes bodies of 8 bytes and more distinct
        out.append(tag[:size] + rnd.randbytes(max(0, size - len(tag))))
    return out


# ---------------------------------------------------------------- messages


@HOW
def test_persistent_messages_in_durable_queue_survive(restartable, uniq, how):
    rb = restartable
    q = uniq("q")
    declare(rb, queues=[(q, {"durable": True})])
    bodies = mixed_bodies(300, seed=1)
    publish_confirmed(rb, q, [(P, b) for b in bodies])
    assert count(rb, q) == 300

    bounce(rb, how)

    assert present(rb, q, "durable queue", how) == 300
    got = drain(rb, q)
    assert len(got) == 300
    assert bodies_of(got) == bodies, "bodies or order changed across the restart"
    if how == "graceful":
        # (After a crash a broker may flag everything redelivered, as RabbitMQ does.)
        assert [c.redelivered for c in got] == [False] * 300, \
            "never-delivered messages came back flagged redelivered"
    assert all(c.props.delivery_mode == PERSISTENT for c in got)


@HOW
def test_transient_messages_in_durable_queue_do_not_survive(restartable, uniq, how):
    rb = restartable
    q = uniq("q")
    declare(rb, queues=[(q, {"durable": True})])
    kinds = [PERSISTENT, TRANSIENT, None] * 40  # None: no delivery-mode property = transient
    msgs = [(spec.BasicProperties(delivery_mode=k), b"%s-%d" % (str(k).encode(), i))
            for i, k in enumerate(kinds)]
    publish_confirmed(rb, q, msgs)
    assert count(rb, q) == 120  # all were enqueued before the restart

    bounce(rb, how)

    assert present(rb, q, "durable queue", how) == 40
    got = drain(rb, q)
    assert bodies_of(got) == [b for p, b in msgs if p.delivery_mode == PERSISTENT]


@HOW
def test_non_durable_queue_is_gone_durable_one_stays(restartable, uniq, how):
    rb = restartable
    qd, qt = uniq("durable"), uniq("transient")
    declare(rb, queues=[(qd, {"durable": True}), (qt, {"durable": False})])
    for q in (qd, qt):
        publish_confirmed(rb, q, [(P, b"m%d" % i) for i in range(5)])

    bounce(rb, how)

    assert count(rb, qt) is None, "a non-durable queue survived the restart"
    assert present(rb, qd, "durable queue", how) == 5


@HOW
def test_exclusive_queues_are_gone(restartable, uniq, how):
    rb = restartable
    qd, qx_durable, qx_transient = uniq("durable"), uniq("excl-durable"), uniq("excl")
    declare(rb, queues=[(qd, {"durable": True})])
    owner = rb.connect()  # stays open until the broker goes away
    och = owner.channel()
    och.queue_declare(qx_durable, durable=True, exclusive=True)
    och.queue_declare(qx_transient, durable=False, exclusive=True)
    for q in (qd, qx_durable, qx_transient):
        publish_confirmed(rb, q, [(P, b"m")])

    bounce(rb, how)
    try:
        owner.close()
    except Exception:
        pass

    assert present(rb, qd, "durable queue", how) == 1
    assert count(rb, qx_transient) is None, "an exclusive queue survived the restart"
    assert count(rb, qx_durable) is None, "a durable exclusive queue survived the restart"
    # The name is free again, and nothing of the old queue's content lingers.
    declare(rb, queues=[(qx_durable, {"durable": True})])
    assert count(rb, qx_durable) == 0


@HOW
def test_acked_messages_do_not_come_back(restartable, uniq, how):
    rb = restartable
    q = uniq("q")
    declare(rb, queues=[(q, {"durable": True})])
    publish_confirmed(rb, q, [(P, b"m%d" % i) for i in range(10)])
    c = rb.raw()
    try:
        c.open_channel(1)
        for i in range(6):
            m = c.get(1, q, no_ack=False)
            assert m.body == b"m%d" % i
            c.send_method(1, spec.Basic.Ack(delivery_tag=m.method.delivery_tag))
        for i in range(6, 8):  # no_ack gets: acked by the broker when sent
            assert c.get(1, q, no_ack=True).body == b"m%d" % i
        # A synchronous round trip on the same channel: the acks have been processed.
        ok = c.rpc(1, spec.Queue.Declare(queue=q, passive=True), spec.Queue.DeclareOk)
        assert ok.message_count == 2
    finally:
        c.close()
    if how == "kill9":
        publish_confirmed(rb, q, [(P, b"after")])

    bounce(rb, how)

    got = drain(rb, q)
    if how == "graceful":
        assert bodies_of(got) == [b"m8", b"m9"], "acked messages came back (or others lost)"
    else:
        # After a crash an acked message may come back (at-least-once) but only flagged
        # redelivered, and in its place: the queue is still in publish order. (RabbitMQ
        # 3.10 passes the strict graceful check here too: the confirm of "after" syncs
        # the acks before it.)
        assert [c.body for c in got if c.body in (b"m8", b"m9", b"after")] == [
            b"m8", b"m9", b"after"], "unacked messages lost"
        back = [c for c in got if c.body not in (b"m8", b"m9", b"after")]
        assert all(c.redelivered for c in back), \
            f"acked messages came back not flagged redelivered: {bodies_of(back)}"
        assert bodies_of(got) == sorted(bodies_of(got), key=lambda b: (b == b"after", b))


def test_unacked_messages_come_back_redelivered(restartable, uniq):
    """Graceful restart: delivered-but-unacked come back with redelivered=True, in their
    original place; never-delivered ones with redelivered=False; acked ones not at all."""
    rb = restartable
    q = uniq("q")
    declare(rb, queues=[(q, {"durable": True})])
    publish_confirmed(rb, q, [(P, b"m%d" % i) for i in range(10)])
    consumer = rb.raw()
    consumer.open_channel(1, prefetch=6)
    consumer.rpc(1, spec.Basic.Consume(queue=q, consumer_tag="c"), spec.Basic.ConsumeOk)
    delivered = [consumer.next_event() for _ in range(6)]
    assert bodies_of(delivered) == [b"m%d" % i for i in range(6)]
    # Cancel before acking, so the acks free no prefetch slots for more deliveries; the
    # channel still holds the six unacked.
    consumer.rpc(1, spec.Basic.Cancel(consumer_tag="c"), spec.Basic.CancelOk)
    for i in (0, 1, 3):  # out of order on purpose
        consumer.send_method(1, spec.Basic.Ack(delivery_tag=delivered[i].method.delivery_tag))
    ok = consumer.rpc(1, spec.Queue.Declare(queue=q, passive=True), spec.Queue.DeclareOk)
    assert (ok.message_count, ok.consumer_count) == (4, 0)

    bounce(rb, "graceful")  # with the consumer still connected, holding m2 m4 m5
    consumer.sock.close()

    got = drain(rb, q)
    assert [(c.body, c.redelivered) for c in got] == [
        (b"m2", True), (b"m4", True), (b"m5", True),
        (b"m6", False), (b"m7", False), (b"m8", False), (b"m9", False)]


def test_unacked_messages_come_back_after_kill9(killable, uniq):
    """SIGKILL while a consumer holds unacked messages: they come back redelivered.
    (The others may come back flagged redelivered too: after a crash RabbitMQ flags every
    recovered message, which the spec allows — redelivered means "may have been".)"""
    rb = killable
    q = uniq("q")
    declare(rb, queues=[(q, {"durable": True})])
    publish_confirmed(rb, q, [(P, b"m%d" % i) for i in range(10)])
    consumer = rb.raw()
    consumer.open_channel(1, prefetch=4)
    consumer.rpc(1, spec.Basic.Consume(queue=q, consumer_tag="c"), spec.Basic.ConsumeOk)
    delivered = [consumer.next_event() for _ in range(4)]
    assert bodies_of(delivered) == [b"m0", b"m1", b"m2", b"m3"]
    ok = consumer.rpc(1, spec.Queue.Declare(queue=q, passive=True), spec.Queue.DeclareOk)
    assert ok.message_count == 6
    # A confirmed publish after the deliveries: a sync point after them, for a broker
    # that records deliveries lazily (one that, like RabbitMQ, flags everything
    # redelivered after a crash needs none).
    publish_confirmed(rb, q, [(P, b"after")])

    bounce(rb, "kill9")
    consumer.sock.close()

    got = drain(rb, q)
    assert bodies_of(got) == [b"m%d" % i for i in range(10)] + [b"after"]
    assert [c.redelivered for c in got[:4]] == [True] * 4, \
        "delivered-but-unacked messages came back not flagged redelivered"


@HOW
def test_order_is_preserved_over_many_messages(restartable, uniq, how):
    rb = restartable
    q = uniq("q")
    declare(rb, queues=[(q, {"durable": True})])
    bodies = mixed_bodies(5000, seed=2, big_every=1000)
    publish_confirmed(rb, q, [(P, b) for b in bodies])

    bounce(rb, how)

    assert present(rb, q, "durable queue", how) == 5000
    got = drain(rb, q)
    assert len(got) == 5000
    for i, (want, c) in enumerate(zip(bodies, got)):
        assert c.body == want, f"message {i} differs after the restart (order or content)"


def test_basic_get_after_restart(restartable, uniq):
    rb = restartable
    q = uniq("q")
    declare(rb, queues=[(q, {"durable": True})])
    publish_confirmed(rb, q, [(P, b"a"), (P, b"b"), (P, b"c")])

    bounce(rb, "graceful")

    c = rb.raw()
    try:
        c.open_channel(1)
        first = c.get(1, q, no_ack=False)
        assert (first.body, first.redelivered, first.method.message_count) == (b"a", False, 2)
        c.send_method(1, spec.Basic.Reject(delivery_tag=first.method.delivery_tag, requeue=True))
        again = c.get(1, q, no_ack=True)
        assert (again.body, again.redelivered, again.method.message_count) == (b"a", True, 2)
        rest = [c.get(1, q, no_ack=True) for _ in range(2)]
        assert [(m.body, m.method.message_count) for m in rest] == [(b"b", 1), (b"c", 0)]
        assert c.get(1, q) is None
    finally:
        c.close()


def test_tx_commit_survives_kill9_right_after_commit_ok(killable, uniq):
    rb = killable
    x, qa, qb = uniq("fanout"), uniq("qa"), uniq("qb")
    declare(rb, exchanges=[(x, "fanout", {"durable": True})],
            queues=[(qa, {"durable": True}), (qb, {"durable": True})],
            bindings=[(qa, x, "", None), (qb, x, "", None)])
    c = rb.raw()
    c.open_channel(1, tx=True)
    c.open_channel(2, tx=True)
    # Channel 2: publishes that are never committed (the broker has them: a synchronous
    # method on the same channel was answered after them).
    c.sock.sendall(b"".join(c.publish_bytes(2, x, "", b"uncommitted-%d" % i, P)
                            for i in range(10)))
    c.rpc(2, spec.Queue.Declare(queue=qa, passive=True), spec.Queue.DeclareOk)
    committed = [b"committed-%d" % i + bytes(i * 37) for i in range(50)]
    c.sock.sendall(b"".join(c.publish_bytes(1, x, "", b, P) for b in committed))
    c.rpc(1, spec.Tx.Commit(), spec.Tx.CommitOk, timeout=60)
    rb.kill9()  # nothing else in between
    c.sock.close()
    rb.start()

    for q in (qa, qb):
        assert present(rb, q, "durable queue", "kill9") == 50
        assert bodies_of(drain(rb, q)) == committed


# ---------------------------------------------------------------- definitions


@HOW
def test_durable_exchanges_and_bindings_survive(restartable, uniq, how):
    rb = restartable
    xd, xt, xf, xh = uniq("direct"), uniq("topic"), uniq("fanout"), uniq("headers")
    xn, xgone = uniq("transient-x"), uniq("deleted-x")
    q1, q2, qgone = uniq("q1"), uniq("transient-q"), uniq("deleted-q")
    declare(
        rb,
        exchanges=[(xd, "direct", {"durable": True}), (xt, "topic", {"durable": True}),
                   (xf, "fanout", {"durable": True}), (xh, "headers", {"durable": True}),
                   (xn, "direct", {"durable": False}), (xgone, "direct", {"durable": True})],
        queues=[(q1, {"durable": True}), (q2, {"durable": False}), (qgone, {"durable": True})],
        bindings=[(q1, xd, "k1", None), (q1, xt, "a.*.c", None),
                  (q1, xh, "", {"x-match": "all", "h": "v", "n": 7}),
                  (q1, xn, "k", None), (q2, xd, "k1", None), (q1, xd, "unbound", None),
                  (qgone, xd, "k1", None)],
        xbindings=[(xt, xf, "")])
    c, ch = ch_of(rb)
    ch.queue_unbind(q1, xd, "unbound")
    ch.exchange_delete(xgone)
    ch.queue_delete(qgone)
    c.close()

    bounce(rb, how)

    for x in (xd, xt, xf, xh):
        assert exchange_exists(rb, x), f"durable exchange {x!r} lost in the {how} restart"
    assert not exchange_exists(rb, xn), "a non-durable exchange survived the restart"
    assert not exchange_exists(rb, xgone), "a deleted exchange came back"
    assert count(rb, qgone) is None, "a deleted queue came back"
    assert count(rb, q2) is None, "a non-durable queue survived the restart"
    assert present(rb, q1, "durable queue", how) == 0

    c, ch = ch_of(rb)
    try:
        ch.confirm_delivery()
        routed = [
            (xd, "k1", None, b"via-direct"),
            (xt, "a.b.c", None, b"via-topic"),
            (xf, "a.x.c", None, b"via-exchange-binding"),  # xf -> xt -> "a.*.c" -> q1
            (xh, "", {"h": "v", "n": 7}, b"via-headers"),
        ]
        for x, key, headers, body in routed:
            ch.basic_publish(x, key, body, spec.BasicProperties(delivery_mode=2,
                                                                headers=headers),
                             mandatory=True)
        unroutable = [(xd, "unbound", None), (xt, "a.b.d", None), (xh, "", {"h": "w", "n": 7}),
                      (xd, "k2", None)]
        for x, key, headers in unroutable:
            with pytest.raises(pika.exceptions.UnroutableError):
                ch.basic_publish(x, key, b"unroutable",
                                 spec.BasicProperties(delivery_mode=2, headers=headers),
                                 mandatory=True)
    finally:
        if c.is_open:
            c.close()
    # q1 has exactly one copy of each: no binding was duplicated by the recovery.
    assert bodies_of(drain(rb, q1)) == [b for _, _, _, b in routed]


@HOW
def test_flags_and_types_survive_as_declared(restartable, uniq, how):
    rb = restartable
    xa, xd = uniq("autodelete-x"), uniq("direct")
    qa, qn, qb = uniq("autodelete-q"), uniq("plain-q"), uniq("bound-q")
    declare(rb,
            exchanges=[(xa, "direct", {"durable": True, "auto_delete": True}),
                       (xd, "topic", {"durable": True})],
            queues=[(qa, {"durable": True, "auto_delete": True}), (qn, {"durable": True}),
                    (qb, {"durable": True})],
            bindings=[(qb, xa, "k", None)])

    bounce(rb, how)

    for x in (xa, xd):
        assert exchange_exists(rb, x), f"durable exchange {x!r} lost in the {how} restart"
    for q in (qa, qn, qb):
        present(rb, q, "durable queue", how)
    # The binding that keeps the auto-delete exchange alive is there too.
    publish_confirmed(rb, "k", [(P, b"bound")], exchange=xa, mandatory=True)
    assert bodies_of(drain(rb, qb)) == [b"bound"]
    # Equivalent redeclares are accepted...
    declare(rb, exchanges=[(xa, "direct", {"durable": True, "auto_delete": True}),
                           (xd, "topic", {"durable": True})],
            queues=[(qa, {"durable": True, "auto_delete": True}), (qn, {"durable": True})])
    # ...inequivalent ones are refused with the stored value in the text.
    redeclare_fails(rb, 406, ineq("exchange", xa, "auto_delete",
                                  "received 'false' but current is 'true'"),
                    lambda ch: ch.exchange_declare(xa, "direct", durable=True))
    redeclare_fails(rb, 406, ineq("exchange", xd, "type",
                                  "received 'direct' but current is 'topic'"),
                    lambda ch: ch.exchange_declare(xd, "direct", durable=True))
    redeclare_fails(rb, 406, ineq("queue", qa, "auto_delete",
                                  "received 'false' but current is 'true'"),
                    lambda ch: ch.queue_declare(qa, durable=True))
    redeclare_fails(rb, 406, ineq("queue", qn, "auto_delete",
                                  "received 'true' but current is 'false'"),
                    lambda ch: ch.queue_declare(qn, durable=True, auto_delete=True))

    # ...and they still act: auto-delete queue goes with its last consumer, the plain
    # one stays; the auto-delete exchange goes with its last binding.
    c, ch = ch_of(rb)
    try:
        for q in (qa, qn):
            tag = ch.basic_consume(q, lambda *a: None)
            ch.basic_cancel(tag)
        ch.queue_unbind(qb, xa, "k")
    finally:
        c.close()
    eventually(lambda: count(rb, qa) is None, timeout=10,
               what="the auto-delete queue to go after its consumer was cancelled")
    assert count(rb, qn) == 0
    eventually(lambda: not exchange_exists(rb, xa), timeout=10,
               what="the auto-delete exchange to go after its last binding")


@HOW
def test_queue_arguments_survive_and_still_apply(restartable, uniq, how):
    rb = restartable
    dlx, dlq = uniq("dlx"), uniq("dlq")
    qmax, qttl = uniq("maxlen"), uniq("ttl")
    max_args = {"x-max-length": 3, "x-dead-letter-exchange": dlx}
    ttl_args = {"x-message-ttl": 200, "x-dead-letter-exchange": dlx,
                "x-dead-letter-routing-key": "expired-rk"}
    declare(rb, exchanges=[(dlx, "fanout", {"durable": True})],
            queues=[(dlq, {"durable": True}), (qmax, {"durable": True, "arguments": max_args}),
                    (qttl, {"durable": True, "arguments": ttl_args})],
            bindings=[(dlq, dlx, "", None)])
    publish_confirmed(rb, qmax, [(P, b"m1"), (P, b"m2"), (P, b"m3")])

    bounce(rb, how)

    assert exchange_exists(rb, dlx), f"durable exchange {dlx!r} lost in the {how} restart"
    for q in (dlq, qmax, qttl):
        present(rb, q, "durable queue", how)
    # The arguments are there, with their types.
    declare(rb, queues=[(qmax, {"durable": True, "arguments": max_args}),
                        (qttl, {"durable": True, "arguments": ttl_args})])
    redeclare_fails(rb, 406, ineq("queue", qmax, "x-max-length",
                                  "received '4' but current is '3'"),
                    lambda ch: ch.queue_declare(qmax, durable=True, arguments={
                        **max_args, "x-max-length": 4}))
    redeclare_fails(rb, 406, ineq("queue", qttl, "x-message-ttl",
                                  "received none but current is the value '200' of type "
                                  "'signedint'"),
                    lambda ch: ch.queue_declare(qttl, durable=True, arguments={
                        k: v for k, v in ttl_args.items() if k != "x-message-ttl"}))
    # x-max-length still applies, counting the recovered messages: the head is dropped
    # and dead-lettered.
    assert present(rb, qmax, "durable queue", how) == 3
    publish_confirmed(rb, qmax, [(P, b"m4")])
    assert bodies_of(drain(rb, qmax)) == [b"m2", b"m3", b"m4"]
    # x-message-ttl and the dead-letter routing key still apply.
    publish_confirmed(rb, qttl, [(P, b"t1")])
    eventually(lambda: count(rb, dlq) == 2, timeout=15,
               what="the max-length drop and the expired message in the dead-letter queue")
    dead = drain(rb, dlq)
    by_body = {c.body: c for c in dead}
    assert sorted(by_body) == [b"m1", b"t1"]
    m1, t1 = by_body[b"m1"], by_body[b"t1"]
    assert m1.props.headers["x-death"][0]["reason"] == "maxlen"
    assert m1.props.headers["x-death"][0]["queue"] == qmax
    assert t1.props.headers["x-death"][0]["reason"] == "expired"
    assert t1.props.headers["x-death"][0]["queue"] == qttl
    assert t1.method.routing_key == "expired-rk"
    assert m1.props.delivery_mode == t1.props.delivery_mode == PERSISTENT


# ---------------------------------------------------------------- bytes


def shortstr(s):
    b = s.encode() if isinstance(s, str) else s
    assert len(b) < 256
    return bytes([len(b)]) + b


def longstr(b):
    return struct.pack(">I", len(b)) + b


def fv(tag, value):
    """One field value with an explicit AMQP type tag (RabbitMQ's tags)."""
    enc = {
        "t": lambda v: struct.pack(">B", v),
        "b": lambda v: struct.pack(">b", v),
        "B": lambda v: struct.pack(">B", v),
        "s": lambda v: struct.pack(">h", v),
        "u": lambda v: struct.pack(">H", v),
        "I": lambda v: struct.pack(">i", v),
        "i": lambda v: struct.pack(">I", v),
        "l": lambda v: struct.pack(">q", v),
        "f": lambda v: struct.pack(">f", v),
        "d": lambda v: struct.pack(">d", v),
        "D": lambda v: struct.pack(">BI", *v),
        "S": longstr,
        "x": longstr,
        "T": lambda v: struct.pack(">Q", v),
        "V": lambda v: b"",
        "A": lambda v: longstr(b"".join(v)),
        "F": lambda v: longstr(v),
    }[tag](value)
    return tag.encode() + enc


def table(items):
    """items: (key, encoded field value) -> the table's bytes without the length."""
    return b"".join(shortstr(k) + v for k, v in items)


def every_field_type():
    inner = table([("deep", fv("S", "nested ✓".encode())), ("n", fv("I", -1))])
    return table([
        ("bool-t", fv("t", 1)), ("bool-f", fv("t", 0)),
        ("i8", fv("b", -128)), ("u8", fv("B", 255)),
        ("i16", fv("s", -32768)), ("u16", fv("u", 65535)),
        ("i32", fv("I", -2**31)), ("u32", fv("i", 2**32 - 1)),
        ("i64", fv("l", -2**63)), ("f32", fv("f", 1.5)), ("f64", fv("d", -2.25e300)),
        ("dec", fv("D", (3, 123456))), ("str", fv("S", "ünïcødé \x00 \xce".encode())),
        ("bin", fv("x", bytes(range(256)))), ("ts", fv("T", 1_700_000_000)),
        ("void", fv("V", None)),
        ("arr", fv("A", [fv("I", 1), fv("S", b"two"), fv("F", inner), fv("V", None)])),
        ("tbl", fv("F", inner)), ("empty-tbl", fv("F", b"")), ("empty-str", fv("S", b"")),
    ])


def props_bytes(headers=None, full=True):
    """Property flags and list, built by hand, every basic property set when full."""
    fields = [
        (15, shortstr("application/x-test; charset=utf-8")),  # content-type
        (14, shortstr("gzip")),                                # content-encoding
        (13, longstr(headers if headers is not None else b"")),  # headers
        (12, bytes([PERSISTENT])),                             # delivery-mode
        (11, bytes([7])),                                      # priority
        (10, shortstr("corr-" + "c" * 250)),                   # correlation-id (255 B)
        (9, shortstr("reply.to.queue")),                       # reply-to
        (8, shortstr("86400000")),                             # expiration (1 day)
        (7, shortstr("msg-id-\u00e9")),                        # message-id
        (6, struct.pack(">Q", 1_700_000_123)),                 # timestamp
        (5, shortstr("a.type")),                               # type
        (4, shortstr("guest")),                                # user-id (must match)
        (3, shortstr("warren-durability-test")),               # app-id
        (2, shortstr("cluster-x")),                            # cluster-id (deprecated)
    ]
    if not full:
        fields = [f for f in fields if f[0] == 12]
    flags = 0
    for bit, _ in fields:
        flags |= 1 << bit
    return struct.pack(">H", flags) + b"".join(v for _, v in fields)


def byte_cases():
    rnd = random.Random(3)
    big_headers = table([("k%04d" % i, fv("S", rnd.randbytes(16))) for i in range(500)])
    return [
        ("empty body, every property", props_bytes(every_field_type()), b""),
        ("1 MiB body, every property", props_bytes(every_field_type()), rnd.randbytes(1 << 20)),
        ("frame-end bytes in the body", props_bytes(full=False),
         b"\xce" * 1000 + bytes(range(256)) * 4),
        ("one byte", props_bytes(full=False), b"\x00"),
        ("16 KB of headers", props_bytes(big_headers), b"small"),
        ("exactly one frame of body", props_bytes(full=False), rnd.randbytes(131072 - 8)),
        ("one byte over a frame", props_bytes(full=False), rnd.randbytes(131072 - 7)),
    ]


def get_exact(rb, queue, n):
    """basic.get n messages: [(exact header-frame payload, body)]."""
    c = rb.raw()
    try:
        c.open_channel(1)
        out = []
        for _ in range(n):
            m = c.get(1, queue, no_ack=True, timeout=30)
            assert m is not None, f"{queue} has fewer than {n} messages"
            out.append((m.header, m.body))
        assert c.get(1, queue) is None
        return out
    finally:
        c.close()


@HOW
def test_properties_headers_and_bodies_survive_byte_for_byte(restartable, uniq, how):
    rb = restartable
    q, control = uniq("q"), uniq("control")
    declare(rb, queues=[(q, {"durable": True}), (control, {"durable": True})])
    cases = byte_cases()
    sent = [struct.pack(">HHQ", 60, 0, len(body)) + props for _, props, body in cases]
    for target in (control, q):
        publish_confirmed(rb, target, [(props, body) for _, props, body in cases])
    # Control, before any restart: the broker relays the header frame untouched.
    for (name, _, body), want_header, (header, got_body) in zip(
            cases, sent, get_exact(rb, control, len(cases))):
        assert header == want_header, f"{name}: header frame changed even without a restart"
        assert got_body == body, f"{name}: body changed even without a restart"

    bounce(rb, how)

    for (name, _, body), want_header, (header, got_body) in zip(
            cases, sent, get_exact(rb, q, len(cases))):
        assert header == want_header, f"{name}: properties/headers changed across the restart"
        assert len(got_body) == len(body) and got_body == body, \
            f"{name}: body changed across the restart"


@HOW
def test_bcc_keys_survive_for_dead_lettering(restartable, uniq, how):
    """BCC is removed from the headers at publish, but RabbitMQ keeps those keys as the
    message's routing keys: a dead letter without x-dead-letter-routing-key is routed by
    routing key + CC + BCC, also after a restart."""
    rb = restartable
    src, dlx = uniq("src"), uniq("dlx")
    a, b, c = uniq("a"), uniq("b"), uniq("c")
    declare(
        rb,
        exchanges=[(dlx, "direct", {"durable": True})],
        queues=[(src, {"durable": True, "arguments": {"x-dead-letter-exchange": dlx}}),
                (a, {"durable": True}), (b, {"durable": True}), (c, {"durable": True})],
        bindings=[(a, dlx, "ka", None), (b, dlx, "kb", None), (c, dlx, "kc", None)],
    )
    conn, ch = ch_of(rb)
    ch.confirm_delivery()
    ch.basic_publish("", src, b"m", spec.BasicProperties(
        delivery_mode=PERSISTENT, headers={"CC": ["ka", "kb"], "BCC": ["kc"]}))
    conn.close()

    bounce(rb, how)

    conn, ch = ch_of(rb)
    try:
        m, p, body = ch.basic_get(src)
        assert body == b"m" and "BCC" not in p.headers
        ch.basic_reject(m.delivery_tag, requeue=False)

        got = {}

        def arrived(q):
            m, p, _body = ch.basic_get(q, auto_ack=True)
            got[q] = p
            return m is not None
        for q in (a, b, c):
            eventually(lambda: arrived(q), what=f"dead letter in {q}")
            p = got[q]
            assert "BCC" not in p.headers
            assert p.headers["x-death"][0]["routing-keys"] == [src, "ka", "kb"]
    finally:
        conn.close()
