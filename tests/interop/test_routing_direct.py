"""Routing through direct exchanges."""

import pika
import pytest

from helpers import bodies, cleanup  # noqa: F401


@pytest.fixture
def x(ch, uniq, cleanup):
    name = cleanup.exchange(uniq("direct"))
    ch.exchange_declare(name, "direct")
    return name


def q(ch):
    return ch.queue_declare("", exclusive=True).method.queue


def test_exact_key_match(ch, x):
    a = q(ch)
    ch.queue_bind(a, x, routing_key="k")
    for key in ["k", "K", "k ", " k", "kk", "", "k.x", "#", "*"]:
        ch.basic_publish(x, key, key.encode() or b"<empty>")
    assert bodies(ch, a) == [b"k"]


def test_empty_routing_key(ch, x):
    a = q(ch)
    ch.queue_bind(a, x, routing_key="")
    ch.basic_publish(x, "", b"empty")
    ch.basic_publish(x, "x", b"x")
    assert bodies(ch, a) == [b"empty"]


def test_wildcards_are_literal(ch, x):
    a, b = q(ch), q(ch)
    ch.queue_bind(a, x, routing_key="#")
    ch.queue_bind(b, x, routing_key="a.*")
    for key in ["anything", "a.b", "#", "a.*"]:
        ch.basic_publish(x, key, key.encode())
    assert bodies(ch, a) == [b"#"]
    assert bodies(ch, b) == [b"a.*"]


def test_several_queues_same_key(ch, x):
    qs = [q(ch) for _ in range(3)]
    for name in qs:
        ch.queue_bind(name, x, routing_key="shared")
    ch.basic_publish(x, "shared", b"m")
    for name in qs:
        assert bodies(ch, name) == [b"m"]


def test_queue_with_several_keys(ch, x):
    a = q(ch)
    ch.queue_bind(a, x, routing_key="one")
    ch.queue_bind(a, x, routing_key="two")
    ch.basic_publish(x, "one", b"1")
    ch.basic_publish(x, "two", b"2")
    ch.basic_publish(x, "three", b"3")
    assert bodies(ch, a) == [b"1", b"2"]


def test_same_key_bound_twice_with_different_arguments_delivers_once(ch, x):
    a = q(ch)
    ch.queue_bind(a, x, routing_key="k")
    ch.queue_bind(a, x, routing_key="k", arguments={"foo": "bar"})
    ch.basic_publish(x, "k", b"once")
    assert bodies(ch, a) == [b"once"]
    # unbinding one of them keeps the other
    ch.queue_unbind(a, x, routing_key="k")
    ch.basic_publish(x, "k", b"still")
    assert bodies(ch, a) == [b"still"]
    ch.queue_unbind(a, x, routing_key="k", arguments={"foo": "bar"})
    ch.basic_publish(x, "k", b"gone")
    assert bodies(ch, a) == []


def test_unbind_stops_routing(ch, x):
    a = q(ch)
    ch.queue_bind(a, x, routing_key="k")
    ch.basic_publish(x, "k", b"before")
    ch.queue_unbind(a, x, routing_key="k")
    ch.basic_publish(x, "k", b"after")
    assert bodies(ch, a) == [b"before"]


def test_long_and_unicode_keys(ch, x):
    a = q(ch)
    long_key = "k" * 255
    uni = "clé.ключ.鍵"
    ch.queue_bind(a, x, routing_key=long_key)
    ch.queue_bind(a, x, routing_key=uni)
    ch.basic_publish(x, long_key, b"long")
    ch.basic_publish(x, uni, b"uni")
    msgs = []
    for _ in range(2):
        m, _p, b = ch.basic_get(a, auto_ack=True)
        msgs.append((m.routing_key, b))
    assert msgs == [(long_key, b"long"), (uni, b"uni")]


def test_delivery_carries_exchange_and_key(ch, x):
    a = q(ch)
    ch.queue_bind(a, x, routing_key="rk")
    ch.basic_publish(x, "rk", b"m", pika.BasicProperties(content_type="text/plain"))
    m, p, b = ch.basic_get(a, auto_ack=True)
    assert (m.exchange, m.routing_key, m.redelivered, p.content_type, b) == (
        x, "rk", False, "text/plain", b"m")


def test_order_is_preserved(ch, x):
    a = q(ch)
    ch.queue_bind(a, x, routing_key="k")
    for i in range(200):
        ch.basic_publish(x, "k", str(i).encode())
    assert bodies(ch, a) == [str(i).encode() for i in range(200)]
