"""Queues in the UI: add, publish (UI form and pika), live counts and rate chart, get
messages with RabbitMQ's ack modes, bindings, purge, delete, API errors shown."""

import threading
import time

from conftest import q


def figure(ui, key):
    els = ui.css(f"[data-figure='{key}'] .value")
    return els[0].text.replace(",", "") if els else None


def add_queue(ui, name, args=()):
    ui.open("queues")
    ui.click("#add-queue")
    ui.fill(ui.field("name"), name)
    ui.select(ui.field("durable"), "false")
    keys = ui.css("dialog[open] [name='q-arg-key']")
    for i, (k, v, t) in enumerate(args):
        keys = ui.css("dialog[open] [name='q-arg-key']")
        ui.fill(keys[i], k)
        ui.fill(ui.css("dialog[open] [name='q-arg-value']")[i], v)
        ui.select(ui.css("dialog[open] [name='q-arg-type']")[i], t)
    ui.button("Add queue").click()


class Publisher(threading.Thread):
    """Publishes to a queue every 50 ms until stopped (so rates are non-zero for a while)."""

    def __init__(self, broker, queue):
        super().__init__(daemon=True)
        self.conn = broker.connect()
        self.ch = self.conn.channel()
        self.queue = queue
        self.count = 0
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            self.ch.basic_publish("", self.queue, f"pika {self.count}".encode())
            self.count += 1
            self.conn.sleep(0.05)

    def stop(self):
        self.stopping.set()
        self.join()
        self.conn.close()


def test_queue_lifecycle(ui, broker, uniq):
    name = uniq("q")
    add_queue(ui, name)
    ui.toast("ok", "Queue added")
    row = ui.row("queues", name)
    assert "running" in row.text
    info = broker.get(f"/api/queues/%2F/{q(name)}")
    assert info["durable"] is False

    # Publish through the exchange page's form (the default exchange routes by name).
    ui.go("exchanges/%2F/amq.default")
    ui.wait_text("main h1", "(AMQP default)")
    form = ui.wait_css("#publish-card form")
    ui.fill(ui.field("routing_key", form), name)
    ui.fill(ui.field("payload", form), "hello from the UI")
    ui.select(ui.field("delivery_mode", form), "2")
    ui.button("Publish message", form).click()
    ui.toast("ok", "Message published")

    # ... and with pika, steadily, while the queue's page is open.
    ui.go(f"queues/%2F/{q(name)}")
    ui.wait_text("main h1", name)
    pub = Publisher(broker, name)
    pub.start()
    try:
        # The rate chart moves: the publish series gets a non-zero value and a line.
        ui.wait(lambda: float(ui.wait_css(".chart-block [data-series='publish'][data-value]").get_attribute("data-value") or 0) > 0,
                timeout=20, what="a publish rate above 0")
        def publish_line():
            # the chart is redrawn on each refresh: the path may be absent for a moment
            paths = ui.css(".chart[data-chart='rates'] path[data-series='publish']")
            return bool(paths) and "L" in (paths[0].get_attribute("d") or "")
        ui.wait(publish_line, timeout=20, what="a publish rate line")
        ui.wait(lambda: int(figure(ui, "total") or 0) > 1, what="the total to grow")
    finally:
        pub.stop()
    total = 1 + pub.count
    ui.wait(lambda: figure(ui, "total") == str(total), timeout=20, what=f"{total} messages")
    ui.wait(lambda: ui.wait_css("#queued-card .legend [data-series='total']").get_attribute("data-value") == str(total),
            what="the queued chart to show the total")

    # The list shows the same counts.
    ui.go("queues")
    ui.wait(lambda: str(total) in ui.row("queues", name).text, what="the count in the list")

    # Get messages: nack/requeue leaves them; the first is the UI's, persistent.
    ui.go(f"queues/%2F/{q(name)}")
    get = ui.wait_css("#get-card form")
    ui.fill(ui.field("count", get), "2")
    ui.button("Get message(s)", get).click()
    msgs = ui.wait(lambda: ui.css("#got-messages .message") if len(ui.css("#got-messages .message")) == 2 else None, what="2 messages")
    assert msgs[0].find_element("css selector", "pre.payload").text == "hello from the UI"
    assert "delivery_mode: 2" in msgs[0].text
    assert msgs[1].find_element("css selector", "pre.payload").text == "pika 0"
    ui.wait(lambda: figure(ui, "total") == str(total), what="requeued messages still counted")

    # Getting them again shows them redelivered; automatic ack takes one away.
    ui.select(ui.field("ackmode", get), "ack_requeue_false")
    ui.fill(ui.field("count", get), "1")
    ui.button("Get message(s)", get).click()
    ui.wait(lambda: "redelivered" in ui.wait_css("#got-messages .message").text, what="a redelivered message")
    ui.wait(lambda: figure(ui, "total") == str(total - 1), what="one message fewer")

    # Purge.
    ui.click("#purge-queue")
    ui.confirm("Purge")
    ui.toast("ok", "Queue purged")
    ui.wait(lambda: figure(ui, "total") == "0", what="an empty queue")
    assert broker.get(f"/api/queues/%2F/{q(name)}")["messages"] == 0

    # Delete.
    ui.click("#delete-queue")
    ui.confirm("Delete")
    ui.toast("ok", "Queue deleted")
    ui.wait(lambda: ui.d.current_url.endswith("#/queues"), what="back to the list")
    ui.no_row("queues", name)
    assert not broker.exists(f"/api/queues/%2F/{q(name)}")


