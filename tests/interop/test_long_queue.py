"""A long durable queue stays on disk, not in memory (issue 3).

LONG_QUEUE_MESSAGES (default 200,000) persistent 1 KiB messages are published with
confirms to one durable queue with no consumer (by warren-perf: one producer, so the
queue's order is the publish order); the broker's RSS is sampled from /proc throughout,
and its peak (VmHWM) must stay under LONG_QUEUE_RSS_MIB (default 300) MiB — during the
publishing, while the queue sits idle, and while one consumer drains it and checks that
every message comes back exactly once, in order, intact. The second test restarts the
broker (SIGKILL) with the queue full before draining: recovery must not load it into
memory either.

At the CI size the payload (195 MiB) is under the bound: an in-memory queue fails it by
its per-message overhead (the in-memory Warren peaked at 473 MiB for 200,000). The test
refuses to run when the payload is under half the bound. The full-size run (5,000,000) is
bench/long-queue.sh. Warren only: it measures the Warren process.
"""

import json
import os
import subprocess
import threading
import time

import pytest

from conftest import ROOT
from durability_helpers import drain, private_warren, proc_status  # noqa: F401  (fixture)

M = int(os.environ.get("LONG_QUEUE_MESSAGES", "200000"))
BOUND_MIB = float(os.environ.get("LONG_QUEUE_RSS_MIB", "300"))
SIZE = 1024
PERF = os.environ.get("WARREN_PERF", os.path.join(ROOT, "target", "release", "warren-perf"))


class RssSampler(threading.Thread):
    """Samples the broker's VmRSS every 20 ms; `peak()` is the kernel's own high-water
    mark (VmHWM), which misses nothing between samples."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples = []  # (seconds since start, VmRSS KiB)
        self.stop_evt = threading.Event()
        self.t0 = time.monotonic()

    def run(self):
        while not self.stop_evt.wait(0.02):
            try:
                self.samples.append((time.monotonic() - self.t0,
                                     proc_status(self.pid)["VmRSS"]))
            except (OSError, KeyError):
                return

    def peak_mib(self):
        return proc_status(self.pid)["VmHWM"] / 1024

    def stop(self):
        self.stop_evt.set()
        self.join(5)

    def summary(self):
        if not self.samples:
            return "no samples"
        step = max(1, len(self.samples) // 20)
        return ", ".join(f"{t:.1f}s:{kb / 1024:.0f}" for t, kb in self.samples[::step])


def publish(rb, queue, count):
    """warren-perf: one producer, persistent, confirms (window 1000), no consumer."""
    if not os.path.exists(PERF):
        pytest.fail(f"{PERF} not found: run `cargo build --release --workspace` first")
    cmd = [PERF, "run", "--uri", rb.broker.url, "--producers", "1", "--consumers", "0",
           "--count", str(count), "--size", str(SIZE), "--persistent", "--confirm", "1000",
           "--queue", queue, "--keep", "--json", "--quiet", "--stall-timeout", "60"]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, f"warren-perf failed ({r.returncode}): {r.stderr[-2000:]}"
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["kind"] == "summary", summary
    assert (summary["published"], summary["confirmed"], summary["nacked"]) == (count, count, 0), \
        summary
    return elapsed


def check_drain(rb, queue, count):
    """Drain with one consumer; every message exactly once, in order, intact."""
    state = {"next": 0, "bad": []}

    def on_message(c):
        n = state["next"]
        body = c.body
        seq = int.from_bytes(body[8:16], "big") if len(body) >= 16 else None
        if len(body) != SIZE or seq != n or body[16:] != bytes(SIZE - 16):
            if len(state["bad"]) < 10:
                state["bad"].append(f"#{n}: {len(body)} B, sequence {seq}")
        state["next"] = n + 1
        return False  # do not keep the bodies

    t0 = time.monotonic()
    drain(rb, queue, expected=count, prefetch=1000, ack_every=500, timeout=60,
          on_message=on_message)
    elapsed = time.monotonic() - t0
    assert state["next"] == count
    assert not state["bad"], f"out of order / corrupt: {state['bad']}"
    return elapsed


def message_count(rb, queue):
    from pika import spec
    c = rb.raw()
    try:
        c.open_channel(1)
        return c.rpc(1, spec.Queue.Declare(queue=queue, passive=True),
                     spec.Queue.DeclareOk).message_count
    finally:
        c.close()


@pytest.fixture
def warren(private_warren):
    if M * SIZE < BOUND_MIB * 2**20 / 2:
        pytest.fail(f"LONG_QUEUE_MESSAGES={M} x {SIZE} B is under half the "
                    f"{BOUND_MIB} MiB bound: a broker keeping the queue in memory would pass")
    return private_warren


def assert_bound(sampler, phase):
    peak = sampler.peak_mib()
    assert peak < BOUND_MIB, (
        f"broker RSS peaked at {peak:.0f} MiB ({phase}) with {M} x {SIZE} B queued; "
        f"bound {BOUND_MIB:.0f} MiB. RSS MiB over time: {sampler.summary()}")
    return peak


@pytest.mark.timeout(600)
def test_long_queue_stays_on_disk_and_drains_in_order(warren, uniq):
    q = uniq("q")
    sampler = RssSampler(warren.pid)
    sampler.start()
    try:
        t_pub = publish(warren, q, M)
        assert message_count(warren, q) == M
        time.sleep(1.0)  # observe the idle queue (a lagging write-behind would show)
        assert_bound(sampler, "publishing and idle")
        t_drain = check_drain(warren, q, M)
        peak = assert_bound(sampler, "draining")
    finally:
        sampler.stop()
    print(f"{M} x {SIZE} B: published in {t_pub:.1f}s, drained in {t_drain:.1f}s, "
          f"peak RSS {peak:.0f} MiB; RSS MiB over time: {sampler.summary()}")


@pytest.mark.timeout(600)
def test_long_queue_recovers_without_loading_it_into_memory(warren, uniq):
    q = uniq("q")
    t_pub = publish(warren, q, M)
    t0 = time.monotonic()
    warren.restart(graceful=False)  # SIGKILL: the slowest, fullest recovery
    t_recover = time.monotonic() - t0
    sampler = RssSampler(warren.pid)  # a new process: VmHWM covers recovery
    sampler.start()
    try:
        assert message_count(warren, q) == M
        assert_bound(sampler, "recovering")
        t_drain = check_drain(warren, q, M)
        peak = assert_bound(sampler, "draining after recovery")
    finally:
        sampler.stop()
    print(f"{M} x {SIZE} B: published in {t_pub:.1f}s, recovered in {t_recover:.1f}s, "
          f"drained in {t_drain:.1f}s, peak RSS {peak:.0f} MiB")
