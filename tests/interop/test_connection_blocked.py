"""connection.blocked / connection.unblocked (RabbitMQ extension, capability
`connection.blocked`) under a disk resource alarm.

Recorded against RabbitMQ 3.10.8:
- raising the alarm sends nothing by itself: a connection is blocked when it next sends
  a content-bearing method (basic.publish); only then does it get
  connection.blocked{reason="low on disk"} (class 10, method 60), if the client announced
  the capability. Idle and consume-only connections are never blocked.
- a blocked connection is not read any further: the publish that triggered the block and
  everything sent after it (e.g. a basic.get) wait until the alarm clears.
- when the alarm clears, blocked connections get connection.unblocked (10, 61) first,
  then the held frames are processed in order.
- a client without the capability is held in the same way, without notifications.

Reference mode raises/clears the alarm with rabbitmqctl set_disk_free_limit (this briefly
holds publishers of any test running against the same broker). Warren mode starts a
private Warren with the alarm on from the start: it cannot be cleared, so the unblock
halves are left out there.
"""

import shutil
import subprocess
import time

import pytest

import amqp_raw as A
from conftest import spawn_warren

REASON = "low on disk"
NODE = "reference@localhost"


class Alarm:
    def __init__(self, broker, can_clear):
        self.broker = broker
        self.can_clear = can_clear
        self.raised = False

    def _ctl(self, limit):
        subprocess.run([shutil.which("rabbitmqctl") or "rabbitmqctl", "-n", NODE,
                        "set_disk_free_limit", limit], check=True, capture_output=True,
                       timeout=30)

    def raise_(self):
        if self.can_clear:
            self._ctl("100000GB")
        self.raised = True

    def clear(self):
        """Clear the alarm; False when it cannot be (Warren mode): the test ends there."""
        if not self.can_clear:
            return False
        self._ctl("50MB")
        self.raised = False
        return True


@pytest.fixture
def alarm(broker):
    if broker.is_reference:
        a = Alarm(broker, can_clear=True)
        try:
            yield a
        finally:
            if a.raised:
                a._ctl("50MB")
    else:
        with spawn_warren("--disk-free-limit", "100000GB") as b:
            yield Alarm(b, can_clear=False)


def raw(alarm, **kw):
    c = A.broker_handshake(alarm.broker, **kw)
    c.open_channel(1)
    return c


def get_body(ch, q):
    r = ch.basic_get(q, auto_ack=True)
    return None if r[0] is None else r[2]


