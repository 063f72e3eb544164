"""basic.ack / basic.nack / basic.reject / basic.recover and redelivery."""

import pika
import pytest
from pika import spec

from helpers import (
    BASIC_ACK,
    BASIC_NACK,
    BASIC_RECOVER,
    BASIC_REJECT,
    RawClient,
    eventually,
    settle,
    wait_channel_closed,
    wait_until,
)

RECOVER_ASYNC = (60, 100)


def unknown_tag(n):
    return f"PRECONDITION_FAILED - unknown delivery tag {n}"


def setup_queue(ch, n):
    q = ch.queue_declare("", exclusive=True).method.queue
    for i in range(n):
        ch.basic_publish("", q, b"%d" % i)
    return q


def get(ch, q, no_ack=False):
    m, _p, b = ch.basic_get(q, auto_ack=no_ack)
    return None if m is None else (m.delivery_tag, b, m.redelivered)


def drain(ch, q):
    out = []
    while True:
        r = get(ch, q, no_ack=True)
        if r is None:
            return out
        out.append((r[1], r[2]))


# ---------------------------------------------------------------- ack


def test_ack_removes_message(ch):
    q = setup_queue(ch, 2)
    tag, body, red = get(ch, q)
    assert (tag, body, red) == (1, b"0", False)
    ch.basic_ack(tag)
    assert drain(ch, q) == [(b"1", False)]


def test_multiple_ack(ch):
    q = setup_queue(ch, 5)
    tags = [get(ch, q)[0] for _ in range(4)]
    assert tags == [1, 2, 3, 4]
    ch.basic_ack(3, multiple=True)  # 1..3
    # 4 is still unacked: reject it back
    ch.basic_reject(4, requeue=True)
    assert drain(ch, q) == [(b"3", True), (b"4", False)]


def test_multiple_ack_with_tag_zero_acks_everything(ch):
    q = setup_queue(ch, 3)
    get(ch, q)
    get(ch, q)
    ch.basic_ack(0, multiple=True)
    ch.basic_recover(requeue=True)  # nothing is left to requeue
    assert drain(ch, q) == [(b"2", False)]


def test_ack_out_of_order(ch):
    q = setup_queue(ch, 3)
    for _ in range(3):
        get(ch, q)
    ch.basic_ack(2)
    ch.basic_recover(requeue=True)
    assert drain(ch, q) == [(b"0", True), (b"2", True)]


def test_consumer_ack(conn):
    ch = conn.channel()
    q = setup_queue(ch, 3)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: (got.append(b), c.basic_ack(m.delivery_tag)))
    wait_until(conn, lambda: len(got) == 3, what="3 deliveries")
    ch.basic_cancel(ch.consumer_tags[0])
    assert got == [b"0", b"1", b"2"]
    assert ch.queue_declare(q, passive=True).method.message_count == 0


# ---------------------------------------------------------------- nack / reject


@pytest.mark.parametrize("how", ["reject", "nack"])
def test_requeue_true_redelivers_with_flag(ch, how):
    q = setup_queue(ch, 2)
    tag, _, _ = get(ch, q)
    if how == "reject":
        ch.basic_reject(tag, requeue=True)
    else:
        ch.basic_nack(tag, requeue=True)
    assert get(ch, q) == (2, b"0", True)
    assert get(ch, q) == (3, b"1", False)


@pytest.mark.parametrize("how", ["reject", "nack"])
def test_requeue_false_discards(ch, how):
    q = setup_queue(ch, 2)
    tag, _, _ = get(ch, q)
    if how == "reject":
        ch.basic_reject(tag, requeue=False)
    else:
        ch.basic_nack(tag, requeue=False)
    assert drain(ch, q) == [(b"1", False)]


