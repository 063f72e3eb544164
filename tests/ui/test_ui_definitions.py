"""Definitions export (a download) and import (an upload) in the UI."""

import glob
import json
import os
import time

from conftest import q


def test_export_downloads_the_definitions(ui, broker, uniq, download_dir):
    name = uniq("q")
    assert broker.api("PUT", f"/api/queues/%2F/{q(name)}", {"durable": True}).status_code == 201
    for f in glob.glob(os.path.join(download_dir, "*")):
        os.remove(f)
    ui.open("definitions")
    ui.click("#export-definitions")
    ui.toast("ok", "Definitions exported")
    files = ui.wait(lambda: [f for f in glob.glob(os.path.join(download_dir, "*.json"))], what="a downloaded file")
    time.sleep(0.3)
    with open(files[0]) as f:
        defs = json.load(f)
    assert os.path.basename(files[0]).startswith("warren_localhost_")
    assert any(x["name"] == name for x in defs["queues"])
    assert any(u["name"] == "guest" for u in defs["users"])
    assert {"users", "vhosts", "permissions", "policies", "queues", "exchanges", "bindings"} <= set(defs)
    broker.api("DELETE", f"/api/queues/%2F/{q(name)}")


def test_import_uploads_a_file(ui, broker, uniq, tmp_path):
    queue, exchange = uniq("q"), uniq("x")
    doc = {
        "queues": [{"name": queue, "vhost": "/", "durable": True, "auto_delete": False, "arguments": {"x-max-length": 7}}],
        "exchanges": [{"name": exchange, "vhost": "/", "type": "fanout", "durable": True, "auto_delete": False, "internal": False, "arguments": {}}],
        "bindings": [{"source": exchange, "vhost": "/", "destination": queue, "destination_type": "queue", "routing_key": "", "arguments": {}}],
    }
    path = tmp_path / "defs.json"
    path.write_text(json.dumps(doc))
    ui.open("definitions")
    ui.wait_css("#import-file").send_keys(str(path))
    ui.click("#import-definitions")
    ui.toast("ok", "Definitions imported")
    assert broker.get(f"/api/queues/%2F/{q(queue)}")["arguments"] == {"x-max-length": 7}
    assert broker.get(f"/api/exchanges/%2F/{q(exchange)}")["type"] == "fanout"
    assert [b["destination"] for b in broker.get(f"/api/exchanges/%2F/{q(exchange)}/bindings/source")] == [queue]
    broker.api("DELETE", f"/api/queues/%2F/{q(queue)}")
    broker.api("DELETE", f"/api/exchanges/%2F/{q(exchange)}")


def test_import_of_a_broken_file_shows_the_error(ui, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    ui.open("definitions")
    ui.wait_css("#import-file").send_keys(str(path))
    ui.click("#import-definitions")
    assert "not JSON" in ui.toast("error")
