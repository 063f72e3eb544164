"""Connection churn (Warren only: reads the broker's RSS): rounds of 1,000 idle AMQP
connections opened and closed (bench/churn.py, raw sockets) must leave the broker's
resident memory where it started. Nothing of a closed connection may stay reachable (a
leak), and the memory its buffers used must go back to the system rather than stay
resident in the allocator's arenas (the memory monitor trims them every 5 s)."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, WARREN_BIN


@pytest.fixture(autouse=True)
def warren_only(broker):
    if broker.is_reference:
        pytest.skip("starts and measures its own Warren")


def test_idle_connections_opened_and_closed_leave_no_memory_behind():
    r = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "churn.py"), "--warren", WARREN_BIN,
         "--rounds", "3", "--connections", "1000", "--settle", "6"],
        capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    fresh, after = res["rss_mib"][0], res["rss_mib"][1:]
    # The connections did take memory while open...
    assert min(res["rss_open_mib"]) - fresh > 10, res
    # ...and every round gives it back (before the trim, three rounds left ~50 MiB).
    assert max(after) - fresh < 12, res
