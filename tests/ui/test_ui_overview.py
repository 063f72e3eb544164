"""The overview: totals, live charts, node figures, churn, listeners; refresh control."""

import time


def test_overview_shows_totals_node_and_listeners(ui, broker):
    conn = broker.connect()
    conn.channel()
    try:
        ui.open("")
        ui.wait_text("main h1", "Overview")
        tile = ui.wait_css("[data-tile='connections'] .value")
        ui.wait(lambda: int(tile.text.replace(",", "")) >= 1, what="a connection counted")
        ui.wait_text("#node-card", "warren@localhost")
        node = ui.wait_css("#node-card").text
        for label in ("Memory", "File descriptors", "Disk free", "Uptime"):
            assert label in node
        listeners = ui.wait_css("#listeners-card").text
        assert "amqp" in listeners and str(broker.amqp_port) in listeners
        assert "http" in listeners and str(broker.http_port) in listeners
        churn = ui.wait_css("#churn-card").text
        assert "Connections" in churn and "Channels" in churn
    finally:
        conn.close()


def test_charts_move_with_traffic(ui, broker, uniq):
    name = uniq("q")
    conn = broker.connect()
    ch = conn.channel()
    ch.queue_declare(name, auto_delete=False)
    try:
        ui.open("")
        ui.wait_text("main h1", "Overview")
        deadline = time.time() + 25
        seen = False
        while time.time() < deadline and not seen:
            for i in range(10):
                ch.basic_publish("", name, b"m")
            conn.sleep(0.2)
            v = ui.css("#rates-card .legend [data-series='publish']")
            seen = bool(v) and float(v[0].get_attribute("data-value") or 0) > 0
        assert seen, "the publish rate never rose above 0"
        ui.wait(lambda: "L" in ui.wait_css("#rates-card path[data-series='publish']").get_attribute("d"), what="a line")
        # The legend is redrawn with every sample: find it afresh each time.
        ui.wait(lambda: int(float(ui.wait_css("#queued-card .legend [data-series='ready']").get_attribute("data-value") or 0)) > 0,
                what="queued messages in the chart")
        # Hiding a series from the legend takes its line away.
        ui.wait_css("#rates-card .legend [data-series='publish']").click()
        ui.wait(lambda: not ui.css("#rates-card path[data-series='publish']"), what="the hidden line to go")
        ui.wait_css("#rates-card .legend [data-series='publish']").click()
    finally:
        ch.queue_delete(name)
        conn.close()


def test_refresh_can_be_paused(ui):
    ui.open("")
    ui.select(ui.wait_css("#refresh-select"), "0")
    ui.wait_text("#live", "Paused")
    ui.select(ui.wait_css("#refresh-select"), "2000")
    ui.wait_text("#live", "Live")


def test_unknown_page(ui):
    ui.open("no/such/page")
    ui.wait_text(".empty .title", "There is no such page")


def test_narrow_screen_has_no_horizontal_page_scroll(ui):
    ui.d.set_window_size(420, 900)
    try:
        for route in ("", "queues", "connections", "users"):
            ui.open(route)
            ui.wait_css("main h1")
            time.sleep(0.5)
            width = ui.d.execute_script("return document.documentElement.scrollWidth")
            inner = ui.d.execute_script("return window.innerWidth")
            assert width <= inner, f"#{route} scrolls sideways ({width} > {inner})"
    finally:
        ui.d.set_window_size(1400, 1000)
