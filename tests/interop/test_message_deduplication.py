"""Message deduplication with the queue interface of the rabbitmq-message-deduplication
plugin (Warren only: the reference has no such plugin).

The interface:
- queue argument x-message-deduplication = true; publish header x-deduplication-header:
  a message whose header value is already in the queue's cache is not enqueued (a
  confirming publisher still gets an ack: the message was handled); messages without
  the header are never deduplicated;
- the cache holds the headers of the messages in the queue (as the plugin does: an entry
  stays while its message is ready or unacknowledged, and leaves when the message is
  acknowledged, consumed without ack, dropped or purged);
- x-cache-size bounds the cache (the oldest entry is evicted first); x-cache-ttl (ms)
  expires entries.
"""

import time

import pika
import pytest

from helpers import (
    bodies,
    message_count,
)

DEDUP = {"x-message-deduplication": True}


@pytest.fixture(autouse=True)
def warren_only(broker):
    if broker.is_reference:
        pytest.skip("the reference has no rabbitmq-message-deduplication plugin")


def new_queue(ch, **args):
    return ch.queue_declare("", exclusive=True, arguments={**DEDUP, **args}).method.queue


def confirming(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    return ch


def publish(ch, q, body, key=None, **props):
    headers = dict(props.pop("headers", {}) or {})
    if key is not None:
        headers["x-deduplication-header"] = key
    ch.basic_publish("", q, body, pika.BasicProperties(headers=headers, **props))


def test_duplicate_dropped_while_original_is_in_the_queue(conn):
    ch = confirming(conn)
    q = new_queue(ch)
    publish(ch, q, b"first", "k1")
    publish(ch, q, b"dup", "k1")  # confirmed: no NackError
    publish(ch, q, b"other", "k2")
    assert bodies(ch, q) == [b"first", b"other"]


def test_messages_without_the_header_are_never_deduplicated(conn):
    ch = confirming(conn)
    q = new_queue(ch)
    for _ in range(3):
        publish(ch, q, b"same")
    assert message_count(ch, q) == 3


def test_header_values_of_other_types(conn):
    ch = confirming(conn)
    q = new_queue(ch)
    for body, key in [(b"a", 1), (b"b", 1), (b"c", "1"), (b"d", 2)]:
        publish(ch, q, body, key)
    got = bodies(ch, q)
    assert got[0] == b"a" and b"b" not in got and b"d" in got


def test_queue_without_the_argument_keeps_duplicates(conn):
    ch = confirming(conn)
    for args in ({}, {"x-message-deduplication": False}):
        q = ch.queue_declare("", exclusive=True, arguments=args or None).method.queue
        publish(ch, q, b"1", "k")
        publish(ch, q, b"2", "k")
        assert bodies(ch, q) == [b"1", b"2"]


def test_entry_kept_while_unacked_and_freed_by_ack(conn):
    ch = confirming(conn)
    q = new_queue(ch)
    publish(ch, q, b"first", "k")
    m, _p, _b = ch.basic_get(q, auto_ack=False)
    publish(ch, q, b"dup-while-unacked", "k")
    assert message_count(ch, q) == 0
    ch.basic_reject(m.delivery_tag, requeue=True)  # back in the queue: still cached
    publish(ch, q, b"dup-after-requeue", "k")
    m, _p, b = ch.basic_get(q, auto_ack=False)
    assert b == b"first"
    ch.basic_ack(m.delivery_tag)  # gone: the key is free again
    publish(ch, q, b"again", "k")
    assert bodies(ch, q) == [b"again"]


def test_entry_freed_by_no_ack_delivery_and_purge(conn):
    ch = confirming(conn)
    q = new_queue(ch)
    publish(ch, q, b"1", "k")
    assert ch.basic_get(q, auto_ack=True)[2] == b"1"
    publish(ch, q, b"2", "k")
    assert ch.queue_purge(q).method.message_count == 1
    publish(ch, q, b"3", "k")
    assert bodies(ch, q) == [b"3"]


def test_cache_size_evicts_the_oldest(conn):
    ch = confirming(conn)
    q = new_queue(ch, **{"x-cache-size": 2})
    for key in ["k1", "k2", "k3"]:  # k1 is evicted by k3
        publish(ch, q, key.encode(), key)
    publish(ch, q, b"k1-again", "k1")   # accepted: no longer cached (evicts k2)
    publish(ch, q, b"k3-dup", "k3")     # dropped: still cached
    assert bodies(ch, q) == [b"k1", b"k2", b"k3", b"k1-again"]


def test_cache_ttl_expires_entries(conn):
    ch = confirming(conn)
    q = new_queue(ch, **{"x-cache-ttl": 300})
    t0 = time.monotonic()
    publish(ch, q, b"first", "k")
    publish(ch, q, b"dup", "k")
    assert time.monotonic() - t0 < 0.25, "too slow to test within the TTL"
    time.sleep(0.45)  # time is the subject
    publish(ch, q, b"after-ttl", "k")
    assert bodies(ch, q) == [b"first", b"after-ttl"]


def test_duplicates_are_not_dead_lettered_or_returned(conn):
    ch = confirming(conn)
    dl = ch.queue_declare("", exclusive=True).method.queue
    q = new_queue(ch, **{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dl})
    ch.basic_publish("", q, b"1", pika.BasicProperties(
        headers={"x-deduplication-header": "k"}), mandatory=True)
    ch.basic_publish("", q, b"2", pika.BasicProperties(
        headers={"x-deduplication-header": "k"}), mandatory=True)  # no UnroutableError
    assert bodies(ch, q) == [b"1"]
    assert message_count(ch, dl) == 0


def test_deduplication_is_per_queue(conn, uniq):
    ch = confirming(conn)
    x = uniq("fan")
    ch.exchange_declare(x, "fanout", auto_delete=True)
    q1, q2 = new_queue(ch), new_queue(ch)
    ch.queue_bind(q1, x)
    ch.queue_bind(q2, x)
    publish(ch, q1, b"direct-to-q1", "k")
    ch.basic_publish(x, "", b"fanned", pika.BasicProperties(
        headers={"x-deduplication-header": "k"}))
    assert bodies(ch, q1) == [b"direct-to-q1"]
    assert bodies(ch, q2) == [b"fanned"]
