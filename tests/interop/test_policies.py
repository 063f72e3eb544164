"""Policies, set through the management HTTP API (PUT/GET/DELETE /api/policies/{vhost}/{name}).

Against Warren a private broker serving its management API on a free --http-port is
used; against the reference, its API on REFERENCE_HTTP_URL (policies there are scoped by
unique name patterns and deleted after each test).

Recorded against RabbitMQ 3.10.8:
- PUT creates (201) or replaces (204) a policy; apply-to defaults to "all", priority to 0;
  GET returns {vhost, name, pattern, apply-to, definition, priority}; DELETE 204, 404 when
  missing; invalid policies are refused with 400 {"error":"bad_request", ...};
- the pattern is an unanchored regular expression on the name; apply-to queues /
  exchanges / all; only the highest-priority matching policy applies (definitions are not
  merged);
- a policy applies to existing and future objects and stops applying when deleted
  (applied asynchronously: the tests poll); max-length trims an existing queue at once;
  message-ttl does not expire messages enqueued before it applied;
- when both a policy and an x-argument are set: the lower value wins for message-ttl,
  expires, max-length, max-length-bytes (and delivery-limit, quorum queues); the
  argument wins for dead-letter-exchange, dead-letter-routing-key, overflow and
  alternate-exchange;
- max-priority is not a policy key in RabbitMQ ("not recognised policy settings"); Warren
  accepts it (tested separately against each).
"""

import re
import time

import pika
import pytest

from helpers import (
    Arrivals,
    PolicySet,
    QueueProbe,
    bodies,
    broker_with_http,
    deaths,
    eventually,
    get_all,
    message_count,
    settle,
    skip_on_reference,
    wait_message,
    wait_until,
)

VHOST = "/"


@pytest.fixture(scope="module")
def mgmt(broker):
    with broker_with_http(broker) as (b, http):
        yield b, http


@pytest.fixture
def mb(mgmt):
    return mgmt[0]


@pytest.fixture
def http(mgmt):
    return mgmt[1]


@pytest.fixture
def policies(http):
    ps = PolicySet(http, VHOST)
    yield ps
    ps.clear()


@pytest.fixture
def mconn(mb):
    c = mb.connect()
    yield c
    if c.is_open:
        c.close()


@pytest.fixture
def objects(mb):
    """Names of queues/exchanges to delete at teardown."""
    made = {"queues": [], "exchanges": []}
    yield made
    c = mb.connect()
    try:
        for q in made["queues"]:
            c.channel().queue_delete(q)
        for x in made["exchanges"]:
            c.channel().exchange_delete(x)
    finally:
        c.close()


def exact(name):
    return "^" + re.escape(name) + "$"


def until(predicate, what, timeout=5.0):
    """Policies apply asynchronously: retry an observation until it holds."""
    eventually(predicate, timeout=timeout, what=what, interval=0.05)