def wait_for_body(ch, q, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = get_body(ch, q)
        if body is not None:
            return body
        time.sleep(0.05)
    return None


def expect_method(c, name, timeout=10.0):
    m = c.read_method(timeout=timeout)
    assert (m.channel, m.name) == (0, name), m
    return m


def test_publisher_blocked_with_reason_and_publish_held(alarm, uniq):
    q = uniq("q")
    observer = alarm.broker.connect()  # consume-only connection: never blocked
    try:
        och = observer.channel()
        och.queue_declare(q, auto_delete=False)
        with raw(alarm) as pub, raw(alarm) as idle:
            alarm.raise_()
            pub.send(A.publish_frames(1, "", q, b"held"))
            m = expect_method(pub, "connection.blocked")
            assert (m.class_id, m.method_id, m.args) == (10, 60, [REASON])
            # everything after the blocking publish waits, including non-publish methods
            pub.send_method(1, "basic.get", 0, q, True)
            assert get_body(och, q) is None  # the publish is held, not enqueued
            assert idle.pending_frames() == []  # an idle connection is not blocked
            idle.send_method(1, "basic.qos", 0, 1, False)
            idle.expect("basic.qos-ok", 1)
            assert pub.pending_frames() == []
            if not alarm.clear():
                return
            expect_method(pub, "connection.unblocked")
            # held frames are processed in order: publish, then the get sees the message
            m = pub.expect("basic.get-ok", 1)
            assert m.args[3] == q
            assert pub.read_frame().type == A.FRAME_HEADER
            assert pub.read_frame().payload == b"held"
            assert idle.pending_frames() == []
    finally:
        try:
            observer.channel().queue_delete(q)
        finally:
            observer.close()


def test_consumers_keep_working_while_blocked(alarm, uniq):
    q = uniq("q")
    prefill = alarm.can_clear  # a Warren with the alarm on from the start takes no publish
    consumer = alarm.broker.connect()
    try:
        ch = consumer.channel()
        ch.queue_declare(q)
        if prefill:
            for i in range(3):
                ch.basic_publish("", q, b"m%d" % i)
        # make sure the messages are in the queue before the alarm
        ch.queue_declare(q, passive=True)
        with raw(alarm) as pub:
            alarm.raise_()
            pub.send(A.publish_frames(1, "", q, b"held"))
            expect_method(pub, "connection.blocked")
            got = []
            ch.basic_qos(prefetch_count=1)
            tag = ch.basic_consume(q, lambda c, m, p, b: (got.append(b), c.basic_ack(m.delivery_tag)))
            deadline = time.monotonic() + 5
            while len(got) < (3 if prefill else 0) and time.monotonic() < deadline:
                consumer.process_data_events(time_limit=0.1)
            assert got == ([b"m0", b"m1", b"m2"] if prefill else [])
            ch.basic_cancel(tag)
            # acks were processed and the held publish did not arrive
            assert ch.queue_declare(q, passive=True).method.message_count == 0
            assert get_body(ch, q) is None
            if not alarm.clear():
                return
            expect_method(pub, "connection.unblocked")
            assert wait_for_body(ch, q) == b"held"
    finally:
        try:
            consumer.channel().queue_delete(q)
        finally:
            consumer.close()


def test_client_without_capability_is_held_without_notification(alarm, uniq):
    q = uniq("q")
    caps = {k: v for k, v in A.DEFAULT_CAPABILITIES.items() if k != "connection.blocked"}
    observer = alarm.broker.connect()
    try:
        och = observer.channel()
        och.queue_declare(q)
        with raw(alarm, capabilities=caps) as silent, raw(alarm) as notified:
            alarm.raise_()
            silent.send(A.publish_frames(1, "", q, b"from-silent"))
            silent.send_method(1, "basic.get", 0, q, True)
            notified.send(A.publish_frames(1, "", q, b"from-notified"))
            expect_method(notified, "connection.blocked")
            assert get_body(och, q) is None
            assert silent.pending_frames() == []
            if not alarm.clear():
                return
            expect_method(notified, "connection.unblocked")
            # the first thing the silent client sees is the answer to its held basic.get
            m = silent.read_method(timeout=10)
            assert (m.channel, m.name) in ((1, "basic.get-ok"), (1, "basic.get-empty")), m
    finally:
        try:
            observer.channel().queue_delete(q)
        finally:
            observer.close()


def test_pika_blocked_and_unblocked_callbacks(alarm, uniq):
    q = uniq("q")
    conn = alarm.broker.connect()
    events = []
    conn.add_on_connection_blocked_callback(lambda c, m: events.append(("blocked", m.method.reason)))
    conn.add_on_connection_unblocked_callback(lambda c, m: events.append(("unblocked", None)))
    try:
        ch = conn.channel()
        ch.queue_declare(q, exclusive=True)
        alarm.raise_()
        ch.basic_publish("", q, b"x")
        deadline = time.monotonic() + 10
        while not events and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.1)
        assert events == [("blocked", REASON)]
        if not alarm.clear():
            return
        deadline = time.monotonic() + 10
        while len(events) < 2 and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.1)
        assert events == [("blocked", REASON), ("unblocked", None)]
        assert wait_for_body(ch, q) == b"x"
    finally:
        # A blocked connection is not read, so a graceful close would hang while the
        # alarm stands (Warren mode cannot clear it): the broker is stopped instead.
        if conn.is_open and not alarm.raised:
            conn.close()
