"""STOMP with stomp.py: CONNECT in 1.0, 1.1 and 1.2, SEND and SUBSCRIBE on RabbitMQ's
destinations, ack modes, NACK, prefetch-count, receipts, transactions, bodies with NULs,
heart-beats. Runs against Warren and the reference RabbitMQ."""

import time
import uuid

import pytest

from test_cross_protocol_fixtures import *  # noqa: F401,F403
from test_cross_protocol_fixtures import raw_stomp


def uid():
    return uuid.uuid4().hex[:10]


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_send_and_subscribe_on_a_queue(proto, version):
    q = f"/queue/stomp-basic-{version}-{uid()}"
    c = proto.stomp(version)
    c.conn.subscribe(q, id="s1", ack="auto")
    c.conn.send(q, "hello", headers={"receipt": "r1"})
    assert c.receipt().headers["receipt-id"] == "r1"
    m = c.get()
    assert m.body == "hello"
    assert m.headers["destination"] == q
    if version != "1.0":
        assert m.headers["subscription"] == "s1"
    c.disconnect()


def test_topic_fans_out_to_every_subscriber(proto):
    key = f"stomp.fan.{uid()}"
    a, b = proto.stomp(), proto.stomp()
    a.conn.subscribe(f"/topic/{key}", id="a", receipt="ra")
    b.conn.subscribe(f"/topic/{key}", id="b", receipt="rb")
    a.receipt()
    b.receipt()
    a.conn.send(f"/topic/{key}", "fan")
    assert a.get().body == "fan" and b.get().body == "fan"
    assert a.get.__self__ is a
    a.disconnect()
    b.disconnect()


def test_topic_wildcards(proto):
    base = f"stomp.wild.{uid()}"
    c = proto.stomp()
    c.conn.subscribe(f"/topic/{base}.*.x", id="w", receipt="r")
    c.receipt()
    c.conn.send(f"/topic/{base}.a.x", "yes")
    c.conn.send(f"/topic/{base}.a.y", "no")
    assert c.get().body == "yes"
    c.expect_none()
    c.disconnect()


def test_exchange_destination(proto):
    conn = proto.amqp()
    ch = conn.channel()
    x = f"stomp-x-{uid()}"
    ch.exchange_declare(x, "direct", auto_delete=True)
    c = proto.stomp()
    c.conn.subscribe(f"/exchange/{x}/k1", id="e", receipt="r")
    c.receipt()
    c.conn.send(f"/exchange/{x}/k1", "routed")
    c.conn.send(f"/exchange/{x}/k2", "dropped")
    m = c.get()
    assert m.body == "routed"
    assert m.headers["destination"] == f"/exchange/{x}/k1"
    c.expect_none()
    c.disconnect()
    conn.close()


def test_amq_queue_destination_uses_an_existing_queue(proto):
    conn = proto.amqp()
    ch = conn.channel()
    q = f"stomp-amq-{uid()}"
    ch.queue_declare(q, auto_delete=True, arguments={"x-max-length": 100})
    c = proto.stomp()
    c.conn.subscribe(f"/amq/queue/{q}", id="aq", receipt="r")
    c.receipt()
    c.conn.send(f"/amq/queue/{q}", "existing")
    m = c.get()
    assert m.body == "existing"
    assert m.headers["destination"] == f"/queue/{q}"
    c.disconnect()
    conn.close()


def test_client_ack_mode_acks_cumulatively(proto):
    q = f"/queue/stomp-client-ack-{uid()}"
    c = proto.stomp()
    for i in range(3):
        c.conn.send(q, f"m{i}")
    c.conn.subscribe(q, id="c", ack="client")
    msgs = [c.get() for _ in range(3)]
    assert [m.body for m in msgs] == ["m0", "m1", "m2"]
    c.conn.ack(msgs[1].headers["ack"])  # acks m0 and m1
    c.disconnect()
    d = proto.stomp()
    d.conn.subscribe(q, id="d", ack="auto")
    m = d.get()
    assert m.body == "m2" and m.headers["redelivered"] == "true"
    d.expect_none()
    d.disconnect()


