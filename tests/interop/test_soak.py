"""The soak script (bench/soak.py) in miniature, so that it keeps working: 500 AMQP and
MQTT connections with traffic for 20 s against a Warren it starts itself; every message
must arrive exactly once. (The full run, 10,000 connections for minutes, is a bench/
script with committed results.)"""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, WARREN_BIN


@pytest.fixture(autouse=True)
def warren_only(broker):
    if broker.is_reference:
        pytest.skip("the soak script starts and measures its own Warren")


def soak(*args):
    r = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "soak.py"), "--warren", WARREN_BIN, *args],
        capture_output=True, text=True, timeout=180)
    lines = r.stdout.strip().splitlines()
    assert lines, f"no result (exit {r.returncode}): {r.stderr[-3000:]}"
    return r.returncode, json.loads(lines[-1]), r.stderr


def test_soak_in_miniature_delivers_every_message_once_across_protocols():
    code, res, err = soak("--amqp", "250", "--mqtt", "250", "--duration", "20",
                          "--interval", "2", "--report", "5", "--settle", "1")
    assert code == 0 and res["ok"], err[-3000:]
    assert res["connections"]["total"] == 500
    # 500 connections publishing every 2 s for 20 s.
    assert res["published"] > 4000
    assert res["published_amqp"] > 0 and res["published_mqtt"] > 0
    assert res["received"] == res["confirmed"] == res["published"]
    assert res["lost"] == res["duplicated"] == res["unconfirmed"] == 0
    assert 0 < res["rss_mib"]["fresh"] < res["rss_mib"]["open"]
    assert res["kib_per_connection"]["idle"] > 0
    assert len([s for s in res["samples"] if s["label"] == "traffic"]) >= 3


@pytest.mark.parametrize("fault,field", [("--self-test-drop", "lost"),
                                         ("--self-test-duplicate", "duplicated")])
def test_soak_fails_when_a_message_is_lost_or_duplicated(fault, field):
    # The script's own fault injection: it forgets (or counts twice) the first delivery
    # it gets, which its verification must catch.
    code, res, _ = soak("--amqp", "20", "--mqtt", "20", "--duration", "3", "--interval", "1",
                        "--report", "1", "--settle", "0.2", "--drain", "3", fault, "1")
    assert code == 1 and not res["ok"]
    assert res[field] == 1
