"""connection.update-secret (RabbitMQ extension, class 10 method 70; reply
update-secret-ok, method 71) with the internal user database.

Recorded against RabbitMQ 3.10.8: the internal backend accepts any new secret (it does not
re-check the password) and answers update-secret-ok on channel 0; the connection keeps
working and the user's stored password is unchanged. Sent on a non-zero channel it is a
connection error (503, "unimplemented method"); sent before connection.open it is a
handshake error (silent close after ~3 s).
"""

import time

import amqp_raw as A


def test_update_secret_same_password(broker):
    with A.broker_handshake(broker) as c:
        c.send_method(0, "connection.update-secret", broker.password, "token refresh")
        m = c.read_method()
        assert (m.channel, m.class_id, m.method_id, m.args) == (0, 10, 71, [])
        c.open_channel(1)
        c.send_method(1, "basic.qos", 0, 1, False)
        c.expect("basic.qos-ok", 1)


def test_update_secret_other_secret_accepted_by_internal_backend(broker):
    with A.broker_handshake(broker) as c:
        c.open_channel(1)
        c.send_method(0, "connection.update-secret", "something-else", "rotate")
        c.expect("connection.update-secret-ok", 0)
        c.send_method(0, "connection.update-secret", "", "")
        c.expect("connection.update-secret-ok", 0)
        c.send_method(1, "basic.qos", 0, 1, False)
        c.expect("basic.qos-ok", 1)
    # the stored password did not change
    with A.broker_handshake(broker) as c:
        c.open_channel(1)


def test_update_secret_on_nonzero_channel(broker):
    with A.broker_handshake(broker) as c:
        c.open_channel(1)
        c.send_method(1, "connection.update-secret", broker.password, "x")
        close = c.read_until_close(reply_close_ok=False)
        assert close == A.Close("connection", 0, 503, "COMMAND_INVALID - unimplemented method",
                                10, 70)
        c.send_method(0, "connection.close-ok")
        assert c.wait_closed(2)


def test_update_secret_before_open(broker):
    with A.start(broker.host, broker.port, user=broker.user, password=broker.password) as c:
        c.expect("connection.tune", 0)
        c.send_method(0, "connection.update-secret", broker.password, "x")
        t0 = time.monotonic()
        assert c.frames_until_closed(timeout=8) == []
        assert 2.0 <= time.monotonic() - t0 <= 6.0


def test_pika_update_secret(broker, uniq):
    conn = broker.connect()
    try:
        conn.update_secret(broker.password, "refresh")  # waits for update-secret-ok
        ch = conn.channel()
        q = uniq("q")
        ch.queue_declare(q, exclusive=True)
        ch.basic_publish("", q, b"after update")
        assert ch.basic_get(q, auto_ack=True)[2] == b"after update"
    finally:
        conn.close()

