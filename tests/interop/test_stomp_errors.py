"""STOMP ERROR frames, byte for byte as RabbitMQ writes them (message header and body),
and which errors close the connection. The same table runs against the reference."""

import uuid

import pytest

from test_cross_protocol_fixtures import *  # noqa: F401,F403
from test_cross_protocol_fixtures import raw_stomp

CONNECT = b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0"

# (frames sent, expected ERROR message header, expected body, connection closed after)
CASES = {
    "bad password": ([b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:bad\n\n\0"],
                     "Bad CONNECT", "Access refused for user 'guest'\n", False),
    "unknown vhost": ([b"CONNECT\naccept-version:1.2\nhost:nohost\nlogin:guest\npasscode:guest\n\n\0"],
                      "Bad CONNECT", "Virtual host 'nohost' access denied", False),
    "version mismatch": ([b"CONNECT\naccept-version:2.0\nhost:/\n\n\0"],
                         "Version mismatch", "Supported versions are 1.0,1.1,1.2\n", False),
    "frame before connect": ([b"SEND\ndestination:/queue/x\n\nhi\0"],
                             "Illegal command", "You must log in using CONNECT first", False),
    "blank queue": ([CONNECT, b"SEND\ndestination:/queue/\n\nhi\0"],
                    "Invalid destination", "'/' is not a valid queue destination\n", False),
    "unknown destination": ([CONNECT, b"SEND\ndestination:/foo/bar\n\nhi\0"],
                            "Unknown destination",
                            "'/foo/bar' is not a valid destination.\nValid destination types are: "
                            "/temp-queue, /exchange, /topic, /queue, /amq/queue, /reply-queue/.\n", False),
    "send to temp queue": ([CONNECT, b"SEND\ndestination:/temp-queue/x\n\nhi\0"],
                           "Invalid destination", "'/temp-queue/x' is not a valid destination for 'SEND'\n", False),
    "missing destination": ([CONNECT, b"SEND\n\nhi\0"],
                            "Missing destination", "\"SEND\" must include a 'destination' header\n", False),
    "ack without id": ([CONNECT, b"ACK\n\n\0"],
                       "Missing header", "\"ACK\" must include the \"id\" header\n", False),
    "ack with bad id": ([CONNECT, b"ACK\nid:foo\n\n\0"],
                        "Invalid header", "\"ACK\" must include a valid \"id\" header\n", False),
    "ack of unknown subscription": ([CONNECT, b"ACK\nid:T_x@@session-1@@5\n\n\0"],
                                    "Subscription not found",
                                    "Message with id \"T_x@@session-1@@5\" has no subscription", False),
    "begin without transaction": ([CONNECT, b"BEGIN\n\n\0"],
                                  "Missing transaction", "\"BEGIN\" must include a 'transaction' header\n", False),
    "commit of unknown transaction": ([CONNECT, b"COMMIT\ntransaction:nope\n\n\0"],
                                      "Bad transaction", "Invalid transaction identifier: \"nope\"\n", False),
    "unknown command": ([CONNECT, b"FOO\n\n\0"],
                        "Bad command", "Could not interpret command \"FOO\"\n", False),
    "subscribe to missing exchange": ([CONNECT, b"SUBSCRIBE\ndestination:/exchange/nonexist\nid:1\n\n\0"],
                                      "not_found", "NOT_FOUND - no exchange 'nonexist' in vhost '/'", True),
    "subscribe to missing amq queue": ([CONNECT, b"SUBSCRIBE\ndestination:/amq/queue/nonexist\nid:1\n\n\0"],
                                       "not_found", "NOT_FOUND - no queue 'nonexist' in vhost '/'", True),
    "unsubscribe unknown": ([CONNECT, b"UNSUBSCRIBE\nid:zz\n\n\0"],
                            "No subscription found",
                            "UNSUBSCRIBE must refer to an existing subscription.\nSubscription to \"id='zz'\" not found.\n",
                            False),
    "duplicate subscription id": ([CONNECT, b"SUBSCRIBE\ndestination:/queue/stomp-err-dup\nid:1\n\n\0",
                                   b"SUBSCRIBE\ndestination:/queue/stomp-err-dup\nid:1\n\n\0"],
                                  "Duplicated subscription identifier",
                                  "A subscription identified by 'T_1' already exists.", True),
    "message-id on send": ([CONNECT, b"SEND\ndestination:/queue/x\nmessage-id:1\n\nhi\0"],
                           "Invalid header", "'message-id' is not allowed on 'SEND'.\n", False),
    "durable subscription without id": ([CONNECT, b"SUBSCRIBE\ndestination:/topic/x\ndurable:true\n\n\0"],
                                        "Missing Header", "Header 'id' is required for durable subscriptions", False),
    "unknown delivery tag": ([CONNECT, b"SUBSCRIBE\ndestination:/queue/stomp-err-tag\nid:7\nack:client\n\n\0",
                              b"ACK\nid:T_7@@s@@999\n\n\0"],
                             "precondition_failed", "PRECONDITION_FAILED - unknown delivery tag 999", True),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_error_frame(proto, name):
    frames, message, body, closes = CASES[name]
    r = raw_stomp(proto)
    for f in frames:
        r.send(f)
    while True:
        got = r.frame()
        assert got is not None, "connection closed without an ERROR frame"
        if got[0] != "CONNECTED":
            break
    command, headers, detail = got
    assert command == "ERROR"
    assert headers["message"] == message
    assert headers["content-type"] == "text/plain"
    assert headers["version"] == "1.0,1.1,1.2"
    assert detail.decode() == body
    if closes:
        while True:
            f = r.frame(timeout=5)
            if f is None or f[0] != "RECEIPT":
                break
        assert f is None, "the connection must close"
    else:
        r.send(b"\n")  # a heart-beat: the connection is still usable
        assert not r.closed(timeout=0.5)
    r.close()


def test_unparseable_frame_closes_only_that_connection(proto):
    q = f"/queue/stomp-bystander-{uuid.uuid4().hex[:8]}"
    bystander = proto.stomp()
    bystander.conn.subscribe(q, id="b", receipt="r")
    bystander.receipt()
    r = raw_stomp(proto)
    r.connect()
    r.send(b"SEND\ndestination:/queue/x\nbad header line\n\nbody\0")
    assert r.closed()
    bystander.conn.send(q, "still fine")
    assert bystander.get().body == "still fine"
    bystander.disconnect()


def test_header_limit(proto):
    # RabbitMQ 3.10 has no limit on headers; later releases have stomp.max_headers
    # (1000), which Warren applies.
    require_warren(proto, "no header limit in RabbitMQ 3.10")
    r = raw_stomp(proto)
    r.connect()
    r.send(b"SEND\ndestination:/queue/x\n" + b"".join(b"h%d:v\n" % i for i in range(2000)) + b"\n\0")
    assert r.closed()
