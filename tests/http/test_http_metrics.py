"""Prometheus metrics with RabbitMQ's names: aggregated on /metrics, per queue,
connection and channel on /metrics/per-object."""

import re

import requests

from helpers import wait_for

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')


def parse(text):
    """{(name, frozenset(labels)): value}, and the declared types."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        assert m, f"not Prometheus text: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples, types


def get(warren, path):
    r = requests.get(warren.prometheus_url + path, timeout=60)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


def test_aggregated_metrics(warren, uniq):
    c = warren.connect()
    ch = c.channel()
    name = uniq("q")
    ch.queue_declare(name)
    for _ in range(4):
        ch.basic_publish("", name, b"abc")
    c.process_data_events(0.2)
    try:
        s, types = get(warren, "/metrics")
        for m in ["rabbitmq_queue_messages_ready", "rabbitmq_queue_messages", "rabbitmq_connections",
                  "rabbitmq_channels", "rabbitmq_queues", "rabbitmq_consumers",
                  "rabbitmq_global_messages_received_total", "rabbitmq_connections_opened_total",
                  "rabbitmq_disk_space_available_bytes", "rabbitmq_process_resident_memory_bytes"]:
            assert (m, frozenset()) in s, m
            assert m in types
        assert s[("rabbitmq_queue_messages_ready", frozenset())] >= 4
        assert s[("rabbitmq_connections", frozenset())] >= 1
        assert s[("rabbitmq_global_messages_received_total", frozenset())] >= 4
        assert types["rabbitmq_global_messages_received_total"] == "counter"
        assert types["rabbitmq_queue_messages_ready"] == "gauge"
        build = [k for k in s if k[0] == "rabbitmq_build_info"][0]
        assert ("rabbitmq_version", "3.13.7") in build[1]
    finally:
        ch.queue_delete(name)
        c.close()


def test_per_object_metrics(warren, uniq):
    c = warren.connect()
    ch = c.channel()
    name = uniq("q")
    ch.queue_declare(name)
    for _ in range(3):
        ch.basic_publish("", name, b"abcd")
    ch.basic_qos(prefetch_count=1)
    ch.basic_consume(name, lambda *a: None)
    c.process_data_events(0.3)
    try:
        s, _ = get(warren, "/metrics/per-object")
        labels = frozenset({("vhost", "/"), ("queue", name)})
        assert s[("rabbitmq_queue_messages_ready", labels)] == 2
        assert s[("rabbitmq_queue_messages_unacked", labels)] == 1
        assert s[("rabbitmq_queue_messages", labels)] == 3
        assert s[("rabbitmq_queue_consumers", labels)] == 1
        assert s[("rabbitmq_queue_messages_published_total", labels)] == 3
        chans = [k for k in s if k[0] == "rabbitmq_channel_consumers" and s[k] == 1]
        assert chans
        conns = [k for k in s if k[0] == "rabbitmq_connection_incoming_bytes_total"]
        assert conns and all(v > 0 for k, v in s.items() if k in conns)
    finally:
        ch.queue_delete(name)
        c.close()


def test_names_are_rabbitmqs(warren, reference):
    """Every rabbitmq_* family Warren exports exists in RabbitMQ's own output."""
    ours, _ = get(warren, "/metrics")
    r = requests.get(reference.prometheus_url + "/metrics", timeout=30)
    theirs, _ = parse(r.text)
    r = requests.get(reference.prometheus_url + "/metrics/per-object", timeout=30)
    theirs_po, _ = parse(r.text)
    known = {k[0] for k in theirs} | {k[0] for k in theirs_po}
    mine = {k[0] for k in ours if k[0].startswith("rabbitmq_")}
    # Families RabbitMQ has only while a connection or channel is open.
    known |= {"rabbitmq_connection_incoming_bytes_total", "rabbitmq_connection_outgoing_bytes_total",
              "rabbitmq_connection_incoming_packets_total", "rabbitmq_connection_outgoing_packets_total",
              "rabbitmq_connection_pending_packets", "rabbitmq_connection_channels",
              "rabbitmq_channel_messages_published_total", "rabbitmq_channel_messages_unacked",
              "rabbitmq_channel_consumers"}
    assert mine - known == set()
