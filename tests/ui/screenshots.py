"""Screenshots of the web UI with realistic data, for the README (docs/screenshots/).

Starts a private Warren (as the tests do), gives it a small shop's topology and traffic
(vhosts, users, policies, exchanges, bindings, queues with backlogs, publishers and
consumers over AMQP), lets the live charts fill for a while, and saves a PNG per page.

Run: scripts/ui-screenshots [output dir]   (default docs/screenshots)
"""

import math
import os
import random
import sys
import threading
import time

import pika

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import ROOT, Broker, UI, make_driver, q  # noqa: E402

WIDTH = 1440
WARMUP = float(os.environ.get("SCREENSHOT_WARMUP", "75"))


def setup(b):
    put = lambda path, body=None: b.api("PUT", path, body or {})  # noqa: E731
    put("/api/vhosts/staging", {"description": "Pre-production", "tags": "qa"})
    put("/api/vhosts/analytics", {"description": "Event pipeline"})
    for vh in ("staging", "analytics"):
        put(f"/api/permissions/{vh}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
    put("/api/users/orders-service", {"password": "pw", "tags": ""})
    put("/api/users/ops", {"password": "pw", "tags": "monitoring"})
    put("/api/users/alice", {"password": "pw", "tags": "administrator"})
    put("/api/permissions/%2F/orders-service", {"configure": "^orders\\.", "write": "^(orders|amq\\.topic)", "read": "^orders\\."})
    put("/api/permissions/%2F/ops", {"configure": "", "write": "", "read": ".*"})
    put("/api/policies/%2F/orders-dlx", {"pattern": "^orders\\.", "apply-to": "queues", "priority": 1,
                                         "definition": {"dead-letter-exchange": "orders.dlx", "max-length": 100000}})
    put("/api/policies/%2F/short-lived", {"pattern": "^tmp\\.", "apply-to": "queues", "definition": {"message-ttl": 60000, "expires": 600000}})
    put("/api/policies/analytics/events-cap", {"pattern": ".*", "apply-to": "queues", "definition": {"max-length-bytes": 1073741824, "overflow": "drop-head"}})
    put("/api/exchanges/%2F/orders", {"type": "topic", "durable": True})
    put("/api/exchanges/%2F/orders.dlx", {"type": "fanout", "durable": True})
    put("/api/exchanges/%2F/notifications", {"type": "fanout", "durable": True})
    put("/api/exchanges/analytics/events", {"type": "topic", "durable": True})
    queues = {
        "orders.created": ("orders", "order.created"),
        "orders.paid": ("orders", "order.paid"),
        "orders.shipping": ("orders", "order.*.shipping"),
        "orders.dead-letters": ("orders.dlx", ""),
        "notifications.email": ("notifications", ""),
        "notifications.sms": ("notifications", ""),
        "billing.invoices": (None, None),
    }
    for name, (x, key) in queues.items():
        put(f"/api/queues/%2F/{q(name)}", {"durable": True, "arguments": {"x-queue-type": "classic"} if name.startswith("billing") else {}})
        if x:
            b.api("POST", f"/api/bindings/%2F/e/{x}/q/{q(name)}", {"routing_key": key})
    put("/api/queues/%2F/tmp.report-42", {"durable": False, "auto_delete": False})
    for name in ("clicks", "page-views", "searches"):
        put(f"/api/queues/analytics/{name}", {"durable": True, "arguments": {"x-max-priority": 5} if name == "searches" else {}})
        b.api("POST", f"/api/bindings/analytics/e/events/q/{name}", {"routing_key": f"web.{name}.#"})
    for name in ("deploys", "test-results"):
        put(f"/api/queues/staging/{name}", {"durable": True})


class Traffic:
    """Publishers and consumers with different speeds, so queues grow and shrink."""

    def __init__(self, b):
        self.b = b
        self.stop = threading.Event()
        self.threads = []
        self.conns = []

    def publisher(self, vhost, exchange, keys, rate, name, confirm=False):
        """Publishes about `rate` messages a second, the rate drifting slowly up and
        down so the charts have some shape."""
        def run():
            c = self.b.connect(vhost=vhost, client_properties={"connection_name": name, "product": "order-api", "version": "2.4.1"})
            self.conns.append(c)
            ch = c.channel()
            if confirm:
                ch.confirm_delivery()
            i = 0
            t0 = time.time()
            while not self.stop.is_set():
                t = time.time() - t0
                want = rate * (t + 12 * (1 - math.cos(t / 12)) * 0.5)
                while i < want:
                    key = random.choice(keys)
                    ch.basic_publish(exchange, key, b'{"id": %d, "total": 42.5}' % i,
                                     pika.BasicProperties(content_type="application/json", delivery_mode=2))
                    i += 1
                c.sleep(0.1)
            c.close()
        self.start(run)

    def consumer(self, vhost, queue, per_sec, name, prefetch=20):
        def run():
            c = self.b.connect(vhost=vhost, client_properties={"connection_name": name, "product": "worker", "version": "1.9.0"})
            self.conns.append(c)
            ch = c.channel()
            ch.basic_qos(prefetch_count=prefetch)
            pending = []

            def on_message(ch_, method, props, body):
                pending.append(method.delivery_tag)

            ch.basic_consume(queue, on_message, consumer_tag=f"{name}-1")
            t0 = time.time()
            acked = 0
            while not self.stop.is_set():
                c.process_data_events(time_limit=0.1)
                n = min(len(pending), int(per_sec * (time.time() - t0)) - acked)
                for tag in pending[:n]:
                    ch.basic_ack(tag)
                del pending[:n]
                acked += max(0, n)
            c.close()
        self.start(run)

    def start(self, f):
        def guarded():
            try:
                f()
            except Exception as e:  # a closed connection at the end is fine
                if not self.stop.is_set():
                    print("traffic:", e, file=sys.stderr)
        t = threading.Thread(target=guarded, daemon=True)
        t.start()
        self.threads.append(t)

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)


