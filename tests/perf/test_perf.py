"""warren-perf counts correctly, and a run in which the broker loses or duplicates a
message says so and exits non-zero (status 4)."""

import csv
import json
import os
import tempfile

import pytest

from conftest import FaultyProxy, run_perf


def summary_of(stdout):
    lines = [json.loads(l) for l in stdout.splitlines() if l.startswith("{")]
    s = [l for l in lines if l["kind"] == "summary"]
    assert len(s) == 1, stdout
    return s[0]


def test_counts_every_message_once(broker):
    code, out, err = run_perf("run", "--uri", broker.uri, "-x", 2, "-y", 3, "-C", 30001,
                              "-s", 100, "-q", 100, "--json", "--quiet",
                              "--broker-pid", broker.proc.pid)
    assert code == 0, err
    s = summary_of(out)
    assert s["published"] == 30001
    assert s["consumed"] == 30001
    assert sum(s["consumed_per_consumer"]) == 30001
    assert len(s["consumed_per_consumer"]) == 3
    assert s["ended_by"] == "count"
    i = s["integrity"]
    assert i["checked"] and i["lost"] == 0 and i["duplicates"] == 0
    assert i["distinct"] == 30001
    assert s["latency_us"]["samples"] == 30001
    assert s["broker"]["pid"] == broker.proc.pid and s["broker"]["cpu_seconds"] >= 0
    # Samples: one JSON line per second at most, before the summary.
    assert all(json.loads(l)["kind"] == "sample" for l in out.splitlines()[:-1])


def test_fanout_counts_each_queue(broker):
    code, out, err = run_perf("run", "--uri", broker.uri, "-x", 1, "-y", 3, "-C", 5000,
                              "-s", 32, "-e", "perf-test-fanout", "-t", "fanout",
                              "--queues", 3, "--json", "--quiet")
    assert code == 0, err
    s = summary_of(out)
    assert s["published"] == 5000
    assert s["consumed"] == 15000
    assert s["consumed_per_consumer"] == [5000, 5000, 5000]
    assert s["integrity"]["distinct"] == 15000


def test_confirms_and_timed_runs_account_for_queued_messages(broker):
    # Rate-limited producer, no consumer time limit: a timed run leaves nothing lost.
    code, out, err = run_perf("run", "--uri", broker.uri, "-x", 1, "-y", 1, "-z", 1.5,
                              "-r", 4000, "-c", 50, "-s", 64, "--json", "--quiet")
    assert code == 0, err
    s = summary_of(out)
    assert s["ended_by"] == "duration"
    assert 4000 <= s["published"] <= 7000
    assert s["confirmed"] + s["nacked"] <= s["published"]
    assert s["integrity"]["checked"] and s["integrity"]["lost"] == 0


def test_publish_only_waits_until_queued_then_drain(broker):
    q = "perf-test-drain"
    code, out, err = run_perf("run", "--uri", broker.uri, "-x", 1, "-y", 0, "-C", 20000,
                              "-s", 16, "-u", q, "--keep", "--await-queued", "--json",
                              "--quiet")
    assert code == 0, err
    assert summary_of(out)["published"] == 20000
    code, out, err = run_perf("run", "--uri", broker.uri, "-x", 0, "-y", 1, "-a", "-C", 20000,
                              "-u", q, "--delete-queues", "--json", "--quiet")
    assert code == 0, err
    s = summary_of(out)
    assert s["consumed"] == 20000
    assert s["integrity"]["duplicates"] == 0


@pytest.mark.parametrize("ack", [[], ["-a"]], ids=["manual-ack", "auto-ack"])
def test_a_lost_message_fails_the_run(broker, ack):
    proxy = FaultyProxy(broker.port, nth=1234, mode="drop")
    try:
        code, out, err = run_perf("run", "--uri", proxy.uri, "-x", 1, "-y", 2, "-C", 5000,
                                  "-s", 100, "--stall-timeout", 2, "--json", "--quiet", *ack)
    finally:
        proxy.close()
    assert proxy.done
    assert code == 4, (code, err)
    assert "LOST 1 message" in err
    s = summary_of(out)
    i = s["integrity"]
    assert i["lost"] == 1 and i["duplicates"] == 0
    assert s["consumed"] == 4999
    assert [m["count"] for m in i["missing"]] == [1]


def test_a_duplicated_delivery_fails_the_run(broker):
    proxy = FaultyProxy(broker.port, nth=777, mode="duplicate")
    try:
        code, out, err = run_perf("run", "--uri", proxy.uri, "-x", 1, "-y", 1, "-a", "-C",
                                  5000, "-s", 100, "--stall-timeout", 5, "--json", "--quiet")
    finally:
        proxy.close()
    assert proxy.done
    assert code == 4, (code, err)
    assert "DUPLICATED 1" in err
    s = summary_of(out)
    assert s["consumed"] == 5001
    assert s["integrity"]["duplicates"] == 1 and s["integrity"]["lost"] == 0


