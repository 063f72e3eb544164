"""Channel lifecycle: channel.open/open-ok, close/close-ok, reuse of channel numbers,
channel_max, channel.flow, and the scope of channel exceptions.

Recorded against RabbitMQ 3.10.8:
- channel_max limits how many channels are open at once, not the channel *number*:
  any number 1..65535 can be opened while fewer than channel_max channels are open.
- channel.flow{active=false} is a connection error (540 NOT_IMPLEMENTED).
"""

import pika
import pytest

import amqp_raw as A


def assert_close(close, kind, channel, code, text, class_id, method_id):
    assert (close.kind, close.channel, close.reply_code, close.reply_text, close.class_id,
            close.method_id) == (kind, channel, code, text, class_id, method_id)


def declare_passive_missing(c, channel, name):
    c.send_method(channel, "queue.declare", 0, name, True, False, False, False, False, {})


def roundtrip(conn, uniq, tag="rt"):
    ch = conn.channel()
    q = uniq(tag)
    ch.queue_declare(q, exclusive=True)
    ch.basic_publish("", q, b"still works")
    _m, _p, body = ch.basic_get(q, auto_ack=True)
    assert body == b"still works"
    ch.close()


# ---------------------------------------------------------------- open / close

def test_open_close_reopen(broker):
    with A.broker_handshake(broker) as c:
        m = c.open_channel(1)
        assert m.args == [b""]  # channel.open-ok reserved longstr is empty
        c.send_method(1, "channel.close", 200, "bye", 0, 0)
        m = c.read_method()
        assert (m.channel, m.name, m.args) == (1, "channel.close-ok", [])
        c.open_channel(1)
        c.send_method(1, "basic.qos", 0, 5, False)
        c.expect("basic.qos-ok", 1)


def test_many_channels_on_one_connection(broker):
    with A.broker_handshake(broker) as c:
        for n in (1, 2, 100, 2047):
            c.open_channel(n)
        for n in (2047, 100, 2, 1):
            c.send_method(n, "basic.qos", 0, n % 100, False)
            c.expect("basic.qos-ok", n)


def test_channel_open_twice(broker):
    with A.broker_handshake(broker) as c:
        c.open_channel(1)
        c.send_method(1, "channel.open", "")
        close = c.read_until_close()
        assert_close(close, "connection", 0, 504, "CHANNEL_ERROR - second 'channel.open' seen",
                     20, 10)
        assert c.wait_closed(2)


def test_channel_open_on_channel_zero(broker):
    with A.broker_handshake(broker) as c:
        c.send_method(0, "channel.open", "")
        close = c.read_until_close()
        assert_close(close, "connection", 0, 504,
                     "CHANNEL_ERROR - unexpected method in connection state running", 20, 10)
        assert c.wait_closed(2)


def test_non_connection_method_on_channel_zero(broker):
    with A.broker_handshake(broker) as c:
        c.send_method(0, "basic.qos", 0, 10, False)
        close = c.read_until_close()
        assert_close(close, "connection", 0, 504,
                     "CHANNEL_ERROR - unexpected method in connection state running", 60, 10)
        assert c.wait_closed(2)


@pytest.mark.parametrize("name,args,ids", [
    ("queue.declare", (0, "", False, False, True, True, False, {}), (50, 10)),
    ("basic.qos", (0, 10, False), (60, 10)),
    ("channel.close", (200, "", 0, 0), (20, 40)),
    ("channel.close-ok", (), (20, 41)),
    ("channel.flow", (True,), (20, 20)),
])
def test_method_on_never_opened_channel(broker, name, args, ids):
    with A.broker_handshake(broker) as c:
        c.open_channel(1)
        c.send_method(5, name, *args)
        close = c.read_until_close()
        assert_close(close, "connection", 0, 504, "CHANNEL_ERROR - expected 'channel.open'", *ids)
        assert c.wait_closed(2)


def test_method_on_closed_channel(broker):
    with A.broker_handshake(broker) as c:
        c.open_channel(3)
        c.send_method(3, "channel.close", 200, "", 0, 0)
        c.expect("channel.close-ok", 3)
        c.send_method(3, "basic.qos", 0, 10, False)
        close = c.read_until_close()
        assert_close(close, "connection", 0, 504, "CHANNEL_ERROR - expected 'channel.open'", 60, 10)


# ---------------------------------------------------------------- channel_max

@pytest.mark.parametrize("number", [11, 2048, 65535])
def test_channel_number_above_channel_max_is_accepted(broker, number):
    # RabbitMQ 3.10 only counts open channels against channel_max
    with A.broker_handshake(broker, channel_max=10) as c:
        c.open_channel(number)
        c.send_method(number, "basic.qos", 0, 1, False)
        c.expect("basic.qos-ok", number)


