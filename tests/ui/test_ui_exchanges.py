"""Exchanges in the UI: add, bind from the exchange page, publish (routed or not),
delete."""

from conftest import q


def test_exchange_lifecycle(ui, broker, uniq):
    name, queue = uniq("x"), uniq("q")
    assert broker.api("PUT", f"/api/queues/%2F/{q(queue)}", {}).status_code == 201
    ui.open("exchanges")
    ui.click("#add-exchange")
    ui.fill(ui.field("name"), name)
    ui.select(ui.field("type"), "topic")
    ui.button("Add exchange").click()
    ui.toast("ok", "Exchange added")
    row = ui.row("exchanges", name)
    assert "topic" in row.text
    x = broker.get(f"/api/exchanges/%2F/{q(name)}")
    assert x["type"] == "topic" and x["durable"] is True

    ui.follow(lambda: ui.row_named(name, "table[data-list='exchanges'] tbody tr"))
    ui.wait_text("main h1", name)
    form = ui.wait_css("#bindings-card form")
    ui.fill(ui.field("destination", form), queue)
    ui.fill(ui.field("routing_key", form), "orders.*")
    ui.button("Bind", form).click()
    ui.toast("ok", "Binding added")
    ui.wait_text("#bindings-card tbody tr", queue)

    pub = ui.wait_css("#publish-card form")
    ui.fill(ui.field("routing_key", pub), "orders.eu")
    ui.fill(ui.field("payload", pub), "routed")
    ui.button("Publish message", pub).click()
    ui.toast("ok", "Message published")
    ui.fill(ui.field("routing_key", pub), "invoices.eu")
    ui.button("Publish message", pub).click()
    assert "not routed" in ui.toast("warn")
    assert broker.get(f"/api/queues/%2F/{q(queue)}")["messages"] == 1

    ui.click("#delete-exchange")
    ui.confirm("Delete")
    ui.toast("ok", "Exchange deleted")
    ui.wait(lambda: ui.d.current_url.endswith("#/exchanges"), what="back to the list")
    ui.no_row("exchanges", name)
    assert not broker.exists(f"/api/exchanges/%2F/{q(name)}")
    broker.api("DELETE", f"/api/queues/%2F/{q(queue)}")


def test_headers_and_properties_are_published(ui, broker, uniq):
    queue = uniq("q")
    assert broker.api("PUT", f"/api/queues/%2F/{q(queue)}", {}).status_code == 201
    ui.open(f"queues/%2F/{q(queue)}")
    pub = ui.wait_css("#publish-card form")
    ui.fill(ui.field("header-key", pub), "tenant")
    ui.fill(ui.field("header-value", pub), "acme")
    ui.button("content_type", pub).click()  # quick-add fills the key and a typical value
    ui.fill(ui.field("payload", pub), '{"a": 1}')
    ui.button("Publish message", pub).click()
    ui.toast("ok", "Message published")
    msg = broker.api("POST", f"/api/queues/%2F/{q(queue)}/get", {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"}).json()[0]
    assert msg["properties"]["headers"] == {"tenant": "acme"}
    assert msg["properties"]["content_type"] == "application/json"
    assert msg["payload"] == '{"a": 1}'
    broker.api("DELETE", f"/api/queues/%2F/{q(queue)}")


def test_default_exchange_cannot_be_deleted_or_bound(ui):
    ui.open("exchanges/%2F/amq.default")
    ui.wait_text("main h1", "(AMQP default)")
    ui.wait_text("#bindings-card", "Bound to every queue")
    assert not ui.css("#delete-exchange")
    assert not ui.css("#bindings-card form")


def test_missing_exchange_has_an_empty_state(ui):
    ui.open("exchanges/%2F/no-such-exchange")
    ui.wait_text(".empty .title", "This exchange does not exist")
