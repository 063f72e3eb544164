"""Connections and channels in the UI, and force-closing a connection pika opened."""

import pika
import pytest

from conftest import q


def test_close_a_pika_connection(ui, broker):
    conn = broker.connect(client_properties={"connection_name": "ui-close-me"})
    ch = conn.channel()
    ch.confirm_delivery()
    try:
        ui.open("connections")
        row = ui.wait_text("table[data-list='connections'] tbody tr", "ui-close-me")
        assert "guest" in row.text and "AMQP 0-9-1" in row.text
        ui.follow(lambda: ui.text_row("table[data-list='connections'] tbody tr", "ui-close-me"))
        ui.wait_text("main .sub", "ui-close-me")
        ui.wait_text("#channels-card tbody tr", "1")
        ui.wait_text("main dl", "PLAIN")
        ui.click("#close-connection")
        reason = ui.field("reason")
        ui.fill(reason, "maintenance window")
        ui.confirm("Force close")
        ui.toast("ok", "Connection closed")
        ui.wait(lambda: ui.d.current_url.endswith("#/connections"), what="back to the list")
        ui.wait_gone("table[data-list='connections'] tbody tr", "ui-close-me")
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
            conn.process_data_events(time_limit=5)
            ch.basic_publish("", "nowhere", b"x")
        assert e.value.reply_code == 320
        assert "maintenance window" in e.value.reply_text
    finally:
        if conn.is_open:
            conn.close()


def test_close_from_the_list(ui, broker):
    conn = broker.connect(client_properties={"connection_name": "ui-close-from-list"})
    try:
        ui.open("connections")
        row = ui.wait_text("table[data-list='connections'] tbody tr", "ui-close-from-list")
        ui.press("Close", lambda: ui.text_row("table[data-list='connections'] tbody tr", "ui-close-from-list"))
        ui.confirm("Force close")
        ui.toast("ok", "Connection closed")
        ui.wait_gone("table[data-list='connections'] tbody tr", "ui-close-from-list")
    finally:
        if conn.is_open:
            try:
                conn.close()
            except Exception:
                pass


def test_channels_are_listed_with_their_details(ui, broker, uniq):
    name = uniq("q")
    conn = broker.connect(client_properties={"connection_name": "ui-channels"})
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare(name, auto_delete=True)
    ch.basic_qos(prefetch_count=3)
    ch.basic_consume(name, lambda *a: None, consumer_tag="chan-consumer")
    try:
        conns = broker.get("/api/connections")
        cname = next(c["name"] for c in conns if c["client_properties"].get("connection_name") == "ui-channels")
        ui.open("channels")
        row = ui.wait_text("table[data-list='channels'] tbody tr", cname)
        assert "C" in row.text.split()  # confirm mode
        ui.follow(lambda: ui.text_row("table[data-list='channels'] tbody tr", cname))
        ui.wait_text("main h1", cname)
        ui.wait_text("main table tbody tr", "chan-consumer")
        ui.wait_text("main dl", "Confirm mode")
    finally:
        conn.close()


def test_a_closed_connection_page_says_so(ui):
    ui.open("connections/" + q("127.0.0.1:1 -> 127.0.0.1:2"))
    ui.wait_text(".empty .title", "This connection is closed")
