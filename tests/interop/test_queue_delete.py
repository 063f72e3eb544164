"""queue.delete: counts, if-unused, if-empty, consumer cancellation."""

from pika import spec

from helpers import (
    QUEUE_DELETE,
    bodies,
    channel_closed,
    cleanup,  # noqa: F401  (fixture)
    publish_confirmed,
    queue_exists,
    wait_until,
)


def in_use(name):
    return f"PRECONDITION_FAILED - queue '{name}' in vhost '/' in use"


def not_empty(name):
    return f"PRECONDITION_FAILED - queue '{name}' in vhost '/' not empty"


def test_delete_returns_message_count(broker, conn, uniq):
    ch = conn.channel()
    name = uniq("q")
    ch.queue_declare(name)
    publish_confirmed(conn, "", name, [b"1", b"2", b"3"])
    ok = ch.queue_delete(name)
    assert isinstance(ok.method, spec.Queue.DeleteOk)
    assert ok.method.message_count == 3
    assert not queue_exists(broker, name)


def test_delete_after_publish_on_same_channel(ch):
    name = ch.queue_declare("", exclusive=True).method.queue
    for _ in range(4):
        ch.basic_publish("", name, b"m")
    assert ch.queue_delete(name).method.message_count == 4


def test_delete_count_excludes_unacked(conn, uniq):
    ch = conn.channel()
    name = ch.queue_declare("", exclusive=True).method.queue
    for b in [b"1", b"2", b"3"]:
        ch.basic_publish("", name, b)
    m, _p, _b = ch.basic_get(name, auto_ack=False)
    assert m is not None
    assert ch.queue_delete(name).method.message_count == 2


def test_delete_missing_queue_ok(ch, uniq):
    ok = ch.queue_delete(uniq("never"))
    assert isinstance(ok.method, spec.Queue.DeleteOk)
    assert ok.method.message_count == 0
    ok = ch.queue_delete(uniq("never2"), if_unused=True, if_empty=True)
    assert ok.method.message_count == 0


def test_delete_removes_bindings_and_messages(broker, ch, uniq, cleanup):
    x = cleanup.exchange(uniq("x"))
    ch.exchange_declare(x, "fanout")
    name = uniq("q")
    ch.queue_declare(name)
    ch.queue_bind(name, x)
    ch.basic_publish(x, "", b"old")
    ch.queue_delete(name)
    ch.queue_declare(name, exclusive=True)
    ch.basic_publish(x, "", b"lost")
    assert bodies(ch, name) == []


def test_if_unused_with_consumer(broker, conn, uniq, cleanup):
    name = cleanup.queue(uniq("q"))
    ch = conn.channel()
    ch.queue_declare(name)
    tag = ch.basic_consume(name, lambda *a: None)
    ch2 = conn.channel()
    with channel_closed(406, in_use(name), QUEUE_DELETE):
        ch2.queue_delete(name, if_unused=True)
    assert queue_exists(broker, name)
    ch.basic_cancel(tag)
    assert conn.channel().queue_delete(name, if_unused=True).method.message_count == 0
    assert not queue_exists(broker, name)


def test_if_unused_ignores_messages(conn, uniq):
    ch = conn.channel()
    name = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", name, b"m")
    assert ch.queue_delete(name, if_unused=True).method.message_count == 1


def test_if_empty_with_messages(broker, conn, uniq, cleanup):
    name = cleanup.queue(uniq("q"))
    ch = conn.channel()
    ch.queue_declare(name)
    ch.basic_publish("", name, b"m")
    ch2 = conn.channel()
    with channel_closed(406, not_empty(name), QUEUE_DELETE):
        ch2.queue_delete(name, if_empty=True)
    assert bodies(conn.channel(), name) == [b"m"]
    assert conn.channel().queue_delete(name, if_empty=True).method.message_count == 0


def test_if_empty_ignores_consumers(conn, uniq):
    ch = conn.channel()
    name = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_consume(name, lambda *a: None)
    cancelled = []
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    assert ch.queue_delete(name, if_empty=True).method.message_count == 0
    wait_until(conn, lambda: cancelled, what="basic.cancel")


def test_if_empty_counts_only_ready_messages(broker, conn, uniq):
    # a queue whose only messages are unacked is "empty"
    ch = conn.channel()
    name = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", name, b"m")
    m, _p, _b = ch.basic_get(name, auto_ack=False)
    assert m is not None
    assert ch.queue_delete(name, if_empty=True).method.message_count == 0


def test_if_empty_checked_before_if_unused(conn, uniq, cleanup):
    name = cleanup.queue(uniq("q"))
    ch = conn.channel()
    ch.queue_declare(name)
    ch.basic_publish("", name, b"m")
    ch.basic_qos(prefetch_count=1)
    ch.basic_publish("", name, b"m2")
    ch.basic_consume(name, lambda *a: None)
    with channel_closed(406, not_empty(name), QUEUE_DELETE):
        conn.channel().queue_delete(name, if_unused=True, if_empty=True)


def test_consumers_get_basic_cancel(broker, conn, uniq):
    name = uniq("q")
    ch = conn.channel()
    ch.queue_declare(name)
    cancelled = []
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    t1 = ch.basic_consume(name, lambda *a: None)
    t2 = ch.basic_consume(name, lambda *a: None)
    other = broker.connect()
    try:
        och = other.channel()
        ocancelled = []
        och.add_on_cancel_callback(lambda frame: ocancelled.append(frame.method.consumer_tag))
        t3 = och.basic_consume(name, lambda *a: None)
        ok = conn.channel().queue_delete(name)
        assert ok.method.message_count == 0
        wait_until(conn, lambda: len(cancelled) == 2, what="basic.cancel on this connection")
        wait_until(other, lambda: len(ocancelled) == 1, what="basic.cancel on the other connection")
        assert sorted(cancelled) == sorted([t1, t2])
        assert ocancelled == [t3]
        assert ch.consumer_tags == [] and och.consumer_tags == []
        # channels stay open
        assert ch.is_open and och.is_open
        ch.queue_declare("", exclusive=True)
    finally:
        other.close()


def test_delete_with_unacked_messages_then_ack_is_harmless(conn):
    # acking a message of a deleted queue is silently accepted
    ch = conn.channel()
    name = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", name, b"m")
    m, _p, _b = ch.basic_get(name, auto_ack=False)
    ch.queue_delete(name)
    ch.basic_ack(m.delivery_tag)
    # the channel is still fine
    q2 = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q2, b"after")
    assert bodies(ch, q2) == [b"after"]


def test_delete_owned_exclusive_queue(broker, uniq):
    c = broker.connect()
    try:
        ch = c.channel()
        name = uniq("excl")
        ch.queue_declare(name, exclusive=True)
        ch.basic_publish("", name, b"m")
        assert ch.queue_delete(name).method.message_count == 1
        assert not queue_exists(broker, name)
    finally:
        c.close()
