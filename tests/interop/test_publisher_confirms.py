"""Publisher confirms (confirm.select, basic.ack / basic.nack from the broker)."""

import pika
from pika import spec

from helpers import (
    CONFIRM_SELECT,
    TX_SELECT,
    RawClient,
    bodies,
    channel_closed,
    cleanup,  # noqa: F401  (fixture)
)


def collect_confirms(raw, n, ch=1, timeout=10.0):
    """Read broker acks/nacks on channel `ch` until tags 1..n are all settled.

    RabbitMQ's rules, which these checks encode:
    - the delivery tag of every ack/nack frame is a tag not settled before;
    - multiple=false settles exactly that tag; multiple=true settles every tag up to
      and including it that is not settled yet;
    - frames need NOT come in increasing tag order (e.g. unroutable messages are
      acked at once, routed ones when their queue has them: 1,3,5 then 4 multiple).
    Returns ({tag: "ack"|"nack"}, [frames as (kind, tag, multiple)])."""
    outcome, frames = {}, []
    while len(outcome) < n:
        c, m, _p, _b = raw.next_event(timeout)
        assert c == ch, (c, m)
        assert isinstance(m, (spec.Basic.Ack, spec.Basic.Nack)), m
        kind = "ack" if isinstance(m, spec.Basic.Ack) else "nack"
        frames.append((kind, m.delivery_tag, m.multiple))
        assert 1 <= m.delivery_tag <= n, f"tag {m.delivery_tag} was never published"
        assert m.delivery_tag not in outcome, f"tag {m.delivery_tag} confirmed twice: {frames}"
        if m.multiple:
            for t in range(1, m.delivery_tag + 1):
                outcome.setdefault(t, kind)
        else:
            outcome[m.delivery_tag] = kind
    assert sorted(outcome) == list(range(1, n + 1))
    return outcome, frames


def burst(raw, exchange, key, n, ch=1, body=b"abc", props=None):
    props = props or spec.BasicProperties()
    one = (pika.frame.Method(ch, spec.Basic.Publish(exchange=exchange, routing_key=key)).marshal()
           + pika.frame.Header(ch, len(body), props).marshal()
           + pika.frame.Body(ch, body).marshal())
    raw.sock.sendall(one * n)


def new_raw_queue(raw, ch=1, **kw):
    return raw.rpc(spec.Queue.Declare(queue="", exclusive=True, **kw), spec.Queue.DeclareOk, ch).queue


def test_confirm_select_ok(broker):
    raw = RawClient(broker)
    try:
        ok = raw.rpc(spec.Confirm.Select(), spec.Confirm.SelectOk)
        assert isinstance(ok, spec.Confirm.SelectOk)
        # selecting again is harmless
        raw.rpc(spec.Confirm.Select(), spec.Confirm.SelectOk)
    finally:
        raw.close()


def test_confirm_select_nowait(broker, uniq):
    raw = RawClient(broker)
    try:
        raw.send(spec.Confirm.Select(nowait=True))
        raw.publish("", uniq("nowhere"), b"m")
        _c, m, _p, _b = raw.next_event()
        assert isinstance(m, spec.Basic.Ack) and (m.delivery_tag, m.multiple) == (1, False), m
    finally:
        raw.close()


def test_sequence_starts_at_one_per_channel(broker):
    raw = RawClient(broker)
    try:
        q = new_raw_queue(raw)
        raw.publish("", q, b"before-select")  # not counted
        raw.open_channel(2)
        raw.rpc(spec.Confirm.Select(), spec.Confirm.SelectOk, 1)
        raw.rpc(spec.Confirm.Select(), spec.Confirm.SelectOk, 2)
        raw.publish("", q, b"a1", ch=1)
        _c, m, _p, _b = raw.next_event()
        assert (_c, m.NAME, m.delivery_tag) == (1, "Basic.Ack", 1)
        raw.publish("", q, b"b1", ch=2)
        _c, m, _p, _b = raw.next_event()
        assert (_c, m.NAME, m.delivery_tag) == (2, "Basic.Ack", 1)
        raw.publish("", q, b"a2", ch=1)
        _c, m, _p, _b = raw.next_event()
        assert (_c, m.NAME, m.delivery_tag) == (1, "Basic.Ack", 2)
    finally:
        raw.close()