def test_nack_multiple_requeue(ch):
    q = setup_queue(ch, 5)
    for _ in range(4):
        get(ch, q)
    ch.basic_nack(3, multiple=True, requeue=True)  # 1..3 back, 4 still held
    assert drain(ch, q) == [(b"0", True), (b"1", True), (b"2", True), (b"4", False)]
    ch.basic_nack(4, multiple=False, requeue=True)
    assert drain(ch, q) == [(b"3", True)]


def test_nack_multiple_discard(ch):
    q = setup_queue(ch, 4)
    for _ in range(3):
        get(ch, q)
    ch.basic_nack(2, multiple=True, requeue=False)
    ch.basic_recover(requeue=True)  # only tag 3 is left unacked
    assert drain(ch, q) == [(b"2", True), (b"3", False)]


def test_nack_multiple_tag_zero_all_outstanding(ch):
    q = setup_queue(ch, 3)
    get(ch, q)
    get(ch, q)
    ch.basic_nack(0, multiple=True, requeue=True)
    assert drain(ch, q) == [(b"0", True), (b"1", True), (b"2", False)]


def test_nack_multiple_tag_zero_with_nothing_outstanding_is_ok(ch):
    q = setup_queue(ch, 1)
    ch.basic_nack(0, multiple=True, requeue=True)
    assert get(ch, q) == (1, b"0", False)


def test_requeued_messages_keep_original_order(ch):
    q = setup_queue(ch, 5)
    for _ in range(3):
        get(ch, q)
    # reject in a scrambled order: they still come back in publish order, ahead of the rest
    ch.basic_reject(2, requeue=True)
    ch.basic_reject(1, requeue=True)
    ch.basic_reject(3, requeue=True)
    assert drain(ch, q) == [(b"0", True), (b"1", True), (b"2", True), (b"3", False), (b"4", False)]


def test_requeued_message_goes_back_to_consumer(conn):
    ch = conn.channel()
    q = setup_queue(ch, 1)
    got = []

    def cb(c, m, p, b):
        got.append((m.delivery_tag, b, m.redelivered))
        if len(got) == 1:
            c.basic_reject(m.delivery_tag, requeue=True)
        else:
            c.basic_ack(m.delivery_tag)

    ch.basic_consume(q, cb)
    wait_until(conn, lambda: len(got) == 2, what="redelivery")
    assert got == [(1, b"0", False), (2, b"0", True)]


def test_redelivered_message_keeps_properties(ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    props = pika.BasicProperties(message_id="m1", headers={"h": 1}, priority=3)
    ch.basic_publish("", q, b"body", props)
    m, _p, _b = ch.basic_get(q)
    ch.basic_reject(m.delivery_tag, requeue=True)
    m, p, b = ch.basic_get(q, auto_ack=True)
    assert (m.redelivered, p.message_id, p.headers, p.priority, b) == (True, "m1", {"h": 1}, 3, b"body")


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "method,ids",
    [
        (lambda ch, t: ch.basic_ack(t), BASIC_ACK),
        (lambda ch, t: ch.basic_ack(t, multiple=True), BASIC_ACK),
        (lambda ch, t: ch.basic_nack(t, requeue=True), BASIC_NACK),
        (lambda ch, t: ch.basic_nack(t, multiple=True), BASIC_NACK),
        (lambda ch, t: ch.basic_reject(t, requeue=False), BASIC_REJECT),
    ],
    ids=["ack", "ack-multiple", "nack", "nack-multiple", "reject"],
)
def test_unknown_delivery_tag(conn, method, ids):
    ch = conn.channel()
    q = setup_queue(ch, 1)
    get(ch, q)
    method(ch, 7)
    wait_channel_closed(conn, ch, 406, unknown_tag(7), ids)
    assert conn.is_open
    # the unacked message went back to the queue when the channel closed
    other = conn.channel()
    assert drain(other, q) == [(b"0", True)]


