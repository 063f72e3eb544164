"""tx.select / tx.commit / tx.rollback."""

from pika import spec

from helpers import (
    TX_COMMIT,
    TX_ROLLBACK,
    RawClient,
    bodies,
    channel_closed,
    settle,
    wait_until,
)

NOT_TX = "PRECONDITION_FAILED - channel is not transactional"


def get(ch, q, no_ack=True):
    m, _p, b = ch.basic_get(q, auto_ack=no_ack)
    return None if m is None else (b, m.redelivered)


def test_select_commit_rollback_ok_frames(broker):
    raw = RawClient(broker)
    try:
        raw.rpc(spec.Tx.Select(), spec.Tx.SelectOk)
        raw.rpc(spec.Tx.Select(), spec.Tx.SelectOk)  # again: fine
        raw.rpc(spec.Tx.Commit(), spec.Tx.CommitOk)  # empty commit
        raw.rpc(spec.Tx.Rollback(), spec.Tx.RollbackOk)  # empty rollback
    finally:
        raw.close()


def test_publish_invisible_until_commit(conn):
    obs = conn.channel()
    q = obs.queue_declare("", exclusive=True).method.queue
    tx = conn.channel()
    tx.tx_select()
    for i in range(3):
        tx.basic_publish("", q, b"%d" % i)
    # a synchronous round trip on the tx channel: the publishes have been processed
    tx.queue_declare(q, passive=True)
    assert get(obs, q) is None
    assert obs.queue_declare(q, passive=True).method.message_count == 0
    tx.tx_commit()
    assert bodies(obs, q) == [b"0", b"1", b"2"]


def test_rollback_discards_publishes(conn):
    obs = conn.channel()
    q = obs.queue_declare("", exclusive=True).method.queue
    tx = conn.channel()
    tx.tx_select()
    tx.basic_publish("", q, b"discarded")
    tx.tx_rollback()
    tx.basic_publish("", q, b"kept")
    tx.tx_commit()
    assert bodies(obs, q) == [b"kept"]


def test_channel_stays_transactional_after_commit(conn):
    obs = conn.channel()
    q = obs.queue_declare("", exclusive=True).method.queue
    tx = conn.channel()
    tx.tx_select()
    tx.basic_publish("", q, b"1")
    tx.tx_commit()
    tx.basic_publish("", q, b"2")
    tx.queue_declare(q, passive=True)
    assert bodies(obs, q) == [b"1"]
    tx.tx_commit()
    assert bodies(obs, q) == [b"2"]


def test_uncommitted_publishes_dropped_when_channel_closes(conn):
    obs = conn.channel()
    q = obs.queue_declare("", exclusive=True).method.queue
    tx = conn.channel()
    tx.tx_select()
    tx.basic_publish("", q, b"lost")
    tx.close()
    assert get(obs, q) is None


def test_acks_held_until_commit(conn):
    obs = conn.channel()
    q = obs.queue_declare("", exclusive=True).method.queue
    obs.basic_publish("", q, b"a")
    obs.basic_publish("", q, b"b")
    tx = conn.channel()
    tx.tx_select()
    m1, _, _ = tx.basic_get(q)
    m2, _, _ = tx.basic_get(q)
    tx.basic_ack(m1.delivery_tag)
    tx.tx_commit()  # "a" is acked for good
    tx.basic_ack(m2.delivery_tag)  # never committed
    tx.close()  # so "b" is still unacked and comes back
    assert bodies(obs, q) == [b"b"]


def test_rollback_undoes_acks(conn):
    obs = conn.channel()
    q = obs.queue_declare("", exclusive=True).method.queue
    obs.basic_publish("", q, b"a")
    tx = conn.channel()
    tx.tx_select()
    m, _, _ = tx.basic_get(q)
    tx.basic_ack(m.delivery_tag)
    tx.tx_rollback()
    # the message is unacked again (not requeued by the rollback itself)
    assert get(obs, q) is None
    tx.basic_recover(requeue=True)
    assert get(obs, q) == (b"a", True)


def test_acked_message_can_be_acked_again_after_rollback(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"a")
    ch.tx_select()
    m, _, _ = ch.basic_get(q)
    ch.basic_ack(m.delivery_tag)
    ch.tx_rollback()
    ch.basic_ack(m.delivery_tag)
    ch.tx_commit()
    ch.basic_recover(requeue=True)
    assert get(ch, q) is None


def test_reject_held_until_commit(conn):
    obs = conn.channel()
    q = obs.queue_declare("", exclusive=True).method.queue
    obs.basic_publish("", q, b"a")
    tx = conn.channel()
    tx.tx_select()
    m, _, _ = tx.basic_get(q)
    tx.basic_reject(m.delivery_tag, requeue=True)
    tx.queue_declare(q, passive=True)
    assert get(obs, q) is None  # not requeued yet
    tx.tx_commit()
    assert get(obs, q) == (b"a", True)


def test_commit_sends_returns_before_commit_ok(broker, uniq):
    raw = RawClient(broker)
    try:
        raw.rpc(spec.Tx.Select(), spec.Tx.SelectOk)
        raw.publish("", uniq("nowhere"), b"r", mandatory=True)
        raw.send(spec.Tx.Commit())
        _c, m, _p, b = raw.next_event()
        assert isinstance(m, spec.Basic.Return) and (m.reply_code, m.reply_text, b) == (
            312, "NO_ROUTE", b"r"), m
        raw.expect(spec.Tx.CommitOk)
    finally:
        raw.close()


def test_rollback_discards_returns(broker, uniq):
    raw = RawClient(broker)
    try:
        raw.rpc(spec.Tx.Select(), spec.Tx.SelectOk)
        raw.publish("", uniq("nowhere"), b"r", mandatory=True)
        raw.rpc(spec.Tx.Rollback(), spec.Tx.RollbackOk)
        raw.rpc(spec.Tx.Commit(), spec.Tx.CommitOk)  # the very next frame: no return
    finally:
        raw.close()


def test_commit_without_select(conn):
    ch = conn.channel()
    with channel_closed(406, NOT_TX, TX_COMMIT):
        ch.tx_commit()
    assert conn.is_open


def test_rollback_without_select(conn):
    ch = conn.channel()
    with channel_closed(406, NOT_TX, TX_ROLLBACK):
        ch.tx_rollback()
    assert conn.is_open


def test_consumer_deliveries_not_transactional(conn):
    # deliveries to consumers happen at once; only the acks are transactional
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.tx_select()
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(m.delivery_tag))
    obs = conn.channel()
    obs.basic_publish("", q, b"x")
    wait_until(conn, lambda: got, what="delivery")
    ch.basic_ack(got[0])
    ch.tx_rollback()
    settle(conn, 0.05)
    assert len(got) == 1  # rollback does not redeliver