def backlog(b):
    """Queues that nothing consumes: invoices waiting, dead letters."""
    c = b.connect()
    ch = c.channel()
    for i in range(1200):
        ch.basic_publish("", "billing.invoices", b'{"invoice": %d}' % i,
                         pika.BasicProperties(delivery_mode=2, content_type="application/json"))
    for i in range(37):
        ch.basic_publish("orders.dlx", "", b'{"id": %d, "error": "card declined"}' % i, pika.BasicProperties(delivery_mode=2))
    c.close()


def shoot(ui, out, name, route, wait_for, full=True, height=900, before=None):
    ui.d.set_window_size(WIDTH, height)
    ui.go(route) if route is not None else None
    ui.wait_css(wait_for, timeout=30)
    if before:
        before()
    time.sleep(1.5)
    ui.d.execute_script("document.querySelectorAll('.toast').forEach(t => t.remove())")
    if full:
        h = ui.d.execute_script("return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)")
        height = min(max(h, height), 2600)
    ui.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                         {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False})
    time.sleep(0.8)
    path = os.path.join(out, f"{name}.png")
    ui.d.save_screenshot(path)
    ui.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    print("wrote", os.path.relpath(path, ROOT))


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "docs", "screenshots"))
    os.makedirs(out, exist_ok=True)
    random.seed(7)
    b = Broker()
    d = make_driver(width=WIDTH, height=900)
    traffic = Traffic(b)
    try:
        setup(b)
        backlog(b)
        traffic.publisher("/", "orders", ["order.created", "order.paid", "order.eu.shipping", "order.us.shipping"], 24, "order-api-1", confirm=True)
        traffic.publisher("/", "notifications", [""], 8, "notifier")
        traffic.publisher("analytics", "events", ["web.clicks.home", "web.page-views.cart", "web.searches.q"], 30, "web-frontend")
        traffic.consumer("/", "orders.created", 40, "fulfilment")
        traffic.consumer("/", "orders.paid", 3, "payments", prefetch=10)
        traffic.consumer("/", "notifications.email", 12, "mailer")
        traffic.consumer("analytics", "clicks", 14, "clickhouse-sink")
        ui = UI(d, b, None)

        ui.open(login=False)
        ui.fill(ui.wait_css("#login-username"), "guest")
        time.sleep(0.3)
        shoot(ui, out, "login", None, "#login-username", full=False, height=720)

        ui.open("", refresh_ms=2000)
        # Charts over the last minute, so the warm-up fills them.
        ui.d.execute_script("localStorage.setItem('warren.chartWindow', '60')")
        ui.d.refresh()
        ui.wait_css("main#main")
        print(f"letting the charts fill for {WARMUP:.0f} s ...")
        time.sleep(WARMUP)
        shoot(ui, out, "overview", "", "#rates-card path[data-series='publish']")
        shoot(ui, out, "queues", "queues", "table[data-list='queues'] tbody tr[data-name='orders.created']")

        def get_two():
            form = ui.wait_css("#get-card form")
            ui.fill(ui.field("count", form), "2")
            ui.button("Get message(s)", form).click()
            ui.wait(lambda: len(ui.css("#got-messages .message")) == 2, what="messages")
        ui.go("queues/%2F/orders.paid")
        time.sleep(WARMUP / 2)
        shoot(ui, out, "queue", None, "#consumers-card tbody tr", before=get_two)
        shoot(ui, out, "exchanges", "exchanges", "table[data-list='exchanges'] tbody tr[data-name='orders']")
        shoot(ui, out, "exchange", "exchanges/%2F/orders", "#bindings-card tbody tr")
        shoot(ui, out, "connections", "connections", "table[data-list='connections'] tbody tr")
        shoot(ui, out, "channels", "channels", "table[data-list='channels'] tbody tr")
        shoot(ui, out, "users", "users", "main tbody tr[data-name='alice']")
        shoot(ui, out, "policies", "policies", "main tbody tr[data-name='orders-dlx']")
        shoot(ui, out, "definitions", "definitions", "#export-card")
    finally:
        traffic.close()
        d.quit()
        b.stop()


if __name__ == "__main__":
    main()
