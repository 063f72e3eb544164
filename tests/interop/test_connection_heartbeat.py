"""Heartbeats: the negotiated interval, the server's own heartbeats and dead-peer detection.

Recorded against RabbitMQ 3.10.8 with a negotiated heartbeat of T seconds:
- the server sends a heartbeat frame (type 8, channel 0, empty payload) every T/2 seconds
  while it has nothing else to send;
- any inbound octets (heartbeat or not) count as liveness;
- a client that sends nothing is dropped after about 3*T (between 2*T and 3*T after its
  last octet): plain TCP close, no connection.close frame.
"""

import concurrent.futures
import statistics
import time

import pytest

import amqp_raw as A

T = 1  # negotiated heartbeat (seconds)


# The four raw scenarios below each take a few seconds of wall time, so they run
# concurrently (once per module); each test checks the outcome of its own scenario.

def _beats_while_client_sends_heartbeats(broker):
    with A.broker_handshake(broker, heartbeat=T) as c:
        start = time.monotonic()
        beats, last_sent = [], start
        # well past the 3*T after which a silent client would be dropped
        while time.monotonic() - start < 3.5 * T:
            try:
                fr = c.read_frame(timeout=0.1)
            except TimeoutError:
                fr = None
            if fr is not None:
                assert (fr.type, fr.channel, fr.payload) == (A.FRAME_HEARTBEAT, 0, b""), fr
                beats.append(time.monotonic())
            if time.monotonic() - last_sent >= T / 2:
                c.send(A.heartbeat_frame())
                last_sent = time.monotonic()
        c.open_channel(1)  # still alive and usable
        return beats


def _methods_instead_of_heartbeats(broker):
    with A.broker_handshake(broker, heartbeat=T) as c:
        c.open_channel(1)
        start = time.monotonic()
        while time.monotonic() - start < 3.5 * T:
            sent = time.monotonic()
            c.send_method(1, "basic.qos", 0, 1, False)  # never a heartbeat frame
            assert c.read_method(timeout=T).name == "basic.qos-ok"
            time.sleep(max(0.0, T / 2 - (time.monotonic() - sent)))  # pacing, not sync
        c.open_channel(2)
        return True


def _silent_client(broker):
    with A.broker_handshake(broker, heartbeat=T) as c:
        start = time.monotonic()  # connection.open was the client's last octet
        frames = c.frames_until_closed(timeout=3 * T + 3)
        return frames, time.monotonic() - start


def _heartbeat_zero(broker):
    with A.broker_handshake(broker, heartbeat=0) as off, \
            A.broker_handshake(broker, heartbeat=T) as on:
        # use the T-heartbeat connection as the clock: wait for 3 of its heartbeats
        for _ in range(3):
            fr = on.read_frame(timeout=2 * T)
            assert fr.type == A.FRAME_HEARTBEAT
            on.send(A.heartbeat_frame())
        pending = off.pending_frames()
        off.open_channel(1)
        return pending


SCENARIOS = [_beats_while_client_sends_heartbeats, _methods_instead_of_heartbeats,
             _silent_client, _heartbeat_zero]


@pytest.fixture(scope="module")
def outcome(broker):
    with concurrent.futures.ThreadPoolExecutor(len(SCENARIOS)) as pool:
        futs = {f.__name__: pool.submit(f, broker) for f in SCENARIOS}
        yield lambda fn: futs[fn.__name__].result(timeout=20)


def test_server_heartbeats_at_half_the_interval_and_client_heartbeats_keep_alive(outcome):
    beats = outcome(_beats_while_client_sends_heartbeats)
    assert len(beats) >= 5, beats
    gaps = [b - a for a, b in zip(beats, beats[1:])]
    assert 0.35 * T <= statistics.median(gaps) <= 0.75 * T, gaps
    assert max(gaps) <= 0.9 * T, gaps


def test_any_client_traffic_counts_as_liveness(outcome):
    assert outcome(_methods_instead_of_heartbeats) is True


def test_silent_client_is_disconnected(outcome):
    frames, elapsed = outcome(_silent_client)
    # only heartbeats, no connection.close: a plain TCP close
    assert frames and all(
        not isinstance(f, A.Method) and f.type == A.FRAME_HEARTBEAT for f in frames), frames
    assert 2 * T - 0.2 <= elapsed <= 3 * T + 1.5, elapsed


def test_heartbeat_zero_disables_heartbeats(outcome):
    assert outcome(_heartbeat_zero) == []


def test_pika_heartbeat_one_second_stays_connected(broker, uniq):
    conn = broker.connect(heartbeat=1)
    try:
        assert conn._impl.params.heartbeat == 1  # negotiated value pika settled on
        ch = conn.channel()
        q = uniq("q")
        ch.queue_declare(q, exclusive=True)
        conn.sleep(3.5)  # idle: only pika's heartbeats go out
        assert conn.is_open
        ch.basic_publish("", q, b"after idle")
        method, _props, body = ch.basic_get(q, auto_ack=True)
        assert body == b"after idle"
    finally:
        if conn.is_open:
            conn.close()