def test_ack_tag_zero_without_multiple_is_unknown(conn):
    ch = conn.channel()
    q = setup_queue(ch, 1)
    get(ch, q)
    ch.basic_ack(0)
    wait_channel_closed(conn, ch, 406, unknown_tag(0), BASIC_ACK)


def test_ack_with_nothing_delivered(conn):
    ch = conn.channel()
    ch.basic_ack(1)
    wait_channel_closed(conn, ch, 406, unknown_tag(1), BASIC_ACK)


def test_double_ack(conn):
    ch = conn.channel()
    q = setup_queue(ch, 2)
    tag, _, _ = get(ch, q)
    ch.basic_ack(tag)
    ch.basic_ack(tag)
    wait_channel_closed(conn, ch, 406, unknown_tag(tag), BASIC_ACK)


def test_reject_after_ack(conn):
    ch = conn.channel()
    q = setup_queue(ch, 1)
    tag, _, _ = get(ch, q)
    ch.basic_ack(tag)
    ch.basic_reject(tag)
    wait_channel_closed(conn, ch, 406, unknown_tag(tag), BASIC_REJECT)


def test_ack_of_no_ack_delivery(conn):
    ch = conn.channel()
    q = setup_queue(ch, 1)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(m.delivery_tag), auto_ack=True)
    wait_until(conn, lambda: got, what="delivery")
    ch.basic_ack(got[0])
    wait_channel_closed(conn, ch, 406, unknown_tag(got[0]), BASIC_ACK)


def test_ack_of_no_ack_get(conn):
    ch = conn.channel()
    q = setup_queue(ch, 1)
    tag, _, _ = get(ch, q, no_ack=True)
    assert tag == 1
    ch.basic_ack(tag)
    wait_channel_closed(conn, ch, 406, unknown_tag(1), BASIC_ACK)


def test_ack_on_wrong_channel(conn):
    ch = conn.channel()
    q = setup_queue(ch, 1)
    tag, _, _ = get(ch, q)
    other = conn.channel()
    other.basic_ack(tag)
    wait_channel_closed(conn, other, 406, unknown_tag(tag), BASIC_ACK)
    ch.basic_ack(tag)  # still fine on its own channel
    assert get(ch, q) is None


def test_multiple_ack_beyond_last_tag(conn):
    ch = conn.channel()
    q = setup_queue(ch, 3)
    get(ch, q)
    get(ch, q)
    ch.basic_ack(5, multiple=True)
    wait_channel_closed(conn, ch, 406, unknown_tag(5), BASIC_ACK)


# ---------------------------------------------------------------- channel / connection close


def test_unacked_requeued_when_channel_closes(conn):
    ch = conn.channel()
    q = setup_queue(ch, 4)
    c = conn.channel()
    c.basic_qos(prefetch_count=2)
    got = []
    c.basic_consume(q, lambda ch_, m, p, b: got.append(b))
    wait_until(conn, lambda: len(got) == 2, what="2 deliveries")
    c.close()
    assert drain(ch, q) == [(b"0", True), (b"1", True), (b"2", False), (b"3", False)]


def test_unacked_gets_requeued_when_channel_closes(conn):
    ch = conn.channel()
    q = setup_queue(ch, 3)
    c = conn.channel()
    get(c, q)
    get(c, q)
    c.basic_ack(1)
    c.close()
    assert drain(ch, q) == [(b"1", True), (b"2", False)]


def test_unacked_requeued_when_connection_closes(broker, conn):
    ch = conn.channel()
    name = ch.queue_declare("", exclusive=False, auto_delete=False).method.queue
    try:
        for i in range(3):
            ch.basic_publish("", name, b"%d" % i)
        other = broker.connect()
        och = other.channel()
        got = []
        och.basic_consume(name, lambda c, m, p, b: got.append(b))
        wait_until(other, lambda: len(got) == 3, what="3 deliveries")
        other.close()
        eventually(lambda: ch.queue_declare(name, passive=True).method.message_count == 3,
                   what="requeue after connection close")
        assert drain(ch, name) == [(b"0", True), (b"1", True), (b"2", True)]
    finally:
        ch.queue_delete(name)