def test_the_proxy_alone_changes_nothing(broker):
    # The fault injection is what fails the runs above, not the proxy.
    proxy = FaultyProxy(broker.port, nth=10**9, mode="drop")
    try:
        code, out, err = run_perf("run", "--uri", proxy.uri, "-x", 1, "-y", 2, "-C", 5000,
                                  "-s", 100, "--json", "--quiet")
    finally:
        proxy.close()
    assert code == 0, err
    assert summary_of(out)["integrity"]["lost"] == 0


# ------------------------------------------------------------------ stream mode

STREAM = ["--queue-type", "stream", "-q", 200, "-A", 50]


def test_stream_every_consumer_gets_every_message_in_order(broker):
    code, out, err = run_perf("run", "--uri", broker.uri, "-x", 2, "-y", 3, "-C", 20001,
                              "-s", 100, *STREAM, "--json", "--quiet")
    assert code == 0, err
    s = summary_of(out)
    assert s["published"] == 20001
    assert s["consumed"] == 3 * 20001
    assert s["consumed_per_consumer"] == [20001] * 3
    assert len(s["consume_rate_per_consumer"]) == 3
    assert s["consume_mb_per_s"] > 0
    assert s["stream"]["start"] == "next"
    # Every consumer saw offsets 0..20000, each once, in order.
    assert s["stream"]["first_offsets"] == [0] * 3
    assert s["stream"]["last_offsets"] == [20000] * 3
    i = s["integrity"]
    assert i["checked"] and i["lost"] == 0 and i["duplicates"] == 0
    assert i["out_of_order"] == 0 and i["offset_errors"] == 0
    assert i["distinct"] == 3 * 20001
    assert i["verdict"].startswith("ok: every consumer got every message")


def test_stream_replay_from_first(broker):
    q = "perf-test-replay"
    code, out, err = run_perf("run", "--uri", broker.uri, "-x", 1, "-y", 0, "-C", 30000,
                              "-s", 64, "-u", q, "--queue-type", "stream", "-c", 1000,
                              "--keep", "--json", "--quiet")
    assert code == 0, err
    assert summary_of(out)["confirmed"] == 30000
    # Each of two consumers reads the 30,000 from the start.
    code, out, err = run_perf("run", "--uri", broker.uri, "-x", 0, "-y", 2, "-C", 30000,
                              "-u", q, *STREAM, "--json", "--quiet")
    assert code == 0, err
    s = summary_of(out)
    assert s["stream"]["start"] == "first"
    assert s["consumed_per_consumer"] == [30000, 30000]
    assert s["stream"]["first_offsets"] == [0, 0]
    assert s["stream"]["last_offsets"] == [29999, 29999]
    # MB/s counts the bodies received (64 B each), whatever --size says.
    want = 60000 * 64 / s["elapsed_s"] / 1e6
    assert abs(s["consume_mb_per_s"] - want) <= want * 0.01, (s["consume_mb_per_s"], want)
    assert s["integrity"]["checked"] and s["integrity"]["lost"] == 0
    assert s["integrity"]["verdict"].startswith("ok"), s["integrity"]
    # From an offset, fewer than the stream holds; then the stream goes.
    code, out, err = run_perf("run", "--uri", broker.uri, "-x", 0, "-y", 1, "-C", 1000,
                              "-u", q, *STREAM, "--stream-offset", 25000, "--delete-queues",
                              "--json", "--quiet")
    assert code == 0, err
    s = summary_of(out)
    assert s["consumed"] >= 1000
    assert s["stream"]["first_offsets"] == [25000]
    assert s["integrity"]["verdict"].startswith("ok"), s["integrity"]


@pytest.mark.parametrize("producers", [1, 0], ids=["live", "replay"])
def test_stream_a_lost_message_fails_the_run(broker, producers):
    q = f"perf-test-stream-loss-{producers}"
    if producers == 0:
        code, _, err = run_perf("run", "--uri", broker.uri, "-x", 1, "-y", 0, "-C", 5000,
                                "-s", 100, "-u", q, "--queue-type", "stream", "-c", 500,
                                "--keep", "--json", "--quiet")
        assert code == 0, err
    proxy = FaultyProxy(broker.port, nth=2345, mode="drop")
    try:
        code, out, err = run_perf("run", "--uri", proxy.uri, "-x", producers, "-y", 2,
                                  "-C", 5000, "-s", 100, "-u", q, *STREAM,
                                  "--delete-queues", "--stall-timeout", 2, "--json",
                                  "--quiet")
    finally:
        proxy.close()
    assert proxy.done
    assert code == 4, (code, err)
    assert "LOST 1 message" in err
    s = summary_of(out)
    i = s["integrity"]
    assert i["lost"] == 1 and i["duplicates"] == 0 and i["out_of_order"] == 0
    assert sorted(s["consumed_per_consumer"]) == [4999, 5000]
    assert [m["count"] for m in i["missing"]] == [1]
    assert i["missing"][0]["queue"].startswith("consumer c")


