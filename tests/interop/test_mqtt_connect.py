"""MQTT CONNECT: credentials checked against the broker's users and vhost permissions,
RabbitMQ's `vhost:user` username form, anonymous logins as the default user, client id
rules, CONNACK return codes. Runs against Warren and the reference RabbitMQ."""

import pytest

from test_cross_protocol_fixtures import *  # noqa: F401,F403
from test_cross_protocol_fixtures import connect_packet, raw_mqtt

CONNACK = 0x20


@pytest.mark.parametrize("version", [3, 4])
def test_good_credentials_are_accepted(proto, version):
    c = proto.mqtt(version=version)
    assert c.rc == 0
    c.disconnect()


@pytest.mark.parametrize("version", [3, 4])
def test_wrong_password_is_refused_with_bad_credentials(proto, version):
    c = proto.mqtt(version=version, password="wrong", connect=False)
    assert c.connect() == 4  # bad user name or password
    c.c.loop_stop()


def test_unknown_user_is_refused(proto):
    c = proto.mqtt(username="nobody-at-all", password="x", connect=False)
    assert c.connect() == 4


def test_vhost_in_username_selects_the_vhost(proto):
    c = proto.mqtt(username="/:guest")
    assert c.rc == 0
    c.disconnect()


def test_unknown_vhost_in_username_is_refused_as_bad_credentials(proto):
    c = proto.mqtt(username="no-such-vhost:guest", connect=False)
    assert c.connect() == 4


def test_anonymous_connect_logs_in_as_the_default_user(proto):
    # RabbitMQ 3.10's default: mqtt.allow_anonymous = true, default user guest.
    c = proto.mqtt(username=None)
    assert c.rc == 0
    c.disconnect()


def test_username_without_password_is_refused(proto):
    r = raw_mqtt(proto)
    r.send(connect_packet("nopass", username="guest", password=None))
    first, body = r.recv_packet()
    assert first == CONNACK and body == b"\x00\x04"
    assert r.closed()


def test_empty_client_id_with_persistent_session_is_rejected(proto):
    r = raw_mqtt(proto)
    r.send(connect_packet("", clean=False))
    first, body = r.recv_packet()
    assert first == CONNACK and body == b"\x00\x02"  # identifier rejected
    assert r.closed()


def test_empty_client_id_with_clean_session_gets_one(proto):
    r = raw_mqtt(proto)
    r.send(connect_packet("", clean=True))
    first, body = r.recv_packet()
    assert first == CONNACK and body == b"\x00\x00"
    r.close()


def test_unsupported_protocol_level(proto):
    r = raw_mqtt(proto)
    pkt = bytearray(connect_packet("lvl"))
    pkt[8] = 9  # protocol level byte after "\x00\x04MQTT"
    r.send(bytes(pkt))
    got = r.recv_packet()
    if proto.is_reference:
        # RabbitMQ 3.10 closes without a word.
        assert got is None
    else:
        # MQTT 3.1.1 3.1.2.2: CONNACK 0x01, unacceptable protocol level, then close.
        assert got == (CONNACK, b"\x00\x01")
        assert r.closed()


def test_first_packet_must_be_connect(proto):
    r = raw_mqtt(proto)
    r.send(b"\xc0\x00")  # PINGREQ
    assert r.closed()


def test_connect_in_mqtt_3_1_with_long_client_id(proto):
    # 3.1 says 23 characters at most; RabbitMQ does not enforce it, nor do we.
    c = proto.mqtt(client_id="x" * 40, version=3)
    assert c.rc == 0
    c.disconnect()


def test_persistent_session_connack_says_session_present_on_return(proto):
    cid = "persist-connack"
    c = proto.mqtt(client_id=cid, clean=False)
    assert not c.session_present
    c.subscribe("sp/connack", 1)
    c.disconnect()
    c = proto.mqtt(client_id=cid, clean=False)
    assert c.session_present
    c.disconnect()
    c = proto.mqtt(client_id=cid, clean=True)
    assert not c.session_present
    c.disconnect()
    c = proto.mqtt(client_id=cid, clean=False)
    assert not c.session_present  # the clean session discarded it
    c.disconnect()
    proto.mqtt(client_id=cid, clean=True).disconnect()


def test_second_connection_with_same_client_id_takes_over(proto):
    a = proto.mqtt(client_id="dup-id")
    b = proto.mqtt(client_id="dup-id")
    rc, _ = a.disconnects.get(timeout=10)
    assert rc != 0  # the first connection was closed by the broker
    b.subscribe("dup/x", 0)
    b.publish("dup/x", b"still here")
    assert b.get().payload == b"still here"
    b.disconnect()
