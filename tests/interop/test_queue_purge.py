"""queue.purge."""

from pika import spec

from helpers import (
    QUEUE_PURGE,
    bodies,
    channel_closed,
    cleanup,  # noqa: F401  (fixture)
    not_found_queue,
    publish_confirmed,
    wait_until,
)


def test_purge_returns_count_and_empties(conn, ch, uniq, cleanup):
    name = cleanup.queue(uniq("q"))
    ch.queue_declare(name)
    publish_confirmed(conn, "", name, [b"%d" % i for i in range(7)])
    ok = ch.queue_purge(name)
    assert isinstance(ok.method, spec.Queue.PurgeOk)
    assert ok.method.message_count == 7
    assert ch.basic_get(name)[0] is None
    assert ch.queue_purge(name).method.message_count == 0


def test_purge_after_publish_on_same_channel(ch):
    # publish and purge on one channel are ordered: the purge sees the messages
    name = ch.queue_declare("", exclusive=True).method.queue
    for i in range(5):
        ch.basic_publish("", name, b"m")
    assert ch.queue_purge(name).method.message_count == 5


def test_purge_empty_queue(ch):
    name = ch.queue_declare("", exclusive=True).method.queue
    assert ch.queue_purge(name).method.message_count == 0


def test_purge_missing_queue(conn, uniq):
    ch = conn.channel()
    name = uniq("missing")
    with channel_closed(404, not_found_queue(name), QUEUE_PURGE):
        ch.queue_purge(name)
    assert conn.is_open


def test_unacked_messages_are_not_purged(conn, uniq, cleanup):
    name = cleanup.queue(uniq("q"))
    ch = conn.channel()
    ch.queue_declare(name)
    publish_confirmed(conn, "", name, [b"1", b"2", b"3", b"4", b"5"])
    cch = conn.channel()
    cch.basic_qos(prefetch_count=2)
    got = []
    tag = cch.basic_consume(name, lambda c, m, p, b: got.append((m.delivery_tag, b)))
    wait_until(conn, lambda: len(got) == 2, what="2 deliveries")
    cch.basic_cancel(tag)
    assert [b for _, b in got] == [b"1", b"2"]
    # only the 3 ready messages are purged
    assert ch.queue_purge(name).method.message_count == 3
    assert ch.basic_get(name)[0] is None
    # the unacked ones come back when their channel closes, flagged redelivered
    cch.close()
    back = []
    while len(back) < 2:
        m, _p, b = ch.basic_get(name, auto_ack=True)
        if m is None:
            conn.process_data_events(time_limit=0.02)
            continue
        back.append((b, m.redelivered))
    assert back == [(b"1", True), (b"2", True)]
    assert ch.basic_get(name)[0] is None


def test_unacked_messages_come_back_on_nack_after_purge(conn, uniq):
    ch = conn.channel()
    name = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", name, b"held")
    ch.basic_publish("", name, b"ready")
    m, _p, b = ch.basic_get(name, auto_ack=False)
    assert b == b"held"
    assert ch.queue_purge(name).method.message_count == 1
    ch.basic_nack(m.delivery_tag, requeue=True)
    m2, _p, b2 = ch.basic_get(name, auto_ack=True)
    assert (b2, m2.redelivered) == (b"held", True)


def test_purge_leaves_other_queues_alone(ch):
    a = ch.queue_declare("", exclusive=True).method.queue
    b = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", a, b"a")
    ch.basic_publish("", b, b"b")
    assert ch.queue_purge(a).method.message_count == 1
    assert bodies(ch, b) == [b"b"]


def test_purge_keeps_consumers_and_bindings(conn, uniq, cleanup):
    ch = conn.channel()
    x = cleanup.exchange(uniq("x"))
    ch.exchange_declare(x, "fanout")
    name = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(name, x)
    ch.basic_publish(x, "", b"old")
    ch.queue_purge(name)
    ch.basic_publish(x, "", b"new")
    assert bodies(ch, name) == [b"new"]