def test_client_individual_ack_mode(proto):
    q = f"/queue/stomp-ind-ack-{uid()}"
    c = proto.stomp()
    for i in range(3):
        c.conn.send(q, f"m{i}")
    c.conn.subscribe(q, id="c", ack="client-individual")
    msgs = [c.get() for _ in range(3)]
    c.conn.ack(msgs[1].headers["ack"])  # only m1
    c.disconnect()
    d = proto.stomp()
    d.conn.subscribe(q, id="d")
    assert sorted(m.body for m in [d.get(), d.get()]) == ["m0", "m2"]
    d.disconnect()


def test_nack_requeues_by_default_and_drops_with_requeue_false(proto):
    q = f"/queue/stomp-nack-{uid()}"
    c = proto.stomp()
    c.conn.send(q, "again")
    c.conn.subscribe(q, id="n", ack="client-individual")
    m = c.get()
    c.conn.nack(m.headers["ack"])
    m2 = c.get()
    assert m2.body == "again" and m2.headers["redelivered"] == "true"
    c.conn.nack(m2.headers["ack"], requeue=False)
    c.expect_none()
    c.disconnect()


def test_prefetch_count_limits_unacked(proto):
    q = f"/queue/stomp-prefetch-{uid()}"
    c = proto.stomp()
    for i in range(5):
        c.conn.send(q, f"p{i}")
    c.conn.subscribe(q, id="p", ack="client-individual", headers={"prefetch-count": "2"})
    first = [c.get(), c.get()]
    c.expect_none(0.5)
    c.conn.ack(first[0].headers["ack"])
    assert c.get().body == "p2"
    c.expect_none(0.5)
    c.disconnect()


def test_transaction_commit_and_abort(proto):
    q = f"/queue/stomp-tx-{uid()}"
    c = proto.stomp()
    c.conn.subscribe(q, id="t")
    tx = c.conn.begin()
    c.conn.send(q, "in tx", transaction=tx)
    c.expect_none(0.5)
    c.conn.commit(tx)
    assert c.get().body == "in tx"
    tx = c.conn.begin()
    c.conn.send(q, "aborted", transaction=tx)
    c.conn.abort(tx)
    c.expect_none(0.5)
    c.disconnect()


def test_receipts_of_transactional_frames_come_with_the_commit(proto):
    # As RabbitMQ: a SEND (or ACK, NACK) in a transaction is performed at COMMIT, and so
    # is its RECEIPT, after COMMIT's own; after ABORT it never comes.
    q = f"/queue/stomp-tx-receipts-{uid()}"
    r = raw_stomp(proto)
    r.connect()
    r.send(b"BEGIN\ntransaction:t1\n\n\0")
    for rid in ("s1", "s2"):
        r.send(f"SEND\ndestination:{q}\ntransaction:t1\nreceipt:{rid}\n\nx\0".encode())
    r.send(b"BEGIN\ntransaction:t2\n\n\0")
    r.send(f"SEND\ndestination:{q}\ntransaction:t2\nreceipt:gone\n\nx\0".encode())
    r.send(b"ABORT\ntransaction:t2\nreceipt:a2\n\n\0")
    cmd, headers, _ = r.frame()
    assert (cmd, headers["receipt-id"]) == ("RECEIPT", "a2")
    r.send(b"COMMIT\ntransaction:t1\nreceipt:c1\n\n\0")
    ids = [r.frame()[1]["receipt-id"] for _ in range(3)]
    assert ids == ["c1", "s1", "s2"]
    r.close()


