"""Queue length limits: x-max-length, x-max-length-bytes and x-overflow (drop-head,
reject-publish, reject-publish-dlx).

Recorded against RabbitMQ 3.10.8:
- only ready messages count: unacknowledged ones do not; x-max-length-bytes counts body
  bytes only (not properties or headers); a limit is reached, not exceeded (10 bytes fit
  a 10-byte limit);
- drop-head (default) drops from the head, dead-lettering with reason `maxlen` if a DLX is
  set; requeued messages go back to the head and the queue is trimmed from the head
  again; a message bigger than x-max-length-bytes is dropped itself;
- x-max-length 0: nothing stays in the queue, but a waiting consumer still gets it;
- reject-publish: the new message is refused: nack to a confirming publisher (even when
  another queue took it), silently dropped otherwise, never dead-lettered, never
  returned (it was routed); reject-publish-dlx also dead-letters it (reason maxlen).

(The basic nack/ack confirm cases for reject-publish/drop-head are in
test_publisher_confirms.py; invalid x-max-length values in test_queue_declare.py.)
"""

import pika
import pytest

from helpers import (
    QUEUE_DECLARE,
    Arrivals,
    bodies,
    channel_closed,
    cleanup,  # noqa: F401  (fixture)
    deaths,
    message_count,
    settle,
    wait_message,
    x_death,
)


def new_queue(ch, **args):
    return ch.queue_declare("", exclusive=True, arguments=args or None).method.queue


