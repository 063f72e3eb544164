"""The browser clients themselves: MQTT.js (MQTT 3.1.1 and 5) and @stomp/stompjs over
WebSocket, run by Node.js exactly as a web page runs them, against Web-MQTT (/ws) and
Web-STOMP (/ws). The npm packages are installed on first use into
`target/ws-js-clients` (the npm registry is one of the package registries this
project uses). Warren only: the reference runs without the web plugins."""

import json
import os
import shutil
import subprocess
import uuid

import pytest

from test_cross_protocol_fixtures import *  # noqa: F401,F403

JS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "target", "ws-js-clients")
PACKAGES = ["mqtt@5", "@stomp/stompjs@7", "ws@8"]

SCRIPT = r"""
const mqtt = require('mqtt');
const { Client } = require('@stomp/stompjs');
Object.assign(global, { WebSocket: require('ws') });
const [mqttUrl, stompUrl, topic] = process.argv.slice(2);
const key = topic.split('/').join('.');
const out = (o) => console.log(JSON.stringify(o));
const got = [];
const done = () => { if (got.length === 6) { out({ done: got.sort() }); process.exit(0); } };
setTimeout(() => { out({ timeout: got }); process.exit(1); }, 15000);

const stomp = new Client({
  brokerURL: stompUrl,
  connectHeaders: { login: 'guest', passcode: 'guest', host: '/' },
  reconnectDelay: 0,
});
let ready = 0;
const start = () => {
  if (++ready < 3) return;
  m4.publish(topic, 'from mqtt.js', { qos: 1 });
  stomp.publish({ destination: '/topic/' + key, body: 'from stomp.js' });
};
stomp.onConnect = (frame) => {
  out({ stompConnected: frame.headers.version });
  // Publishing starts once the broker has the subscription (its RECEIPT): an MQTT
  // publish on another connection could otherwise overtake the SUBSCRIBE.
  stomp.watchForReceipt('sub-1', () => start());
  stomp.subscribe('/topic/' + key, (m) => { got.push('stomp:' + m.body); done(); },
                  { receipt: 'sub-1' });
};
stomp.activate();
const m4 = mqtt.connect(mqttUrl, { username: 'guest', password: 'guest', protocolVersion: 4 });
const m5 = mqtt.connect(mqttUrl, { username: 'guest', password: 'guest', protocolVersion: 5 });
for (const [name, c] of [['mqtt4', m4], ['mqtt5', m5]]) {
  c.on('message', (t, p) => { got.push(name + ':' + p.toString()); done(); });
  c.on('error', (e) => { out({ error: name + ': ' + e.message }); process.exit(1); });
  c.on('connect', () => c.subscribe(topic, { qos: 1 }, () => start()));
}
"""


@pytest.fixture(scope="module")
def js_clients():
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.fail("Node.js and npm are needed (apt-get install -y nodejs npm)", pytrace=False)
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "@stomp", "stompjs")):
        os.makedirs(JS_DIR, exist_ok=True)
        with open(os.path.join(JS_DIR, "package.json"), "w") as f:
            f.write('{"name": "ws-js-clients", "private": true}\n')
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", *PACKAGES],
                       cwd=JS_DIR, check=True, timeout=600)
    path = os.path.join(JS_DIR, "scenario.js")
    with open(path, "w") as f:
        f.write(SCRIPT)
    return path


def test_mqtt_js_and_stomp_js_over_websockets(proto, js_clients):
    require_warren(proto, "the reference runs without rabbitmq_web_mqtt/web_stomp")
    topic = f"js/{uuid.uuid4().hex[:8]}"
    r = subprocess.run(
        ["node", js_clients, f"ws://127.0.0.1:{proto.web_mqtt_port}/ws",
         f"ws://127.0.0.1:{proto.web_stomp_port}/ws", topic],
        cwd=JS_DIR, capture_output=True, timeout=60)
    lines = [json.loads(x) for x in r.stdout.decode().splitlines() if x.startswith("{")]
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert {"stompConnected": "1.2"} in lines
    assert lines[-1] == {"done": sorted(
        f"{who}:from {src}" for who in ("mqtt4", "mqtt5", "stomp") for src in ("mqtt.js", "stomp.js"))}