def test_stream_a_duplicated_delivery_fails_the_run(broker):
    proxy = FaultyProxy(broker.port, nth=777, mode="duplicate")
    try:
        code, out, err = run_perf("run", "--uri", proxy.uri, "-x", 1, "-y", 2, "-C", 5000,
                                  "-s", 100, *STREAM, "--stall-timeout", 5, "--json",
                                  "--quiet")
    finally:
        proxy.close()
    assert proxy.done
    assert code == 4, (code, err)
    assert "DUPLICATED 1" in err
    s = summary_of(out)
    i = s["integrity"]
    assert i["duplicates"] == 1 and i["lost"] == 0
    # The copy repeats its offset too.
    assert i["offset_errors"] == 1
    assert sorted(s["consumed_per_consumer"]) == [5000, 5001]


def test_stream_a_reordered_delivery_fails_the_run(broker):
    proxy = FaultyProxy(broker.port, nth=1000, mode="swap")
    try:
        code, out, err = run_perf("run", "--uri", proxy.uri, "-x", 1, "-y", 1, "-C", 5000,
                                  "-s", 100, *STREAM, "--stall-timeout", 5, "--json",
                                  "--quiet")
    finally:
        proxy.close()
    assert proxy.done
    assert code == 4, (code, err)
    assert "OUT OF ORDER: 1" in err
    s = summary_of(out)
    i = s["integrity"]
    assert i["out_of_order"] == 1 and i["offset_errors"] == 1
    assert i["lost"] == 0 and i["duplicates"] == 0
    assert s["consumed"] == 5000


def test_compare_writes_csv_json_and_markdown(broker):
    out_dir = tempfile.mkdtemp(prefix="warren-perf-compare-")
    code, out, err = run_perf("compare", "--broker", f"one={broker.uri}",
                              "--broker", f"two={broker.uri}", "--scenario", "seed-100",
                              "--scenario", "seed-stream-100",
                              "--scenario", "idle-rss", "--scale", "0.05", "--repeat", 2,
                              "--max-noise", 100, "--out", out_dir, "--meta", "commit=test")
    assert code == 0, err
    with open(os.path.join(out_dir, "runs.csv")) as f:
        runs = list(csv.DictReader(f))
    assert len(runs) == 12
    seed = [r for r in runs if r["scenario"] == "seed-100"]
    assert [(r["broker"], r["rep"]) for r in seed] == [
        ("one", "1"), ("two", "1"), ("one", "2"), ("two", "2")]
    assert all(r["ok"] == "true" and float(r["value"]) > 0 for r in runs)
    assert all(r["integrity"].startswith("ok") for r in seed)
    stream = [r for r in runs if r["scenario"] == "seed-stream-100"]
    assert len(stream) == 4
    assert all(r["integrity"].startswith("ok: every consumer got every message") for r in stream)
    with open(os.path.join(out_dir, "results.json")) as f:
        res = json.load(f)
    assert res["meta"]["commit"] == "test" and res["meta"]["cores"]
    assert res["brokers"][0]["pid"] == broker.proc.pid  # found by its port
    row = [s for s in res["summary"] if s["scenario"] == "seed-100" and s["broker"] == "one"][0]
    assert row["min"] <= row["median"] <= row["max"] and row["runs"] == 2
    md = open(os.path.join(out_dir, "summary.md")).read()
    assert "## Targets: one against two" in md and "seed-100" in md

    fonts = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
             "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"]
    if not any(os.path.exists(f) for f in fonts) and not os.environ.get("WARREN_PERF_FONT"):
        pytest.skip("no TrueType font for warren-perf plot")
    code, _, err = run_perf("plot", out_dir)
    assert code == 0, err
    for name in ("seed-100", "targets", "cpu"):
        for ext in ("png", "svg"):
            path = os.path.join(out_dir, f"{name}.{ext}")
            assert os.path.getsize(path) > 1000, path
    assert open(os.path.join(out_dir, "seed-100.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in open(os.path.join(out_dir, "seed-100.svg")).read(500)


def test_plot_without_a_font_says_how_to_get_one(tmp_path):
    with open(tmp_path / "results.json", "w") as f:
        json.dump({"meta": {}, "subject": "a", "baseline": "a", "brokers": [],
                   "scenarios": [], "runs": [], "summary": []}, f)
    code, _, err = run_perf("plot", tmp_path, "--font", tmp_path / "missing.ttf")
    assert code != 0
    assert "fonts-dejavu-core" in err
