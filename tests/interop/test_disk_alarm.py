"""The disk free-space alarm, end to end on the real filesystem (Warren only).

Warren watches free space under --data-dir. The test puts the limit between the free
space with and without a file it creates, so creating the file raises the alarm and
deleting it clears it: publishers get connection.blocked, their publishes are held, and
after connection.unblocked everything held is processed in order. (The reference-mode
counterpart is test_connection_blocked.py, which drives RabbitMQ with rabbitmqctl.)
"""

import os
import shutil
import time

import pika
import pytest

from conftest import spawn_warren

BALLAST = 512 << 20  # bytes the test takes from the filesystem to cross the limit


@pytest.fixture(autouse=True)
def warren_only(broker):
    if broker.is_reference:
        pytest.skip("drives Warren's own disk monitor")


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_disk_alarm_blocks_publishers_and_unblocks_when_space_returns(tmp_path, uniq):
    if free_bytes(tmp_path) < 4 * BALLAST:
        pytest.skip("not enough free disk for the ballast file")
    # Raise the alarm first: the ballast is in place before the broker starts.
    ballast = tmp_path / "ballast"
    with open(ballast, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, BALLAST)
    limit = free_bytes(tmp_path) + BALLAST // 2
    data = tmp_path / "data"
    with spawn_warren("--disk-free-limit", str(limit), data_dir=str(data)) as b:
        conn = b.connect()
        events = []
        conn.add_on_connection_blocked_callback(
            lambda c, m: events.append(("blocked", m.method.reason)))
        conn.add_on_connection_unblocked_callback(lambda c, m: events.append(("unblocked",)))
        ch = conn.channel()
        q = uniq("q")
        ch.queue_declare(q)
        consumer = b.connect()  # consume-only connections are never blocked
        cch = consumer.channel()

        ch.basic_publish("", q, b"held")
        assert wait_for(lambda: conn.process_data_events(0) or events), "no connection.blocked"
        assert events == [("blocked", "low on disk")]
        # The publish is held: the queue stays empty while the alarm stands.
        time.sleep(0.3)
        assert cch.queue_declare(q, passive=True).method.message_count == 0

        os.remove(ballast)
        assert wait_for(lambda: conn.process_data_events(0) or len(events) == 2, timeout=15), \
            "no connection.unblocked after the space came back"
        assert events[1] == ("unblocked",)
        assert wait_for(lambda: cch.queue_declare(q, passive=True).method.message_count == 1)
        ch.basic_publish("", q, b"after")
        assert wait_for(lambda: cch.queue_declare(q, passive=True).method.message_count == 2)
        got = [cch.basic_get(q, auto_ack=True)[2] for _ in range(2)]
        assert got == [b"held", b"after"]
        consumer.close()
        conn.close()
    shutil.rmtree(data, ignore_errors=True)