def test_channel_max_limits_open_channel_count(broker):
    with A.broker_handshake(broker, channel_max=2) as c:
        c.open_channel(5)
        c.open_channel(7)
        c.send_method(7, "channel.close", 200, "", 0, 0)
        c.expect("channel.close-ok", 7)
        c.open_channel(9)  # a slot was freed by the close
        c.send_method(1, "channel.open", "")
        close = c.read_until_close()
        assert_close(close, "connection", 0, 530,
                     "NOT_ALLOWED - number of channels opened (2) has reached the "
                     "negotiated channel_max (2)", 0, 0)
        assert c.wait_closed(2)


# ---------------------------------------------------------------- channel.flow

def test_channel_flow_active_true_echoed(broker):
    with A.broker_handshake(broker) as c:
        c.open_channel(1)
        c.send_method(1, "channel.flow", True)
        m = c.read_method()
        assert (m.channel, m.name, m.args) == (1, "channel.flow-ok", [True])


def test_channel_flow_active_false_not_implemented(broker):
    with A.broker_handshake(broker) as c:
        c.open_channel(1)
        c.send_method(1, "channel.flow", False)
        close = c.read_until_close()
        assert_close(close, "connection", 0, 540, "NOT_IMPLEMENTED - active=false", 20, 20)
        assert c.wait_closed(2)


def test_unsolicited_channel_flow_ok(broker):
    with A.broker_handshake(broker) as c:
        c.open_channel(1)
        c.send_method(1, "channel.flow-ok", True)
        close = c.read_until_close()
        assert_close(close, "connection", 0, 503, "COMMAND_INVALID - unimplemented method", 20, 21)
        assert c.wait_closed(2)


# ---------------------------------------------------------------- channel exceptions

def test_channel_exception_closes_only_that_channel(broker, uniq):
    missing = uniq("missing")
    other = broker.connect()
    try:
        with A.broker_handshake(broker) as c:
            c.open_channel(1)
            c.open_channel(2)
            declare_passive_missing(c, 1, missing)
            close = c.read_until_close(reply_close_ok=False)
            assert_close(close, "channel", 1, 404,
                         f"NOT_FOUND - no queue '{missing}' in vhost '{broker.vhost}'", 50, 10)
            # the sibling channel works even before close-ok was sent
            c.send_method(2, "basic.qos", 0, 3, False)
            c.expect("basic.qos-ok", 2)
            c.send_method(1, "channel.close-ok")
            # the number can be reused once close-ok was sent
            c.open_channel(1)
            c.send_method(1, "basic.qos", 0, 3, False)
            c.expect("basic.qos-ok", 1)
        roundtrip(other, uniq)
    finally:
        other.close()


def test_methods_discarded_while_server_awaits_channel_close_ok(broker, uniq):
    with A.broker_handshake(broker) as c:
        c.open_channel(1)
        declare_passive_missing(c, 1, uniq("missing"))
        c.read_until_close(reply_close_ok=False)
        c.send_method(1, "basic.qos", 0, 3, False)  # discarded: no reply, no error
        c.send(A.publish_frames(1, "", "nowhere", b"dropped"))  # content is discarded too
        c.send_method(1, "channel.close-ok")
        c.open_channel(1)
        assert c.pending_frames() == []


def test_channel_open_while_server_awaits_close_ok(broker, uniq):
    with A.broker_handshake(broker) as c:
        c.open_channel(1)
        declare_passive_missing(c, 1, uniq("missing"))
        c.read_until_close(reply_close_ok=False)
        c.send_method(1, "channel.open", "")
        close = c.read_until_close()
        assert_close(close, "connection", 0, 504, "CHANNEL_ERROR - second 'channel.open' seen",
                     20, 10)


def test_simultaneous_channel_close(broker, uniq):
    with A.broker_handshake(broker) as c:
        c.open_channel(1)
        declare_passive_missing(c, 1, uniq("missing"))
        c.read_until_close(reply_close_ok=False)
        c.send_method(1, "channel.close", 200, "", 0, 0)
        c.expect("channel.close-ok", 1)
        c.send_method(1, "channel.close-ok")
        c.open_channel(1)


def test_pika_channel_exception_leaves_connection_usable(broker, conn, uniq):
    ch1 = conn.channel()
    ch2 = conn.channel()
    missing = uniq("missing")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch1.queue_declare(missing, passive=True)
    assert e.value.reply_code == 404
    assert e.value.reply_text == f"NOT_FOUND - no queue '{missing}' in vhost '{broker.vhost}'"
    assert ch1.is_closed and ch2.is_open and conn.is_open
    q = uniq("q")
    ch2.queue_declare(q, exclusive=True)
    ch2.basic_publish("", q, b"x")
    assert ch2.basic_get(q, auto_ack=True)[2] == b"x"
    roundtrip(conn, uniq, "rt2")