def confirming(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    return ch


def outcome(ch, exchange, key, body, props=None):
    try:
        ch.basic_publish(exchange, key, body, props)
        return "ack"
    except pika.exceptions.NackError:
        return "nack"


def declare(conn, objects, name, **kw):
    objects["queues"].append(name)
    conn.channel().queue_declare(name, **kw)
    return name


def length_limited_to(conn, q, n):
    """Publish n+2 messages and see whether the queue keeps exactly the n newest."""
    ch = confirming(conn)
    ch.queue_purge(q)
    for i in range(n + 2):
        ch.basic_publish("", q, b"%d" % i)
    kept = bodies(ch, q)
    return kept == [b"%d" % i for i in range(2, n + 2)]


# ---------------------------------------------------------------- the HTTP API


def test_put_get_delete(http, uniq, policies):
    name = uniq("p")
    path = f"/api/policies/%2F/{name}"
    body = {"pattern": "^nothing-" + name, "apply-to": "queues", "priority": 3,
            "definition": {"max-length": 2}}
    policies.names.append(name)
    assert http.put(path, body)[0] == 201
    assert http.get(path) == (200, {"vhost": "/", "name": name, "pattern": "^nothing-" + name,
                                    "apply-to": "queues", "definition": {"max-length": 2},
                                    "priority": 3})
    body["definition"] = {"max-length": 5}
    assert http.put(path, body)[0] == 204
    assert http.get(path)[1]["definition"] == {"max-length": 5}
    status, listing = http.get("/api/policies/%2F")
    assert status == 200 and [p for p in listing if p["name"] == name] == [http.get(path)[1]]
    assert http.delete(path)[0] == 204
    assert http.get(path)[0] == 404
    assert http.delete(path)[0] == 404


def test_defaults(http, uniq, policies):
    name = uniq("p")
    policies.names.append(name)
    http.put(f"/api/policies/%2F/{name}", {"pattern": "^nothing-" + name,
                                          "definition": {"max-length": 1}})
    got = http.get(f"/api/policies/%2F/{name}")[1]
    assert (got["apply-to"], got["priority"]) == ("all", 0)


@pytest.mark.parametrize("body", [
    {"definition": {"message-ttl": "abc"}},
    {"definition": {"message-ttl": -1}},
    {"definition": {"max-length": "x"}},
    {"definition": {"expires": 0}},
    {"definition": {"overflow": "foo"}},
    {"definition": {"alternate-exchange": 5}},
    {"definition": {"no-such-key": 1}},
    {"definition": {}},
    {"definition": {"max-length": 1}, "apply-to": "bogus"},
    {"definition": {"max-length": 1}, "pattern": "("},
    {"definition": {"max-length": 1}, "priority": "high"},
    {"definition": {"max-length": 1}, "pattern": None},
], ids=["ttl-string", "ttl-negative", "max-length-string", "expires-zero", "overflow",
        "ae-type", "unknown-key", "empty", "apply-to", "bad-regex", "priority", "no-pattern"])
def test_invalid_policy_refused(http, uniq, policies, body):
    name = uniq("p")
    full = {"pattern": "^nothing-" + name, **body}
    if full["pattern"] is None:
        del full["pattern"]
    policies.names.append(name)
    status, reply = http.put(f"/api/policies/%2F/{name}", full)
    assert status == 400, reply
    assert reply["error"] == "bad_request"
    assert http.get(f"/api/policies/%2F/{name}")[0] == 404


def test_unknown_vhost(http, uniq):
    status, reply = http.put(f"/api/policies/{uniq('novhost')}/p",
                             {"pattern": "x", "definition": {"max-length": 1}})
    assert status == 404, reply


def test_max_priority_is_not_a_policy_key_in_rabbitmq(mb, http, uniq, policies):
    if not mb.is_reference:
        pytest.skip("Warren accepts max-priority in policies (next test)")
    name = uniq("p")
    policies.names.append(name)
    status, reply = http.put(f"/api/policies/%2F/{name}", {
        "pattern": "^nothing", "definition": {"max-priority": 5}})
    assert status == 400 and reply["error"] == "bad_request"
    assert "not recognised policy settings" in reply["reason"]


def test_max_priority_policy_applies_to_new_queues(mb, mconn, uniq, policies, objects):
    skip_on_reference(mb, "RabbitMQ does not accept max-priority in policies")
    q = uniq("q")
    policies.put(uniq("p"), exact(q), {"max-priority": 5}, apply_to="queues")
    declare(mconn, objects, q)
    ch = confirming(mconn)
    for body, prio in [(b"lo", 1), (b"hi", 5), (b"mid", 3)]:
        ch.basic_publish("", q, body, pika.BasicProperties(priority=prio))
    assert bodies(ch, q) == [b"hi", b"mid", b"lo"]


# ---------------------------------------------------------------- matching


def test_policy_applies_to_existing_queue_at_once(mconn, uniq, policies, objects):
    q = declare(mconn, objects, uniq("q"))
    ch = confirming(mconn)
    for i in range(5):
        ch.basic_publish("", q, b"%d" % i)
    policies.put(uniq("p"), exact(q), {"max-length": 2}, apply_to="queues")
    until(lambda: message_count(ch, q) == 2, "max-length policy applied")
    assert bodies(ch, q) == [b"3", b"4"]


def test_policy_applies_to_future_queues(mconn, uniq, policies, objects):
    q = uniq("q")
    policies.put(uniq("p"), exact(q), {"max-length": 2}, apply_to="queues")
    declare(mconn, objects, q)
    until(lambda: length_limited_to(mconn, q, 2), "max-length on a new queue")


def test_deleted_policy_stops_applying(mconn, uniq, policies, objects):
    q = declare(mconn, objects, uniq("q"))
    name = uniq("p")
    policies.put(name, exact(q), {"max-length": 1}, apply_to="queues")
    until(lambda: length_limited_to(mconn, q, 1), "policy applied")
    policies.delete(name)
    until(lambda: not length_limited_to(mconn, q, 1), "policy lifted")
    ch = confirming(mconn)
    ch.queue_purge(q)
    for i in range(4):
        ch.basic_publish("", q, b"%d" % i)
    assert message_count(ch, q) == 4


def test_pattern_is_an_unanchored_regex(mconn, uniq, policies, objects):
    tag = uniq("mid")
    inside = declare(mconn, objects, "a." + tag + ".z")
    outside = declare(mconn, objects, uniq("other"))
    policies.put(uniq("p"), re.escape(tag), {"max-length": 1}, apply_to="queues")
    until(lambda: length_limited_to(mconn, inside, 1), "policy on the matching queue")
    assert not length_limited_to(mconn, outside, 1)


def test_highest_priority_wins_without_merging(mconn, uniq, policies, objects):
    q = declare(mconn, objects, uniq("q"))
    ch = mconn.channel()
    dl = ch.queue_declare("", exclusive=True).method.queue
    policies.put(uniq("low"), exact(q), {"max-length": 1}, apply_to="queues", priority=1)
    until(lambda: length_limited_to(mconn, q, 1), "the only policy applies")
    policies.put(uniq("high"), re.escape(q), {"dead-letter-exchange": "",
                                             "dead-letter-routing-key": dl},
                 apply_to="queues", priority=2)
    # the higher one replaces the lower one entirely: no max-length any more
    until(lambda: not length_limited_to(mconn, q, 1), "the higher policy replaces the lower")
    ch.queue_purge(q)
    ch.queue_purge(dl)
    confirming(mconn).basic_publish("", q, b"m")
    m, _p, _b = ch.basic_get(q, auto_ack=False)
    ch.basic_reject(m.delivery_tag, requeue=False)
    _m, p, b = wait_message(ch, dl)
    assert deaths(p) == [(q, "rejected", 1)]


@pytest.mark.parametrize("apply_to,queue_limited,exchange_has_ae", [
    ("queues", True, False), ("exchanges", False, True), ("all", True, True)])
def test_apply_to(mconn, uniq, policies, objects, apply_to, queue_limited, exchange_has_ae):
    tag = uniq("both")
    q = declare(mconn, objects, tag + ".q")
    x = tag + ".x"
    ae = tag + ".ae"
    objects["exchanges"] += [x, ae]
    ch = mconn.channel()
    ch.exchange_declare(x, "direct")
    ch.exchange_declare(ae, "fanout")
    aeq = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(aeq, ae)
    policies.put(uniq("p"), "^" + re.escape(tag), {"max-length": 1, "alternate-exchange": ae},
                 apply_to=apply_to)

    def ae_used():
        ch.queue_purge(aeq)
        confirming(mconn).basic_publish(x, "nobody", b"m")
        return message_count(ch, aeq) == 1

    if queue_limited:
        until(lambda: length_limited_to(mconn, q, 1), "queue part applied")
    if exchange_has_ae:
        until(ae_used, "exchange part applied")
    settle(mconn, 0.3)
    assert length_limited_to(mconn, q, 1) == queue_limited
    assert ae_used() == exchange_has_ae


# ---------------------------------------------------------------- definition keys


def test_message_ttl_policy(mconn, uniq, policies, objects):
    q = declare(mconn, objects, uniq("q"))
    ch = confirming(mconn)
    ch.basic_publish("", q, b"before")
    policies.put(uniq("p"), exact(q), {"message-ttl": 100}, apply_to="queues")

    def new_messages_expire():
        ch.basic_publish("", q, b"probe")
        time.sleep(0.2)
        rest = bodies(ch, q, no_ack=False)
        ch.basic_recover(requeue=True)
        return b"probe" not in rest

    until(new_messages_expire, "message-ttl policy applied")
    # a message enqueued before the policy applied does not expire
    m, _p, b = ch.basic_get(q, auto_ack=True)
    assert b == b"before"


def test_message_ttl_policy_expires_on_time(mconn, uniq, policies, objects):
    ch = mconn.channel()
    dl = ch.queue_declare("", exclusive=True).method.queue
    arrivals = Arrivals(mconn, dl)
    q = uniq("q")
    policies.put(uniq("p"), exact(q), {"message-ttl": 200, "dead-letter-exchange": "",
                                       "dead-letter-routing-key": dl}, apply_to="queues")
    declare(mconn, objects, q)
    until(lambda: (confirming(mconn).basic_publish("", q, b"warmup"),
                   settle(mconn, 0.3), len(arrivals.items) > 0)[-1], "policy applied")
    arrivals.items.clear()
    t0 = time.monotonic()
    ch.basic_publish("", q, b"m")
    t, _m, p, _b = arrivals.wait(1)[0]
    assert 0.19 <= t - t0 <= 0.3
    assert deaths(p) == [(q, "expired", 1)]


def test_expires_policy(mconn, uniq, policies, objects):
    q = uniq("q")
    policies.put(uniq("p"), exact(q), {"expires": 300}, apply_to="queues")
    probe = QueueProbe(mconn)

    def expires():
        mconn.channel().queue_declare(q)
        t0 = time.monotonic()
        try:
            gone = probe.wait_gone(q, timeout=1.0)
        except AssertionError:
            return False
        assert 0.29 <= gone - t0 <= 0.5
        return True

    until(expires, "expires policy applied")


def test_dead_letter_policy(mconn, uniq, policies, objects):
    ch = mconn.channel()
    dl = ch.queue_declare("", exclusive=True).method.queue
    q = declare(mconn, objects, uniq("q"))
    policies.put(uniq("p"), exact(q), {"dead-letter-exchange": "",
                                       "dead-letter-routing-key": dl}, apply_to="queues")

    def dead_letters():
        confirming(mconn).basic_publish("", q, b"m")
        m, _p, _b = ch.basic_get(q, auto_ack=False)
        ch.basic_reject(m.delivery_tag, requeue=False)
        settle(mconn, 0.1)
        return message_count(ch, dl) == 1

    until(dead_letters, "dead-letter policy applied")
    _m, p, _b = wait_message(ch, dl)
    assert deaths(p) == [(q, "rejected", 1)]


def test_overflow_and_max_length_bytes_policy(mconn, uniq, policies, objects):
    q = declare(mconn, objects, uniq("q"))
    policies.put(uniq("p"), exact(q), {"max-length-bytes": 10, "overflow": "reject-publish"},
                 apply_to="queues")
    ch = confirming(mconn)

    def rejects():
        ch.queue_purge(q)
        return [outcome(ch, "", q, b) for b in [b"x" * 10, b"y"]] == ["ack", "nack"]

    until(rejects, "overflow policy applied")
    assert bodies(ch, q) == [b"x" * 10]


def test_alternate_exchange_policy(mconn, uniq, policies, objects):
    ch = mconn.channel()
    tag = uniq("t")
    existing, future, ae = tag + ".existing", tag + ".future", uniq("ae")
    objects["exchanges"] += [existing, future, ae]
    ch.exchange_declare(existing, "direct")
    ch.exchange_declare(ae, "fanout")
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, ae)
    policies.put(uniq("p"), "^" + re.escape(tag) + r"\.", {"alternate-exchange": ae},
                 apply_to="exchanges")

    def routed_to_ae(x):
        confirming(mconn).basic_publish(x, "nobody", b"m")
        return bool(get_all(ch, q))

    until(lambda: routed_to_ae(existing), "alternate-exchange policy on an existing exchange")
    ch.exchange_declare(future, "direct")
    until(lambda: routed_to_ae(future), "alternate-exchange policy on a new exchange")


