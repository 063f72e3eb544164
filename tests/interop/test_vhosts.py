"""Virtual hosts isolate every object: queues, exchanges (including the predeclared ones
and the default exchange), bindings, and access.

The world: vhosts V1 and V2; user `both` has full permissions on V1 and V2, user `one` on
V1 only, user `none` on neither.

Recorded against RabbitMQ 3.10.8:
- objects with the same name in two vhosts are distinct; NOT_FOUND texts name the vhost;
- connection.open to a vhost the user has no permissions on: 530 NOT_ALLOWED - access to
  vhost '<v>' refused for user '<u>' (connection.open); to an unknown vhost: 530
  NOT_ALLOWED - vhost <v> not found (also in test_connection_handshake.py).
"""

import pika
import pytest

from helpers import (
    QUEUE_DECLARE,
    AccessWorld,
    channel_closed,
    not_found_exchange,
    not_found_queue,
    settle,
    unique_tag,
)


@pytest.fixture(scope="module")
def world(broker):
    tag = unique_tag()
    v1, v2 = f"v1-{tag}", f"v2-{tag}"
    both, one, none = f"both-{tag}", f"one-{tag}", f"none-{tag}"
    with AccessWorld(
        broker,
        users={both: ("pw-both", []), one: ("pw-one", []), none: ("pw-none", [])},
        vhosts=[v1, v2],
        permissions=[(both, v1, ".*", ".*", ".*"), (both, v2, ".*", ".*", ".*"),
                     (one, v1, ".*", ".*", ".*")],
    ) as w:
        w.v1, w.v2, w.both, w.one, w.none, w.tag = v1, v2, both, one, none, tag
        yield w


@pytest.fixture
def conns(world):
    opened = []

    def make(vhost, user=None):
        c = world.connect(user or world.both, vhost)
        opened.append(c)
        return c

    yield make
    for c in opened:
        if c.is_open:
            c.close()


def test_same_queue_name_in_two_vhosts(world, conns, uniq):
    q = uniq("q")
    c1, c2 = conns(world.v1), conns(world.v2)
    ch1, ch2 = c1.channel(), c2.channel()
    ch1.queue_declare(q, exclusive=True, arguments={"x-max-length": 5})
    ch2.queue_declare(q, exclusive=True)  # different arguments: not the same queue
    ch1.confirm_delivery()
    ch2.confirm_delivery()
    ch1.basic_publish("", q, b"in-v1")
    ch2.basic_publish("", q, b"in-v2")
    assert ch1.basic_get(q, auto_ack=True)[2] == b"in-v1"
    assert ch2.basic_get(q, auto_ack=True)[2] == b"in-v2"
    assert ch1.basic_get(q)[0] is None


def test_exclusive_queue_in_another_vhost_is_another_queue(world, conns, uniq):
    q = uniq("q")
    conns(world.v1).channel().queue_declare(q, exclusive=True)
    conns(world.v2).channel().queue_declare(q, exclusive=True)  # not locked


def test_not_found_texts_name_the_vhost(world, conns, uniq):
    q = uniq("q")
    c1, c2 = conns(world.v1), conns(world.v2)
    c1.channel().queue_declare(q, exclusive=True)
    with channel_closed(404, not_found_queue(q, world.v2), QUEUE_DECLARE):
        c2.channel().queue_declare(q, passive=True)
    x = uniq("x")
    c1.channel().exchange_declare(x, "fanout", auto_delete=True)
    with channel_closed(404, not_found_exchange(x, world.v2)):
        c2.channel().exchange_declare(x, passive=True)


def test_bindings_and_routing_stay_in_their_vhost(world, conns, uniq):
    x = uniq("x")
    c1, c2 = conns(world.v1), conns(world.v2)
    ch1, ch2 = c1.channel(), c2.channel()
    q1 = ch1.queue_declare("", exclusive=True).method.queue
    q2 = ch2.queue_declare("", exclusive=True).method.queue
    for ch, q in ((ch1, q1), (ch2, q2)):
        ch.exchange_declare(x, "direct", auto_delete=True)
        ch.queue_bind(q, x, "k")
    ch1.confirm_delivery()
    ch1.basic_publish(x, "k", b"v1")
    assert ch1.basic_get(q1, auto_ack=True)[2] == b"v1"
    settle(c2, 0.1)
    assert ch2.basic_get(q2)[0] is None


@pytest.mark.parametrize("name", ["amq.direct", "amq.fanout", "amq.topic", "amq.headers",
                                  "amq.match"])
def test_predeclared_exchanges_in_every_vhost(world, conns, name):
    conns(world.v1).channel().exchange_declare(name, passive=True)


def test_default_exchange_routes_within_the_vhost(world, conns, uniq):
    q = uniq("q")
    c1, c2 = conns(world.v1), conns(world.v2)
    c2.channel().queue_declare(q, exclusive=True)
    ch1 = c1.channel()
    returned = []
    ch1.add_on_return_callback(lambda c, m, p, b: returned.append((m.reply_code, m.routing_key)))
    ch1.basic_publish("", q, b"m", mandatory=True)  # no such queue in V1
    settle(c1, 0.2)
    assert returned == [(312, q)]
    assert c2.channel().basic_get(q)[0] is None


def test_user_without_permissions_on_vhost_is_refused(world):
    for user, vhost in [(world.one, world.v2), (world.none, world.v1)]:
        with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as e:
            world.connect(user, vhost)
        assert (f"(530) \"NOT_ALLOWED - access to vhost '{vhost}' refused for user "
                f"'{user}'\"") in str(e.value), str(e.value)


def test_user_with_permissions_on_one_vhost_only(world, conns):
    conns(world.v1, world.one).channel()


def test_permissions_on_default_vhost_not_implied(world):
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as e:
        world.connect(world.both, "/")
    assert f"NOT_ALLOWED - access to vhost '/' refused for user '{world.both}'" in str(e.value)