def test_body_with_nul_octets_uses_content_length(proto):
    q = f"stomp-nul-{uid()}"
    r = raw_stomp(proto)
    r.connect()
    body = b"a\0b\0\0c"
    r.send(b"SUBSCRIBE\ndestination:/queue/" + q.encode() + b"\nid:1\nreceipt:s\n\n\0")
    assert r.frame()[0] == "RECEIPT"
    r.send(b"SEND\ndestination:/queue/" + q.encode() + b"\ncontent-length:%d\n\n" % len(body) + body + b"\0")
    command, headers, got = r.frame()
    assert command == "MESSAGE"
    assert got == body
    assert headers["content-length"] == str(len(body))
    r.close()


def test_temp_queue_reply_to(proto):
    service = f"/queue/stomp-rpc-{uid()}"
    server = proto.stomp()
    server.conn.subscribe(service, id="srv", receipt="r")
    server.receipt()
    client = proto.stomp()
    client.conn.send(service, "ping", headers={"reply-to": "/temp-queue/replies"})
    req = server.get()
    reply_to = req.headers["reply-to"]
    assert reply_to.startswith("/reply-queue/amq.gen-"), reply_to
    server.conn.send(reply_to, "pong")
    m = client.get()
    assert m.body == "pong"
    assert m.headers["subscription"] == "/temp-queue/replies"
    server.disconnect()
    client.disconnect()


def test_durable_topic_subscription_survives_disconnect(proto):
    key = f"stomp.durable.{uid()}"
    hdrs = {"durable": "true", "auto-delete": "false"}
    c = proto.stomp()
    c.conn.subscribe(f"/topic/{key}", id="dur1", headers=hdrs, receipt="r")
    c.receipt()
    c.disconnect()
    p = proto.stomp()
    p.conn.send(f"/topic/{key}", "while away", headers={"persistent": "true", "receipt": "s"})
    p.receipt()
    p.disconnect()
    c = proto.stomp()
    c.conn.subscribe(f"/topic/{key}", id="dur1", headers=hdrs)
    assert c.get().body == "while away"
    c.conn.unsubscribe("dur1", headers={"durable": "true"})
    c.disconnect()


def test_heartbeats_are_negotiated_and_sent(proto):
    r = raw_stomp(proto)
    command, headers, _ = r.connect(extra=b"heart-beat:0,500\n")
    assert command == "CONNECTED"
    # RabbitMQ rounds to whole seconds, at least one.
    assert headers["heart-beat"] == "1000,0"
    r.s.settimeout(3)
    data = r.s.recv(10)
    assert data.strip(b"\n") == b"" and data
    r.close()


def test_missing_client_heartbeats_close_the_connection(proto):
    r = raw_stomp(proto)
    command, headers, _ = r.connect(extra=b"heart-beat:1000,0\n")
    assert headers["heart-beat"] == "0,1000"
    start = time.time()
    assert r.closed(timeout=10)
    assert time.time() - start < 6


def test_stomp_frame_connects_as_connect_does(proto):
    # STOMP 1.1+ clients may open with STOMP instead of CONNECT.
    r = raw_stomp(proto)
    r.send(b"STOMP\naccept-version:1.1,1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0")
    command, headers, _ = r.frame()
    assert (command, headers["version"]) == ("CONNECTED", "1.2")
    q = f"stomp-frame-{uid()}"
    r.send(f"SUBSCRIBE\ndestination:/queue/{q}\nid:1\n\n\0".encode())
    r.send(f"SEND\ndestination:/queue/{q}\n\nvia STOMP\0".encode())
    command, _, body = r.frame()
    assert (command, body) == ("MESSAGE", b"via STOMP")
    r.close()


def test_unsubscribe_stops_delivery(proto):
    key = f"stomp.unsub.{uid()}"
    c = proto.stomp()
    c.conn.subscribe(f"/topic/{key}", id="u", receipt="r1")
    c.receipt()
    c.conn.send(f"/topic/{key}", "before")
    assert c.get().body == "before"
    c.conn.unsubscribe("u", headers={"receipt": "r2"})
    c.receipt()
    c.conn.send(f"/topic/{key}", "after", headers={"receipt": "r3"})
    c.receipt()
    c.expect_none()
    c.disconnect()
