"""Routing through fanout exchanges."""

import pytest

from helpers import bodies, cleanup  # noqa: F401


@pytest.fixture
def x(ch, uniq, cleanup):
    name = cleanup.exchange(uniq("fanout"))
    ch.exchange_declare(name, "fanout")
    return name


def q(ch):
    return ch.queue_declare("", exclusive=True).method.queue


def test_every_bound_queue_gets_a_copy(ch, x):
    qs = [q(ch) for _ in range(5)]
    for name in qs:
        ch.queue_bind(name, x)
    ch.basic_publish(x, "ignored", b"m")
    for name in qs:
        assert bodies(ch, name) == [b"m"]


def test_routing_and_binding_keys_are_ignored(ch, x):
    a, b = q(ch), q(ch)
    ch.queue_bind(a, x, routing_key="alpha")
    ch.queue_bind(b, x, routing_key="")
    for key in ["", "alpha", "beta", "#"]:
        ch.basic_publish(x, key, key.encode())
    expected = [b"", b"alpha", b"beta", b"#"]
    assert bodies(ch, a) == expected
    assert bodies(ch, b) == expected


def test_queue_bound_several_times_gets_one_copy(ch, x):
    a = q(ch)
    ch.queue_bind(a, x, routing_key="one")
    ch.queue_bind(a, x, routing_key="two")
    ch.queue_bind(a, x, routing_key="")
    ch.basic_publish(x, "", b"once")
    assert bodies(ch, a) == [b"once"]


def test_unbind_must_name_the_binding_key(ch, x):
    a = q(ch)
    ch.queue_bind(a, x, routing_key="bk")
    # a different key names a binding that does not exist: unbind-ok, nothing removed
    ch.queue_unbind(a, x, routing_key="other")
    ch.basic_publish(x, "", b"still-bound")
    ch.queue_unbind(a, x, routing_key="bk")
    ch.basic_publish(x, "", b"unbound")
    assert bodies(ch, a) == [b"still-bound"]


def test_no_bindings_drops_message(ch, x):
    a = q(ch)
    ch.basic_publish(x, "", b"dropped")
    ch.queue_bind(a, x)
    ch.basic_publish(x, "", b"kept")
    assert bodies(ch, a) == [b"kept"]


def test_delivery_keeps_published_routing_key(ch, x):
    a = q(ch)
    ch.queue_bind(a, x, routing_key="binding-key")
    ch.basic_publish(x, "publish-key", b"m")
    m, _p, _b = ch.basic_get(a, auto_ack=True)
    assert (m.exchange, m.routing_key) == (x, "publish-key")