def confirm_channel(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    return ch


def publish_outcome(ch, exchange, key, body, props=None):
    try:
        ch.basic_publish(exchange, key, body, props)
        return "ack"
    except pika.exceptions.NackError:
        return "nack"


# ---------------------------------------------------------------- drop-head


def test_drop_head_keeps_the_newest(conn):
    ch = conn.channel()
    q = new_queue(ch, **{"x-max-length": 3})
    for i in range(6):
        ch.basic_publish("", q, b"%d" % i)
    assert bodies(ch, q) == [b"3", b"4", b"5"]


def test_max_length_bytes_counts_body_bytes_only(conn):
    ch = conn.channel()
    q = new_queue(ch, **{"x-max-length-bytes": 10})
    big_headers = pika.BasicProperties(headers={"pad": "x" * 1000}, correlation_id="c" * 200)
    for b in [b"12345", b"67890", b"!"]:  # 5 + 5 fit exactly; the 11th byte drops the head
        ch.basic_publish("", q, b, big_headers)
    assert bodies(ch, q) == [b"67890", b"!"]


def test_message_bigger_than_byte_limit_is_dropped(conn):
    ch = conn.channel()
    q = new_queue(ch, **{"x-max-length-bytes": 10})
    ch.basic_publish("", q, b"small")
    ch.basic_publish("", q, b"x" * 11)
    assert bodies(ch, q) == []


def test_both_limits_whichever_is_reached_first(conn):
    ch = conn.channel()
    q = new_queue(ch, **{"x-max-length": 2, "x-max-length-bytes": 6})
    for b in [b"a", b"b", b"c"]:  # count limit
        ch.basic_publish("", q, b)
    assert bodies(ch, q) == [b"b", b"c"]
    for b in [b"1234", b"5678"]:  # byte limit
        ch.basic_publish("", q, b)
    assert bodies(ch, q) == [b"5678"]


def test_max_length_zero(conn):
    ch = conn.channel()
    q = new_queue(ch, **{"x-max-length": 0})
    confirm_channel(conn).basic_publish("", q, b"dropped")
    assert message_count(ch, q) == 0
    got = Arrivals(conn, q)
    ch.basic_publish("", q, b"taken")  # a waiting consumer still gets it
    got.wait(1)
    settle(conn, 0.1)
    assert got.bodies == [b"taken"]


def test_unacked_messages_do_not_count(conn):
    ch = conn.channel()
    q = new_queue(ch, **{"x-max-length": 2})
    ch.basic_publish("", q, b"0")
    ch.basic_publish("", q, b"1")
    held = [ch.basic_get(q, auto_ack=False)[0] for _ in range(2)]
    pub = confirm_channel(conn)
    pub.basic_publish("", q, b"2")
    pub.basic_publish("", q, b"3")
    assert message_count(ch, q) == 2
    # requeued messages go back to the head, then the queue is trimmed from the head
    for m in held:
        ch.basic_reject(m.delivery_tag, requeue=True)
    assert bodies(ch, q) == [b"2", b"3"]


def test_drop_head_dead_letters_with_reason_maxlen(conn):
    ch = conn.channel()
    dl = new_queue(ch)
    q = new_queue(ch, **{"x-max-length": 1, "x-dead-letter-exchange": "",
                         "x-dead-letter-routing-key": dl})
    ch.basic_publish("", q, b"old", pika.BasicProperties(expiration="60000"))
    ch.basic_publish("", q, b"new")
    _m, p, b = wait_message(ch, dl)
    assert b == b"old"
    assert deaths(p) == [(q, "maxlen", 1)]
    assert x_death(p)[0]["original-expiration"] == "60000"
    assert p.headers["x-first-death-reason"] == "maxlen"
    assert bodies(ch, q) == [b"new"]


# ---------------------------------------------------------------- reject-publish


def test_reject_publish_without_confirms_drops_silently(conn):
    ch = conn.channel()
    q = new_queue(ch, **{"x-max-length": 2, "x-overflow": "reject-publish"})
    for i in range(4):
        ch.basic_publish("", q, b"%d" % i)
    assert bodies(ch, q) == [b"0", b"1"]
    assert ch.is_open


def test_reject_publish_by_bytes(conn):
    ch = conn.channel()
    q = new_queue(ch, **{"x-max-length-bytes": 10, "x-overflow": "reject-publish"})
    pub = confirm_channel(conn)
    assert publish_outcome(pub, "", q, b"x" * 10) == "ack"
    assert publish_outcome(pub, "", q, b"y") == "nack"
    assert bodies(ch, q) == [b"x" * 10]


def test_reject_publish_accepts_again_once_there_is_room(conn):
    ch = conn.channel()
    q = new_queue(ch, **{"x-max-length": 1, "x-overflow": "reject-publish"})
    pub = confirm_channel(conn)
    assert [publish_outcome(pub, "", q, b) for b in [b"a", b"b"]] == ["ack", "nack"]
    assert ch.basic_get(q, auto_ack=True)[2] == b"a"
    assert [publish_outcome(pub, "", q, b) for b in [b"c", b"d"]] == ["ack", "nack"]
    assert bodies(ch, q) == [b"c"]


def test_reject_publish_nacks_even_if_another_queue_took_it(conn, uniq, cleanup):
    ch = conn.channel()
    x = cleanup.exchange(uniq("fan"))
    ch.exchange_declare(x, "fanout")
    full = new_queue(ch, **{"x-max-length": 1, "x-overflow": "reject-publish"})
    other = new_queue(ch)
    ch.queue_bind(full, x)
    ch.queue_bind(other, x)
    pub = confirm_channel(conn)
    assert publish_outcome(pub, x, "", b"1") == "ack"
    assert publish_outcome(pub, x, "", b"2") == "nack"
    assert bodies(ch, full) == [b"1"]
    assert bodies(ch, other) == [b"1", b"2"]


def test_reject_publish_is_not_returned_to_mandatory_publisher(conn):
    ch = conn.channel()
    q = new_queue(ch, **{"x-max-length": 1, "x-overflow": "reject-publish"})
    returned = []
    ch.add_on_return_callback(lambda *a: returned.append(a))
    ch.basic_publish("", q, b"1", mandatory=True)
    ch.basic_publish("", q, b"2", mandatory=True)
    settle(conn, 0.2)
    assert returned == []
    assert bodies(ch, q) == [b"1"]


def test_reject_publish_does_not_dead_letter(conn):
    ch = conn.channel()
    dl = new_queue(ch)
    q = new_queue(ch, **{"x-max-length": 1, "x-overflow": "reject-publish",
                         "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dl})
    pub = confirm_channel(conn)
    assert [publish_outcome(pub, "", q, b) for b in [b"1", b"2"]] == ["ack", "nack"]
    settle(conn, 0.1)
    assert message_count(ch, dl) == 0


def test_reject_publish_dlx_nacks_and_dead_letters_with_maxlen(conn):
    ch = conn.channel()
    dl = new_queue(ch)
    q = new_queue(ch, **{"x-max-length": 1, "x-overflow": "reject-publish-dlx",
                         "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dl})
    pub = confirm_channel(conn)
    assert publish_outcome(pub, "", q, b"kept") == "ack"
    assert publish_outcome(pub, "", q, b"refused",
                           pika.BasicProperties(expiration="5000")) == "nack"
    _m, p, b = wait_message(ch, dl)
    assert b == b"refused"
    assert deaths(p) == [(q, "maxlen", 1)]
    assert x_death(p)[0]["original-expiration"] == "5000"
    assert p.expiration is None
    assert bodies(ch, q) == [b"kept"]


def test_reject_publish_dlx_without_confirms(conn):
    ch = conn.channel()
    dl = new_queue(ch)
    q = new_queue(ch, **{"x-max-length": 1, "x-overflow": "reject-publish-dlx",
                         "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dl})
    for b in [b"1", b"2", b"3"]:
        ch.basic_publish("", q, b)
    got = [wait_message(ch, dl)[2] for _ in range(2)]
    assert got == [b"2", b"3"]
    assert bodies(ch, q) == [b"1"]


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize("args,detail", [
    ({"x-overflow": "foo"}, "invalid_overflow"),
    ({"x-overflow": 5}, "{unacceptable_type,signedint}"),
    ({"x-max-length-bytes": -1}, "{value_negative,-1}"),
    ({"x-max-length-bytes": "10"}, '"expected integer, got longstr"'),
], ids=["overflow-value", "overflow-type", "bytes-negative", "bytes-string"])
def test_invalid_arguments(conn, uniq, args, detail):
    name = uniq("q")
    ch = conn.channel()
    arg = next(iter(args))
    with channel_closed(406, f"PRECONDITION_FAILED - invalid arg '{arg}' for queue '{name}'"
                             f" in vhost '/': {detail}", QUEUE_DECLARE):
        ch.queue_declare(name, arguments=args)
    assert conn.is_open


@pytest.mark.parametrize("overflow", ["drop-head", "reject-publish", "reject-publish-dlx"])
def test_overflow_values_accepted(conn, overflow):
    ch = conn.channel()
    q = new_queue(ch, **{"x-max-length": 1, "x-overflow": overflow})
    assert ch.queue_declare(q, passive=True).method.queue == q