def test_add_queue_with_arguments(ui, broker, uniq):
    name = uniq("q")
    add_queue(ui, name, [("x-max-length", "10", "Number"), ("x-overflow", "reject-publish", "String")])
    ui.toast("ok", "Queue added")
    args = broker.get(f"/api/queues/%2F/{q(name)}")["arguments"]
    assert args == {"x-max-length": 10, "x-overflow": "reject-publish"}
    row = ui.row("queues", name)
    assert "Lim" in row.text and "Ovfl" in row.text
    broker.api("DELETE", f"/api/queues/%2F/{q(name)}")


def test_api_error_reason_is_shown(ui, broker, uniq):
    name = uniq("q")
    add_queue(ui, name, [("x-max-length", "ten", "String")])
    text = ui.toast("error")
    assert "bad_request" in text and "invalid arg 'x-max-length'" in text
    # The dialog stays open with the reason, so the user can fix the value.
    assert "invalid arg 'x-max-length'" in ui.wait_css("dialog[open] .form-error").text
    assert not broker.exists(f"/api/queues/%2F/{q(name)}")


def test_bindings_add_and_remove(ui, broker, uniq):
    name = uniq("q")
    assert broker.api("PUT", f"/api/queues/%2F/{q(name)}", {}).status_code == 201
    ui.open(f"queues/%2F/{q(name)}")
    card = ui.wait_css("#bindings-card")
    ui.wait_text("#bindings-card tbody tr", "(Default exchange binding)")
    form = ui.wait_css("#bindings-card form")
    ui.fill(ui.field("source", form), "amq.direct")
    ui.fill(ui.field("routing_key", form), "k.1")
    ui.button("Bind", form).click()
    ui.toast("ok", "Binding added")
    row = ui.wait_text("#bindings-card tbody tr", "amq.direct")
    assert "k.1" in row.text
    keys = [b["routing_key"] for b in broker.get(f"/api/bindings/%2F/e/amq.direct/q/{q(name)}")]
    assert keys == ["k.1"]
    ui.press("Unbind", lambda: ui.text_row("#bindings-card tbody tr", "amq.direct"))
    ui.confirm("Unbind")
    ui.toast("ok", "Binding removed")
    ui.wait_gone("#bindings-card tbody tr", "amq.direct")
    assert broker.get(f"/api/bindings/%2F/e/amq.direct/q/{q(name)}") == []
    assert card.is_displayed()
    broker.api("DELETE", f"/api/queues/%2F/{q(name)}")


