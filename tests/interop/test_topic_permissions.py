"""Topic permissions: per (user, vhost, exchange) write / read regexes on routing keys,
checked for topic exchanges only.

The world: user `tu` has full permissions on vhost V and topic permissions:
  exchange T:  write ^a\\.  read ^b\\.
  exchange T2: write ^{username}\\.  read ^{vhost}\\.   (variables expanded)
  exchange D (a direct exchange): write ^a\\.  read ^b\\.  (ignored: not a topic exchange)
Exchange T3 (topic) has no topic permission entry: everything is allowed.

Recorded against RabbitMQ 3.10.8:
- basic.publish to a topic exchange: the routing key must match the write regex, else
  403 ACCESS_REFUSED - access to topic '<key>' in exchange '<x>' in vhost '<V>' refused
  for user '<u>' (basic.publish, a channel error); CC/BCC keys are not checked;
- queue.bind / queue.unbind / exchange.bind / exchange.unbind with a topic exchange as
  source: the binding key must match the read regex (same text);
- {username} and {vhost} in the regexes are expanded.
"""

import pika
import pytest

from helpers import (
    BASIC_PUBLISH,
    EXCHANGE_BIND,
    QUEUE_BIND,
    QUEUE_UNBIND,
    AccessWorld,
    channel_closed,
    unique_tag,
    wait_channel_closed,
)


@pytest.fixture(scope="module")
def world(broker):
    tag = unique_tag()
    v, u = f"topic-{tag}", f"tu-{tag}"
    names = {"T": f"T-{tag}", "T2": f"T2-{tag}", "T3": f"T3-{tag}", "D": f"D-{tag}",
             "DST": f"DST-{tag}"}
    with AccessWorld(
        broker,
        users={u: ("tu-password", [])},
        vhosts=[v],
        permissions=[(u, v, ".*", ".*", ".*")],
        topic_permissions=[(u, v, names["T"], r"^a\.", r"^b\."),
                           (u, v, names["T2"], r"^{username}\.", r"^{vhost}\."),
                           (u, v, names["D"], r"^a\.", r"^b\.")],
    ) as w:
        admin = w.connect("guest", v)
        ch = admin.channel()
        for key in ("T", "T2", "T3"):
            ch.exchange_declare(names[key], "topic")
        ch.exchange_declare(names["D"], "direct")
        ch.exchange_declare(names["DST"], "fanout")
        admin.close()
        w.v, w.u, w.x = v, u, names
        yield w


@pytest.fixture
def tconn(world):
    c = world.connect(world.u, world.v)
    yield c
    if c.is_open:
        c.close()


@pytest.fixture
def q(tconn):
    return tconn.channel().queue_declare("", exclusive=True).method.queue


def topic_refused(world, key, exchange):
    return (f"ACCESS_REFUSED - access to topic '{key}' in exchange '{exchange}' in vhost "
            f"'{world.v}' refused for user '{world.u}'")


def publish_ok(tconn, exchange, key, **props):
    ch = tconn.channel()
    ch.confirm_delivery()
    ch.basic_publish(exchange, key, b"m", pika.BasicProperties(**props) if props else None)
    assert ch.is_open


def publish_refused(world, tconn, exchange, key):
    ch = tconn.channel()
    ch.basic_publish(exchange, key, b"m")
    wait_channel_closed(tconn, ch, 403, topic_refused(world, key, exchange), BASIC_PUBLISH)
    assert tconn.is_open


@pytest.mark.parametrize("key", ["a.x", "a.b.c", "a."])
def test_publish_with_writable_key(world, tconn, key):
    publish_ok(tconn, world.x["T"], key)


@pytest.mark.parametrize("key", ["b.x", "", "xa.x", "a"])
def test_publish_with_other_key_refused(world, tconn, key):
    publish_refused(world, tconn, world.x["T"], key)


def test_published_message_is_routed(world, tconn, q):
    ch = tconn.channel()
    ch.queue_bind(q, world.x["T"], "b.#")
    ch.queue_bind(q, world.x["T3"], "#")
    ch.exchange_bind(world.x["DST"], world.x["T"], "b.#")
    publish_ok(tconn, world.x["T3"], "anything")
    assert ch.basic_get(q, auto_ack=True)[2] == b"m"


def test_cc_keys_are_not_checked(world, tconn):
    publish_ok(tconn, world.x["T"], "a.x", headers={"CC": ["b.x"], "BCC": ["zzz"]})


@pytest.mark.parametrize("key", ["b.#", "b.x"])
def test_bind_with_readable_key(world, tconn, q, key):
    ch = tconn.channel()
    ch.queue_bind(q, world.x["T"], key)
    ch.queue_unbind(q, world.x["T"], key)
    ch.exchange_bind(world.x["DST"], world.x["T"], key)
    ch.exchange_unbind(world.x["DST"], world.x["T"], key)


@pytest.mark.parametrize("key", ["a.#", "#", "xb.y"])
def test_queue_bind_with_other_key_refused(world, tconn, q, key):
    with channel_closed(403, topic_refused(world, key, world.x["T"]), QUEUE_BIND):
        tconn.channel().queue_bind(q, world.x["T"], key)
    assert tconn.is_open


def test_queue_unbind_checked_too(world, tconn, q):
    with channel_closed(403, topic_refused(world, "a.#", world.x["T"]), QUEUE_UNBIND):
        tconn.channel().queue_unbind(q, world.x["T"], "a.#")


def test_exchange_bind_from_topic_exchange_checked(world, tconn):
    with channel_closed(403, topic_refused(world, "a.#", world.x["T"]), EXCHANGE_BIND):
        tconn.channel().exchange_bind(world.x["DST"], world.x["T"], "a.#")


def test_variables_are_expanded(world, tconn, q):
    t2 = world.x["T2"]
    publish_ok(tconn, t2, f"{world.u}.news")
    publish_refused(world, tconn, t2, "someone-else.news")
    ch = tconn.channel()
    ch.queue_bind(q, t2, f"{world.v}.#")
    with channel_closed(403, topic_refused(world, f"{world.u}.#", t2), QUEUE_BIND):
        tconn.channel().queue_bind(q, t2, f"{world.u}.#")


def test_non_topic_exchanges_are_not_checked(world, tconn, q):
    publish_ok(tconn, world.x["D"], "zzz")
    tconn.channel().queue_bind(q, world.x["D"], "zzz")


def test_topic_exchange_without_entry_allows_everything(world, tconn, q):
    publish_ok(tconn, world.x["T3"], "zzz")
    tconn.channel().queue_bind(q, world.x["T3"], "zzz.#")


def test_other_users_are_not_restricted(world):
    c = world.connect("guest", world.v)
    try:
        publish_ok(c, world.x["T"], "zzz")
    finally:
        c.close()