def test_routed_and_unroutable_are_acked(broker, uniq):
    raw = RawClient(broker)
    try:
        q = new_raw_queue(raw)
        raw.rpc(spec.Confirm.Select(), spec.Confirm.SelectOk)
        for i in range(10):
            raw.publish("", q if i % 2 else uniq("nowhere"), b"%d" % i)
        outcome, _ = collect_confirms(raw, 10)
        assert set(outcome.values()) == {"ack"}
    finally:
        raw.close()


def test_unroutable_acks_each_in_turn(broker, uniq):
    raw = RawClient(broker)
    try:
        raw.rpc(spec.Confirm.Select(), spec.Confirm.SelectOk)
        burst(raw, "", uniq("nowhere"), 50)
        outcome, _ = collect_confirms(raw, 50)
        assert set(outcome.values()) == {"ack"}
    finally:
        raw.close()


def test_ten_thousand_confirms(broker):
    raw = RawClient(broker)
    try:
        q = new_raw_queue(raw)
        raw.rpc(spec.Confirm.Select(), spec.Confirm.SelectOk)
        burst(raw, "", q, 10_000)
        outcome, frames = collect_confirms(raw, 10_000, timeout=30)
        assert set(outcome.values()) == {"ack"}
        # every message is really there
        ok = raw.rpc(spec.Queue.Declare(queue=q, passive=True), spec.Queue.DeclareOk)
        assert ok.message_count == 10_000
    finally:
        raw.close()


def test_multiple_acks_are_consistent(broker):
    # RabbitMQ coalesces confirms for a burst into acks with multiple=true;
    # whatever the grouping, tags 1..n are each settled exactly once, in order.
    raw = RawClient(broker)
    try:
        q = new_raw_queue(raw)
        raw.rpc(spec.Confirm.Select(), spec.Confirm.SelectOk)
        burst(raw, "", q, 2000)
        outcome, frames = collect_confirms(raw, 2000)
        assert set(outcome.values()) == {"ack"}
        assert len(frames) <= 2000
    finally:
        raw.close()


def test_pika_confirm_delivery(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.confirm_delivery()
    for i in range(20):
        ch.basic_publish("", q, b"%d" % i)  # each returns only once acked
    assert ch.queue_declare(q, passive=True).method.message_count == 20


def test_persistent_message_to_durable_queue_acked(conn, uniq, cleanup):
    ch = conn.channel()
    q = cleanup.queue(uniq("durable"))
    ch.queue_declare(q, durable=True)
    ch.confirm_delivery()
    ch.basic_publish("", q, b"p", pika.BasicProperties(delivery_mode=2))
    assert bodies(ch, q) == [b"p"]


def test_nack_when_queue_rejects_publish(broker):
    raw = RawClient(broker)
    try:
        q = new_raw_queue(raw, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
        raw.rpc(spec.Confirm.Select(), spec.Confirm.SelectOk)
        for b in [b"1", b"2", b"3"]:
            raw.publish("", q, b)
        outcome, _ = collect_confirms(raw, 3)
        assert outcome == {1: "ack", 2: "nack", 3: "nack"}
    finally:
        raw.close()


def test_pika_nack_raises(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True,
                         arguments={"x-max-length": 1, "x-overflow": "reject-publish"}).method.queue
    ch.confirm_delivery()
    ch.basic_publish("", q, b"fits")
    try:
        ch.basic_publish("", q, b"rejected")
        raise AssertionError("expected NackError")
    except pika.exceptions.NackError:
        pass
    assert bodies(ch, q) == [b"fits"]


def test_ack_for_drop_head_overflow(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True, arguments={"x-max-length": 1}).method.queue
    ch.confirm_delivery()
    ch.basic_publish("", q, b"old")
    ch.basic_publish("", q, b"new")
    assert bodies(ch, q) == [b"new"]


def test_confirm_select_on_transactional_channel(conn):
    ch = conn.channel()
    ch.tx_select()
    with channel_closed(406, "PRECONDITION_FAILED - cannot switch from tx to confirm mode",
                        CONFIRM_SELECT):
        ch.confirm_delivery()
    assert conn.is_open


def test_tx_select_on_confirm_channel(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    with channel_closed(406, "PRECONDITION_FAILED - cannot switch from confirm to tx mode",
                        TX_SELECT):
        ch.tx_select()
    assert conn.is_open