def test_consumers_are_listed(ui, broker, uniq):
    name = uniq("q")
    conn = broker.connect()
    ch = conn.channel()
    ch.queue_declare(name, auto_delete=True)
    ch.basic_qos(prefetch_count=7)
    ch.basic_consume(name, lambda *a: None, consumer_tag="ui-test-consumer")
    try:
        ui.open(f"queues/%2F/{q(name)}")
        row = ui.wait_text("#consumers-card tbody tr", "ui-test-consumer")
        assert "7" in row.text
        ui.wait(lambda: figure(ui, "consumers") == "1", what="one consumer")
    finally:
        conn.close()


def test_vhost_selector_filters_lists(ui, broker, uniq):
    vhost = uniq("vh")
    qa, qb = uniq("qa"), uniq("qb")
    assert broker.api("PUT", f"/api/vhosts/{q(vhost)}", {}).status_code == 201
    assert broker.api("PUT", f"/api/permissions/{q(vhost)}/guest", {"configure": ".*", "write": ".*", "read": ".*"}).status_code in (201, 204)
    assert broker.api("PUT", f"/api/queues/{q(vhost)}/{qa}", {}).status_code == 201
    assert broker.api("PUT", f"/api/queues/%2F/{qb}", {}).status_code == 201
    try:
        ui.open("queues")
        ui.row("queues", qa)
        ui.row("queues", qb)
        sel = ui.wait_css("#vhost-select")
        ui.wait(lambda: vhost in sel.text, what="the new vhost in the selector")
        ui.select(sel, vhost)
        ui.row("queues", qa)
        ui.no_row("queues", qb)
        # New queues go to the selected vhost by default.
        ui.click("#add-queue")
        assert ui.field("vhost").get_attribute("value") == vhost
    finally:
        ui.d.execute_script("sessionStorage.removeItem('warren.vhost')")
        broker.api("DELETE", f"/api/vhosts/{q(vhost)}")
        broker.api("DELETE", f"/api/queues/%2F/{qb}")


def test_filter_and_sort(ui, broker, uniq):
    names = [uniq(f"sort{i}") for i in range(3)]
    for i, n in enumerate(names):
        assert broker.api("PUT", f"/api/queues/%2F/{q(n)}", {}).status_code == 201
        for _ in range(i):
            broker.api("POST", f"/api/exchanges/%2F/amq.default/publish",
                       {"properties": {}, "routing_key": n, "payload": "x", "payload_encoding": "string"})
    try:
        ui.open("queues")
        ui.fill(ui.wait_css(".table-tools input[name='filter']"), "sort")
        ui.wait(lambda: {r.get_attribute("data-name") for r in ui.css("table[data-list='queues'] tbody tr")} == set(names), what="filtered rows")
        ui.click("table[data-list='queues'] th", "TOTAL")  # numbers sort descending first
        ui.wait(lambda: [r.get_attribute("data-name") for r in ui.css("table[data-list='queues'] tbody tr")] == names[::-1], what="sorted by total")
        ui.fill(ui.wait_css(".table-tools input[name='filter']"), "no-such-queue-here")
        ui.wait_text("table[data-list='queues'] tbody", "No queues match")
    finally:
        ui.d.execute_script("sessionStorage.removeItem('warren.list.queues')")
        for n in names:
            broker.api("DELETE", f"/api/queues/%2F/{q(n)}")


