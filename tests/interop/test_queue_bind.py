"""queue.bind / queue.unbind."""

import pika
from pika import spec

from helpers import (
    QUEUE_BIND,
    bodies,
    channel_closed,
    cleanup,  # noqa: F401  (fixture)
    not_found_exchange,
    not_found_queue,
)


def q(ch):
    return ch.queue_declare("", exclusive=True).method.queue


def xd(ch, cleanup, uniq, etype="direct"):
    x = cleanup.exchange(uniq("x"))
    ch.exchange_declare(x, etype)
    return x


def test_bind_unbind_ok(ch, uniq, cleanup):
    x = xd(ch, cleanup, uniq)
    a = q(ch)
    assert isinstance(ch.queue_bind(a, x, routing_key="k").method, spec.Queue.BindOk)
    ch.basic_publish(x, "k", b"bound")
    assert isinstance(ch.queue_unbind(a, x, routing_key="k").method, spec.Queue.UnbindOk)
    ch.basic_publish(x, "k", b"unbound")
    assert bodies(ch, a) == [b"bound"]


def test_rebinding_is_idempotent(ch, uniq, cleanup):
    x = xd(ch, cleanup, uniq)
    a = q(ch)
    for _ in range(3):
        ch.queue_bind(a, x, routing_key="k")
    ch.basic_publish(x, "k", b"once")
    assert bodies(ch, a) == [b"once"]
    # one unbind removes the (single) binding
    ch.queue_unbind(a, x, routing_key="k")
    ch.basic_publish(x, "k", b"none")
    assert bodies(ch, a) == []


def test_rebinding_with_same_arguments_is_idempotent(ch, uniq, cleanup):
    x = xd(ch, cleanup, uniq, "headers")
    a = q(ch)
    args = {"x-match": "any", "h": "v"}
    ch.queue_bind(a, x, arguments=args)
    ch.queue_bind(a, x, arguments=dict(args))
    ch.basic_publish(x, "", b"once", pika.BasicProperties(headers={"h": "v"}))
    assert bodies(ch, a) == [b"once"]
    ch.queue_unbind(a, x, arguments=args)
    ch.basic_publish(x, "", b"none", pika.BasicProperties(headers={"h": "v"}))
    assert bodies(ch, a) == []


def test_bind_missing_exchange(conn, uniq):
    ch = conn.channel()
    a = q(ch)
    x = uniq("nox")
    with channel_closed(404, not_found_exchange(x), QUEUE_BIND):
        ch.queue_bind(a, x, routing_key="k")
    assert conn.is_open


def test_bind_missing_queue(conn, uniq, cleanup):
    ch = conn.channel()
    x = xd(ch, cleanup, uniq)
    name = uniq("noq")
    with channel_closed(404, not_found_queue(name), QUEUE_BIND):
        ch.queue_bind(name, x, routing_key="k")


def test_bind_missing_both_reports_exchange(conn, uniq):
    ch = conn.channel()
    x, name = uniq("nox"), uniq("noq")
    with channel_closed(404, not_found_exchange(x), QUEUE_BIND):
        ch.queue_bind(name, x, routing_key="k")


def test_unbind_nonexistent_binding_ok(ch, uniq, cleanup):
    x = xd(ch, cleanup, uniq)
    a = q(ch)
    ok = ch.queue_unbind(a, x, routing_key="never")
    assert isinstance(ok.method, spec.Queue.UnbindOk)


def test_unbind_with_missing_queue_or_exchange_ok(ch, uniq, cleanup):
    # RabbitMQ 3.10 answers unbind-ok when the queue or the exchange does not exist
    x = xd(ch, cleanup, uniq)
    a = q(ch)
    assert isinstance(ch.queue_unbind(uniq("noq"), x, routing_key="k").method, spec.Queue.UnbindOk)
    assert isinstance(ch.queue_unbind(a, uniq("nox"), routing_key="k").method, spec.Queue.UnbindOk)
    assert isinstance(ch.queue_unbind(uniq("noq"), uniq("nox")).method, spec.Queue.UnbindOk)


def test_unbind_key_must_match(ch, uniq, cleanup):
    x = xd(ch, cleanup, uniq)
    a = q(ch)
    ch.queue_bind(a, x, routing_key="k")
    ch.queue_unbind(a, x, routing_key="K")
    ch.basic_publish(x, "k", b"still")
    assert bodies(ch, a) == [b"still"]


def test_binding_removed_when_queue_deleted(ch, uniq, cleanup):
    x = xd(ch, cleanup, uniq)
    name = uniq("q")
    ch.queue_declare(name)
    ch.queue_bind(name, x, routing_key="k")
    ch.queue_delete(name)
    ch.queue_declare(name, exclusive=True)
    ch.basic_publish(x, "k", b"lost")
    assert bodies(ch, name) == []


def test_bind_to_internal_exchange_ok(ch, uniq, cleanup):
    x = cleanup.exchange(uniq("internal"))
    ch.exchange_declare(x, "fanout", internal=True)
    a = q(ch)
    assert isinstance(ch.queue_bind(a, x).method, spec.Queue.BindOk)


def test_many_bindings(ch, uniq, cleanup):
    x = xd(ch, cleanup, uniq)
    a = q(ch)
    for i in range(100):
        ch.queue_bind(a, x, routing_key=f"k{i}")
    for i in range(0, 100, 10):
        ch.basic_publish(x, f"k{i}", str(i).encode())
    assert bodies(ch, a) == [str(i).encode() for i in range(0, 100, 10)]
