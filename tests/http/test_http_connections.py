"""Connections, channels and consumers as the API lists them, and closing a connection
through the API: the client gets CONNECTION_FORCED with RabbitMQ's text."""

import pika
import pytest

from helpers import find_connection, local_port, make_user, q, wait_for


@pytest.fixture
def client(warren):
    c = warren.connect(client_properties={"connection_name": "http-test-client"})
    yield c
    if c.is_open:
        c.close()


def mine(c):
    port = local_port(c)
    return lambda x: x["peer_port"] == port


def test_connection_fields(api, warren, client):
    c = find_connection(api, mine(client))
    assert c["name"] == f"127.0.0.1:{local_port(client)} -> 127.0.0.1:{warren.amqp_port}"
    assert c["user"] == "guest" and c["vhost"] == "/"
    assert c["protocol"] == "AMQP 0-9-1" and c["type"] == "network"
    assert c["user_provided_name"] == "http-test-client"
    assert c["client_properties"]["product"] == "Pika Python Client Library"
    assert c["client_properties"]["capabilities"]["publisher_confirms"] is True
    assert c["port"] == warren.amqp_port and c["peer_host"] == "127.0.0.1"
    assert c["frame_max"] == 131072 and c["channel_max"] == 2047 and c["timeout"] == 60
    assert c["recv_oct"] > 0 and c["send_oct"] > 0
    assert c["state"] == "running" and c["node"] == "warren@localhost"
    one = api.get(f"/api/connections/{q(c['name'])}").json()
    assert one["name"] == c["name"]
    assert any(x["name"] == c["name"] for x in api.get("/api/vhosts/%2F/connections").json())
    assert any(x["name"] == c["name"] for x in api.get("/api/connections/username/guest").json())


def test_channels_with_prefetch_confirm_tx_unacked_and_consumers(api, warren, client, uniq):
    name = uniq("q")
    ch1 = client.channel()
    ch1.confirm_delivery()
    ch1.queue_declare(name)
    for _ in range(5):
        ch1.basic_publish("", name, b"m")
    ch2 = client.channel()
    ch2.basic_qos(prefetch_count=3)
    ch2.basic_consume(name, lambda *a: None, consumer_tag="ctag-http")
    ch3 = client.channel()
    ch3.tx_select()
    client.process_data_events(0.3)
    c = find_connection(api, mine(client))
    chans = {x["number"]: x for x in api.get(f"/api/connections/{q(c['name'])}/channels").json()}
    assert chans[ch1.channel_number]["confirm"] is True
    assert chans[ch1.channel_number]["message_stats"]["publish"] == 5
    assert chans[ch2.channel_number]["prefetch_count"] == 3
    assert chans[ch2.channel_number]["consumer_count"] == 1
    assert chans[ch2.channel_number]["messages_unacknowledged"] == 3
    assert chans[ch3.channel_number]["transactional"] is True
    assert chans[ch2.channel_number]["name"] == f"{c['name']} ({ch2.channel_number})"
    assert chans[ch2.channel_number]["connection_details"]["name"] == c["name"]
    assert c["channels"] == 3
    one = api.get(f"/api/channels/{q(chans[ch2.channel_number]['name'])}").json()
    assert one["consumer_details"][0]["consumer_tag"] == "ctag-http"
    names = [x["name"] for x in api.get("/api/channels").json()]
    assert chans[ch1.channel_number]["name"] in names
    assert api.get("/api/channels/nope%20(1)").status_code == 404
    cons = [x for x in api.get("/api/consumers").json() if x["consumer_tag"] == "ctag-http"]
    assert len(cons) == 1
    assert cons[0]["queue"] == {"name": name, "vhost": "/"}
    assert cons[0]["prefetch_count"] == 3 and cons[0]["ack_required"] is True
    assert cons[0]["channel_details"]["connection_name"] == c["name"]
    assert any(x["consumer_tag"] == "ctag-http" for x in api.get("/api/consumers/%2F").json())
    q1 = api.get(f"/api/queues/%2F/{q(name)}").json()
    assert q1["consumers"] == 1 and q1["consumer_details"][0]["consumer_tag"] == "ctag-http"
    ch1.queue_delete(name)


def test_delete_closes_with_connection_forced(api, warren):
    c = warren.connect()
    info = find_connection(api, mine(c))
    r = api.delete(f"/api/connections/{q(info['name'])}")
    assert r.status_code == 204
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        for _ in range(50):
            c.process_data_events(0.1)
    assert e.value.reply_code == 320
    assert e.value.reply_text == "CONNECTION_FORCED - Closed via management plugin"
    wait_for(lambda: api.get(f"/api/connections/{q(info['name'])}").status_code == 404,
             what="the closed connection to leave the list")
    assert api.delete(f"/api/connections/{q(info['name'])}").status_code == 404


def test_delete_with_x_reason(api, warren):
    c = warren.connect()
    info = find_connection(api, mine(c))
    r = api.delete(f"/api/connections/{q(info['name'])}", headers={"X-Reason": "maintenance"})
    assert r.status_code == 204
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        for _ in range(50):
            c.process_data_events(0.1)
    assert e.value.reply_text == "CONNECTION_FORCED - maintenance"


def test_close_all_connections_of_a_user(api, warren, uniq):
    u = uniq("u")
    make_user(api, u)
    conns = [warren.connect(user=u, password="pw") for _ in range(2)]
    assert api.delete(f"/api/connections/username/{q(u)}").status_code == 204
    for c in conns:
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker):
            for _ in range(50):
                c.process_data_events(0.1)


def test_management_users_see_only_their_connections(api, warren, uniq, client):
    u = uniq("m")
    make_user(api, u, tags="management")
    own = warren.connect(user=u, password="pw")
    try:
        me = api.as_user(u, "pw")
        listed = me.get("/api/connections").json()
        assert listed and all(x["user"] == u for x in listed)
        guest_conn = find_connection(api, mine(client))
        r = me.get(f"/api/connections/{q(guest_conn['name'])}")
        assert r.status_code == 401
        assert me.delete(f"/api/connections/{q(guest_conn['name'])}").status_code == 401
        assert all(x["user"] == u for x in me.get("/api/channels").json())
    finally:
        own.close()


def test_unknown_connection_is_404(api):
    assert api.get("/api/connections/nope").status_code == 404
    assert api.delete("/api/connections/nope").status_code == 404
    assert api.get("/api/connections/nope/channels").status_code == 404