# ---------------------------------------------------------------- precedence


@pytest.mark.parametrize("arg,pol", [(5, 2), (2, 5)], ids=["policy-lower", "argument-lower"])
def test_max_length_lower_wins(mconn, uniq, policies, objects, arg, pol):
    ch = mconn.channel()
    dl = ch.queue_declare("", exclusive=True).method.queue
    q = declare(mconn, objects, uniq("q"), arguments={"x-max-length": arg})
    # the dead-letter keys only show that the policy is in force
    policies.put(uniq("p"), exact(q), {"max-length": pol, "dead-letter-exchange": "",
                                       "dead-letter-routing-key": dl}, apply_to="queues")

    def in_force():
        length_limited_to(mconn, q, 2)
        return message_count(ch, dl) > 0

    until(in_force, "policy in force")
    assert length_limited_to(mconn, q, 2)


@pytest.mark.parametrize("arg,pol", [(150, 5000), (5000, 150)], ids=["argument-lower",
                                                                       "policy-lower"])
def test_message_ttl_lower_wins(mconn, uniq, policies, objects, arg, pol):
    ch = mconn.channel()
    dl = ch.queue_declare("", exclusive=True).method.queue
    arrivals = Arrivals(mconn, dl)
    q = declare(mconn, objects, uniq("q"), arguments={"x-message-ttl": arg})
    # expired messages reach dl only once the policy (and its DLX) is in force
    policies.put(uniq("p"), exact(q), {"message-ttl": pol, "dead-letter-exchange": "",
                                       "dead-letter-routing-key": dl}, apply_to="queues")

    def expires_fast():
        arrivals.items.clear()
        t0 = time.monotonic()
        ch.basic_publish("", q, b"m")
        try:
            wait_until(mconn, lambda: arrivals.items, timeout=1.0)
        except AssertionError:
            return False
        return arrivals.items[0][0] - t0 < 0.5

    until(expires_fast, "the lower TTL applies", timeout=10)