def test_unacked_requeued_when_connection_drops(broker, conn):
    # the client vanishes without closing properly (TCP reset / close)
    ch = conn.channel()
    name = ch.queue_declare("").method.queue
    try:
        ch.basic_publish("", name, b"x")
        raw = RawClient(broker)
        raw.send(spec.Basic.Get(queue=name, no_ack=False))
        fr = raw.next_method()
        assert isinstance(fr.method, spec.Basic.GetOk)
        raw.sock.close()
        eventually(lambda: ch.queue_declare(name, passive=True).method.message_count == 1,
                   what="requeue after connection drop")
        assert drain(ch, name) == [(b"x", True)]
    finally:
        ch.queue_delete(name)


# ---------------------------------------------------------------- recover


def test_recover_requeue_true(ch):
    q = setup_queue(ch, 3)
    get(ch, q)
    get(ch, q)
    ch.basic_recover(requeue=True)
    assert drain(ch, q) == [(b"0", True), (b"1", True), (b"2", False)]


def test_recover_redelivers_to_consumer(conn):
    ch = conn.channel()
    q = setup_queue(ch, 2)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append((m.delivery_tag, b, m.redelivered)))
    wait_until(conn, lambda: len(got) == 2, what="2 deliveries")
    ch.basic_recover(requeue=True)
    wait_until(conn, lambda: len(got) == 4, what="2 redeliveries")
    assert got == [(1, b"0", False), (2, b"1", False), (3, b"0", True), (4, b"1", True)]
    # the old tags are gone
    ch.basic_ack(4, multiple=True)
    ch.basic_recover(requeue=True)  # nothing unacked: nothing comes back
    settle(conn, 0.1)
    assert len(got) == 4


def test_recover_ok_frame(broker):
    raw = RawClient(broker)
    try:
        raw.rpc(spec.Basic.Recover(requeue=True), spec.Basic.RecoverOk)
    finally:
        raw.close()


def test_recover_async_requeue_true(broker):
    raw = RawClient(broker)
    try:
        q = raw.rpc(spec.Queue.Declare(queue="", exclusive=True), spec.Queue.DeclareOk).queue
        raw.publish("", q, b"m")
        raw.send(spec.Basic.Get(queue=q, no_ack=False))
        ok = raw.expect(spec.Basic.GetOk)
        assert (ok.delivery_tag, ok.redelivered) == (1, False)
        raw.send(spec.Basic.RecoverAsync(requeue=True))  # no reply
        raw.send(spec.Basic.Get(queue=q, no_ack=True))
        ok = raw.expect(spec.Basic.GetOk)  # the very next method is the get-ok
        assert (ok.delivery_tag, ok.redelivered) == (2, True)
    finally:
        raw.close()


@pytest.mark.parametrize(
    "method,ids",
    [(spec.Basic.Recover(requeue=False), BASIC_RECOVER),
     (spec.Basic.RecoverAsync(requeue=False), RECOVER_ASYNC)],
    ids=["recover", "recover-async"],
)
def test_recover_requeue_false_not_implemented(broker, method, ids):
    raw = RawClient(broker)
    try:
        q = raw.rpc(spec.Queue.Declare(queue="", exclusive=True), spec.Queue.DeclareOk).queue
        raw.publish("", q, b"m")
        raw.send(spec.Basic.Get(queue=q, no_ack=False))
        raw.expect(spec.Basic.GetOk)
        raw.send(method)
        fr = raw.next_method()
        m = fr.method
        assert fr.channel_number == 0 and isinstance(m, spec.Connection.Close)
        assert (m.reply_code, m.reply_text, (m.class_id, m.method_id)) == (
            540, "NOT_IMPLEMENTED - requeue=false", ids)
    finally:
        raw.close()
