"""The memory high watermark (RabbitMQ's vm_memory_high_watermark), end to end (Warren only).

A private Warren runs with an absolute watermark well above its idle memory. A consumer
takes large messages without acknowledging them, so the broker holds them in memory
until its resident memory crosses the watermark: publishers then get
connection.blocked("low on memory"), the alarm shows in the management API's health
check and node, and their publishes are held. Once the consumer acknowledges, memory
falls, the alarm clears, publishers get connection.unblocked and what they sent is
processed. (The reference-mode counterpart is test_connection_blocked.py, which drives
RabbitMQ's alarm with rabbitmqctl.)
"""

import threading
import time

import pytest
import requests

from conftest import free_port, spawn_warren

MIB = 1 << 20
BODY = 1 * MIB


@pytest.fixture(autouse=True)
def warren_only(broker):
    if broker.is_reference:
        pytest.skip("drives Warren's own memory monitor")


def wait_for(pred, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def test_watermark_flag_validation():
    import subprocess
    from conftest import WARREN_BIN
    r = subprocess.run([WARREN_BIN, "--vm-memory-high-watermark", "lots", "--amqp-port", "0"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "invalid memory high watermark 'lots'" in r.stderr


def test_memory_alarm_blocks_publishers_until_memory_falls(uniq):
    http = free_port()
    limit = 96 * MIB
    with spawn_warren("--vm-memory-high-watermark-absolute", str(limit),
                      "--http-port", str(http)) as b:
        api = f"http://127.0.0.1:{http}/api"
        auth = ("guest", "guest")
        pid = b.proc.pid
        assert rss(pid) < limit / 2, "idle broker too big for this test"
        node = requests.get(f"{api}/nodes", auth=auth, timeout=5).json()[0]
        assert node["mem_limit"] == limit and node["mem_alarm"] is False
        assert requests.get(f"{api}/health/checks/alarms", auth=auth, timeout=5).json() == {"status": "ok"}

        q = uniq("q")
        consumer = b.connect()
        cch = consumer.channel()
        cch.queue_declare(q)
        held = []
        cch.basic_consume(q, lambda c, m, p, body: held.append(m.delivery_tag))

        # Unacknowledged deliveries stay in the broker's memory. A publisher thread sends
        # large messages until the alarm stops it (its last publish then waits in the
        # socket until the alarm clears, which is why it has a thread of its own).
        stop = threading.Event()
        sent = [0]

        def flood():
            pub = b.connect(blocked_connection_timeout=None)
            pch = pub.channel()
            body = b"m" * BODY
            while not stop.is_set() and sent[0] < 400:
                pch.basic_publish("", q, body)
                sent[0] += 1
                pub.process_data_events(0)
            pub.close()
        flooder = threading.Thread(target=flood, daemon=True)
        flooder.start()

        def alarmed():
            consumer.process_data_events(0.05)
            return requests.get(f"{api}/nodes", auth=auth, timeout=5).json()[0]["mem_alarm"]
        assert wait_for(alarmed, timeout=60), \
            f"no memory alarm after {sent[0]} MiB unacknowledged (broker RSS {rss(pid) >> 20} MiB)"
        stop.set()
        assert sent[0] * BODY >= limit / 2, "alarm long before the watermark"
        r = requests.get(f"{api}/health/checks/alarms", auth=auth, timeout=5)
        assert r.status_code == 503
        assert r.json()["alarms"] == [{"node": node["name"], "resource": "memory"}]

        # A publisher is told, and what it sends is held: it does not reach its queue.
        pub = b.connect()
        events = []
        pub.add_on_connection_blocked_callback(lambda c, m: events.append(("blocked", m.method.reason)))
        pub.add_on_connection_unblocked_callback(lambda c, m: events.append(("unblocked",)))
        pch = pub.channel()
        q2 = uniq("q2")
        probe = b.connect()
        prch = probe.channel()
        prch.queue_declare(q2)
        pch.basic_publish("", q2, b"held")
        assert wait_for(lambda: pub.process_data_events(0) or events), "no connection.blocked"
        assert events == [("blocked", "low on memory")]
        time.sleep(0.3)
        assert prch.queue_declare(q2, passive=True).method.message_count == 0, \
            "the publish during the alarm was not held"

        # Acknowledging frees the memory: the alarm clears and the held publish goes on.
        # (The flooder's last publishes are held too; they arrive and are acknowledged
        # as they come.)
        def drained():
            consumer.process_data_events(0.05)
            if held:
                cch.basic_ack(held[-1], multiple=True)
                held.clear()
            pub.process_data_events(0)
            return len(events) == 2
        assert wait_for(drained, timeout=30), f"no connection.unblocked (broker RSS {rss(pid) >> 20} MiB)"
        assert events[1] == ("unblocked",)
        assert wait_for(lambda: prch.queue_declare(q2, passive=True).method.message_count == 1)
        flooder.join(10)
        assert not flooder.is_alive()
        assert requests.get(f"{api}/health/checks/alarms", auth=auth, timeout=5).json() == {"status": "ok"}
        pub.close()
        probe.close()
        consumer.close()