def test_dead_letter_exchange_argument_wins(mconn, uniq, policies, objects):
    ch = mconn.channel()
    by_arg = ch.queue_declare("", exclusive=True).method.queue
    by_pol = ch.queue_declare("", exclusive=True).method.queue
    q = declare(mconn, objects, uniq("q"), arguments={
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": by_arg})
    policies.put(uniq("p"), exact(q), {"dead-letter-exchange": "",
                                       "dead-letter-routing-key": by_pol, "max-length": 1},
                 apply_to="queues")
    until(lambda: length_limited_to(mconn, q, 1), "policy applied")  # drop-head dead-letters
    settle(mconn, 0.2)
    assert message_count(ch, by_arg) > 0
    assert message_count(ch, by_pol) == 0


def test_overflow_argument_wins(mconn, uniq, policies, objects):
    q = declare(mconn, objects, uniq("q"), arguments={"x-overflow": "drop-head"})
    policies.put(uniq("p"), exact(q), {"max-length": 1, "overflow": "reject-publish"},
                 apply_to="queues")
    until(lambda: length_limited_to(mconn, q, 1), "max-length from the policy, drop-head")


def test_alternate_exchange_argument_wins(mconn, uniq, policies, objects):
    ch = mconn.channel()
    tag = uniq("t")
    x, ae_arg, ae_pol = tag + ".x", uniq("ae-arg"), uniq("ae-pol")
    objects["exchanges"] += [x, ae_arg, ae_pol]
    ch.exchange_declare(ae_arg, "fanout")
    ch.exchange_declare(ae_pol, "fanout")
    ch.exchange_declare(x, "direct", arguments={"alternate-exchange": ae_arg})
    q_arg = ch.queue_declare("", exclusive=True).method.queue
    q_pol = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q_arg, ae_arg)
    ch.queue_bind(q_pol, ae_pol)
    # the queue under the same policy shows when the policy is in force
    marker = declare(mconn, objects, tag + ".q")
    policies.put(uniq("p"), "^" + re.escape(tag) + r"\.", {"alternate-exchange": ae_pol,
                                                           "max-length": 1}, apply_to="all")
    until(lambda: length_limited_to(mconn, marker, 1), "policy in force")
    settle(mconn, 0.2)
    confirming(mconn).basic_publish(x, "nobody", b"m")
    assert (message_count(ch, q_arg), message_count(ch, q_pol)) == (1, 0)


@pytest.mark.parametrize("kind", ["quorum", "classic"])
def test_delivery_limit_policy_lower_wins(mb, mconn, uniq, policies, objects, kind):
    if kind == "classic":
        skip_on_reference(mb, "RabbitMQ 3.10 has delivery limits on quorum queues only")
    args = {"x-delivery-limit": 5}
    if kind == "quorum":
        args["x-queue-type"] = "quorum"
    q = declare(mconn, objects, uniq(kind), durable=True, arguments=args)
    policies.put(uniq("p"), exact(q), {"delivery-limit": 1}, apply_to="queues")
    ch = confirming(mconn)

    def deliveries_until_dropped():
        ch.queue_purge(q)
        ch.basic_publish("", q, b"m")
        n = 0
        while n < 10:
            m, _p, _b = ch.basic_get(q, auto_ack=False)
            if m is None:
                return n
            n += 1
            ch.basic_nack(m.delivery_tag, requeue=True)
        return n

    until(lambda: deliveries_until_dropped() == 2, "delivery-limit 1 from the policy")
