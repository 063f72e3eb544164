"""Streams in the management HTTP API and Prometheus, and retention set by policy.

The API part runs against a private Warren with its HTTP API (or the reference's API in
differential mode, where only RabbitMQ's own fields are checked).
"""

import re
import time
import urllib.request

from conftest import free_port, spawn_warren, wait_port
from helpers import Http, PolicySet, broker_with_http, quote, skip_on_reference

STREAM = {"x-queue-type": "stream"}


def test_api_shows_a_stream_with_its_log_and_consumer_offsets(broker, uniq):
    with broker_with_http(broker) as (b, http):
        name = uniq("s")
        c = b.connect()
        ch = c.channel()
        ch.queue_declare(name, durable=True, arguments=STREAM)
        ch.confirm_delivery()
        for i in range(20):
            ch.basic_publish("", name, b"m%d" % i)
        cc = b.connect()
        cch = cc.channel()
        cch.basic_qos(prefetch_count=5)
        got = []
        cch.basic_consume(name, lambda c_, m, p, body: got.append(m.delivery_tag),
                          arguments={"x-stream-offset": 10}, consumer_tag="reader")
        deadline = time.time() + 5
        while len(got) < 5 and time.time() < deadline:
            cc.process_data_events(0.05)
        assert len(got) == 5

        path = f"/api/queues/{quote('/')}/{quote(name)}"
        deadline = time.time() + 15
        while True:
            status, q = http.get(path)
            assert status == 200, q
            if q.get("messages") == 20 or time.time() > deadline:
                break
            time.sleep(0.5)
        assert q["type"] == "stream"
        assert q["durable"] is True
        assert q["arguments"]["x-queue-type"] == "stream"
        assert q["messages"] == 20
        assert [d["consumer_tag"] for d in q["consumer_details"]] == ["reader"]
        if not b.is_reference:
            s = q["stream"]
            assert (s["first_offset"], s["last_offset"], s["next_offset"]) == (0, 19, 20)
            assert s["segments"] == 1 and s["size_bytes"] > 20 * 2
            # Five sent (10..14), none acked: its next offset is 15, five from the end.
            assert s["consumers"] == [{"consumer_tag": "reader", "channel": 1,
                                       "offset": 15, "offset_lag": 5}]
        cc.close()
        ch.queue_delete(name)
        c.close()


def test_prometheus_exports_stream_figures(broker, uniq):
    skip_on_reference(broker, "warren_stream_* are Warren's own metric families")
    port = free_port()
    with spawn_warren("--prometheus-port", str(port)) as b:
        wait_port("127.0.0.1", port, proc=b.proc)
        name = uniq("s")
        c = b.connect()
        ch = c.channel()
        ch.queue_declare(name, durable=True, arguments=STREAM)
        ch.confirm_delivery()
        for i in range(7):
            ch.basic_publish("", name, b"x" * 100)
        ch.basic_qos(prefetch_count=2)
        ch.basic_consume(name, lambda *a: None, arguments={"x-stream-offset": "first"},
                         consumer_tag="p")
        c.process_data_events(0.5)
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics/per-object", timeout=10).read().decode()
        labels = f'vhost="/",queue="{name}"'
        assert f"warren_stream_next_offset{{{labels}}} 7" in text
        assert f"warren_stream_first_offset{{{labels}}} 0" in text
        assert f"warren_stream_segments{{{labels}}} 1" in text
        assert f'warren_stream_consumer_offset_lag{{{labels},consumer_tag="p"}} 5' in text
        assert f"rabbitmq_queue_messages{{{labels}}} 7" in text
        c.close()


def test_retention_by_policy(broker, uniq):
    with broker_with_http(broker) as (b, http):
        name = uniq("s")
        policies = PolicySet(http)
        try:
            policies.put(name, f"^{name}$", {"max-length-bytes": 20000,
                                             "stream-max-segment-size-bytes": 5000},
                         apply_to="queues")
            c = b.connect()
            ch = c.channel()
            ch.queue_declare(name, durable=True, arguments=STREAM)
            ch.confirm_delivery()
            for i in range(400):
                ch.basic_publish("", name, b"%04d" % i + b"." * 96)
            cc = b.connect()
            cch = cc.channel()
            cch.basic_qos(prefetch_count=1000)
            got = []
            cch.basic_consume(name, lambda c_, m, p, body: got.append(body),
                              arguments={"x-stream-offset": "first"})
            deadline = time.time() + 2
            while time.time() < deadline:
                cc.process_data_events(0.1)
            first = int(got[0][:4])
            assert first > 0, "the policy's max-length-bytes removed nothing"
            assert [int(x[:4]) for x in got] == list(range(first, 400))
            cc.close()
            ch.queue_delete(name)
            c.close()
        finally:
            policies.clear()


def test_streams_apply_to_only_matches_streams(broker, uniq):
    skip_on_reference(broker, "apply-to 'streams' is RabbitMQ 3.12+")
    with broker_with_http(broker) as (b, http):
        s_name, q_name = uniq("s"), uniq("q")
        policies = PolicySet(http)
        try:
            policies.put(uniq("p"), f"^({re.escape(s_name)}|{re.escape(q_name)})$", {"max-length-bytes": 1000},
                         apply_to="streams")
            c = b.connect()
            ch = c.channel()
            ch.queue_declare(s_name, durable=True, arguments=STREAM)
            ch.queue_declare(q_name)
            for n in (s_name, q_name):
                _, q = http.get(f"/api/queues/{quote('/')}/{quote(n)}")
                expected = {"max-length-bytes": 1000} if n == s_name else {}
                assert q["effective_policy_definition"] == expected, n
            ch.queue_delete(s_name)
            ch.queue_delete(q_name)
            c.close()
        finally:
            policies.clear()