def test_move_messages(ui, broker, uniq):
    src, dest = uniq("src"), uniq("dest")
    assert broker.api("PUT", f"/api/queues/%2F/{q(src)}", {"durable": True}).status_code == 201
    for i in range(5):
        broker.api("POST", "/api/exchanges/%2F/amq.default/publish",
                   {"properties": {"delivery_mode": 2}, "routing_key": src, "payload": f"m{i}", "payload_encoding": "string"})
    try:
        ui.open(f"queues/%2F/{q(src)}")
        ui.wait(lambda: figure(ui, "total") == "5", what="5 messages")
        form = ui.wait_css("#move-card form")
        ui.fill(ui.field("dest-queue", form), dest)
        ui.button("Move messages", form).click()
        assert dest in ui.toast("ok", "Messages moved")
        ui.wait(lambda: figure(ui, "total") == "0", what="an empty source")
        # The destination was created (durable, as RabbitMQ's shovel declares it) and
        # has the messages in order.
        assert broker.get(f"/api/queues/%2F/{q(dest)}")["durable"] is True
        got = broker.api("POST", f"/api/queues/%2F/{q(dest)}/get", {"count": 10, "ackmode": "ack_requeue_false", "encoding": "auto"}).json()
        assert [m["payload"] for m in got] == [f"m{i}" for i in range(5)]
        # Moving to itself is refused in the form.
        ui.fill(ui.field("dest-queue", form), src)
        ui.button("Move messages", form).click()
        assert "is this queue" in ui.toast("error")
    finally:
        broker.api("DELETE", f"/api/queues/%2F/{q(src)}")
        broker.api("DELETE", f"/api/queues/%2F/{q(dest)}")


def test_live_refresh_updates_rows_in_place(ui, broker, uniq):
    """A refresh replaces only what changed: the row (and the button under the pointer)
    stays the same element while its counts move."""
    name = uniq("q")
    assert broker.api("PUT", f"/api/queues/%2F/{q(name)}", {}).status_code == 201
    try:
        ui.open("queues", refresh_ms=2000)
        row = ui.row("queues", name)
        name_cell = row.find_elements("css selector", "td.name")[0]
        broker.api("POST", "/api/exchanges/%2F/amq.default/publish",
                   {"properties": {}, "routing_key": name, "payload": "x", "payload_encoding": "string"})
        ui.wait(lambda: " 1 " in f" {row.text} ", what="the count to reach 1 in the same row")
        time.sleep(4.5)  # two more refreshes
        assert row.get_attribute("data-name") == name and name_cell.text == name
    finally:
        broker.api("DELETE", f"/api/queues/%2F/{q(name)}")


def test_stream_page_shows_the_log_and_consumer_offsets(ui, broker, uniq):
    """A stream added in the UI form: its page shows offsets, segments, size, each
    consumer's position and lag, and no purge / get / move (streams refuse them)."""
    name = uniq("stream")
    ui.open("queues")
    ui.click("#add-queue")
    ui.fill(ui.field("name"), name)
    ui.select(ui.field("queue_type"), "stream")
    ui.button("Add queue").click()
    ui.toast("ok", "Queue added")
    info = broker.get(f"/api/queues/%2F/{q(name)}")
    assert (info["type"], info["durable"]) == ("stream", True)

    conn = broker.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    for i in range(30):
        ch.basic_publish("", name, b"event %d" % i)
    reader = broker.connect()
    rch = reader.channel()
    rch.basic_qos(prefetch_count=4)
    rch.basic_consume(name, lambda *a: None, arguments={"x-stream-offset": 20}, consumer_tag="audit")
    reader.process_data_events(0.5)
    try:
        ui.go(f"queues/%2F/{q(name)}")
        ui.wait_text("main h1", name)
        card = ui.wait_css("#stream-card")

        def shown(key):
            els = ui.css(f"#stream-card [data-stream='{key}'] .value")
            return els[0].text.replace(",", "") if els else None

        ui.wait(lambda: shown("last") == "29", timeout=20, what="last offset 29")
        assert shown("first") == "0"
        assert shown("segments") == "1"
        row = ui.wait_css("#stream-readers tr[data-consumer='audit']")
        # Four sent from offset 20, none acked: next is 24, six behind the end (30).
        assert row.text.split()[-2:] == ["24", "6"], row.text
        assert card.is_displayed()
        assert not ui.css("#purge-queue")[0].is_displayed()
        assert not ui.css("#get-card")[0].is_displayed()
    finally:
        reader.close()
        conn.close()
