"""Routing through headers exchanges, exactly as RabbitMQ 3.10 matches.

What RabbitMQ does (rabbit_exchange_type_headers):
- x-match: "all" (default when absent), "any", "all-with-x", "any-with-x";
- the binding's "x-match" key itself is never matched against the message;
- other binding keys starting with "x-" are ignored by all/any and matched by *-with-x;
- a binding value of type void (None) means "the header is present, any value";
- otherwise values are compared with Erlang `==` on the decoded value, ignoring the
  field type: "1" (longstr) equals b"1" (byte array), a timestamp equals an integer
  of the same value, but 1 is not true and 1 is not "1";
- "all" with no (non-ignored) keys matches every message, "any" with none matches none;
- the routing key is ignored.
"""

import datetime
import decimal

import pika
import pytest

from helpers import QUEUE_BIND, EXCHANGE_BIND, bodies, channel_closed, cleanup  # noqa: F401


@pytest.fixture
def x(ch, uniq, cleanup):
    name = cleanup.exchange(uniq("headers"))
    ch.exchange_declare(name, "headers")
    return name


def q(ch):
    return ch.queue_declare("", exclusive=True).method.queue


TS = datetime.datetime(2020, 1, 1)
TS_INT = 1577836800  # the same instant as seconds since the epoch

# (binding arguments, message headers, routed?)
CASES = [
    # x-match all (explicit or default)
    ({"x-match": "all", "a": "1", "b": "2"}, {"a": "1", "b": "2"}, True),
    ({"x-match": "all", "a": "1", "b": "2"}, {"a": "1", "b": "2", "c": "3"}, True),
    ({"x-match": "all", "a": "1", "b": "2"}, {"a": "1", "b": "0"}, False),
    ({"x-match": "all", "a": "1", "b": "2"}, {"a": "1"}, False),
    ({"x-match": "all", "a": "1", "b": "2"}, None, False),
    ({"a": "1"}, {"a": "1"}, True),
    ({"a": "1"}, {"a": "2"}, False),
    ({"x-match": "all"}, None, True),
    ({"x-match": "all"}, {}, True),
    ({"x-match": "all"}, {"z": 1}, True),
    ({}, {"a": 1}, True),
    ({}, None, True),
    # x-match any
    ({"x-match": "any", "a": "1", "b": "2"}, {"a": "1", "b": "0"}, True),
    ({"x-match": "any", "a": "1", "b": "2"}, {"b": "2"}, True),
    ({"x-match": "any", "a": "1", "b": "2"}, {"a": "0", "b": "0"}, False),
    ({"x-match": "any", "a": "1", "b": "2"}, None, False),
    ({"x-match": "any"}, {"z": 1}, False),
    ({"x-match": "any"}, None, False),
    # x- keys: ignored by all/any
    ({"x-match": "all", "x-a": "1", "b": "2"}, {"b": "2"}, True),
    ({"x-match": "all", "x-y": "1"}, None, True),
    ({"x-match": "all", "x-match2": "z"}, {}, True),
    ({"x-match": "any", "x-a": "1"}, {"x-a": "1"}, False),
    ({"x-match": "any", "x-a": "1", "b": "2"}, {"x-a": "1", "b": "2"}, True),
    # ... and matched by all-with-x / any-with-x
    ({"x-match": "all-with-x", "x-a": "1", "b": "2"}, {"b": "2"}, False),
    ({"x-match": "all-with-x", "x-a": "1", "b": "2"}, {"b": "2", "x-a": "1"}, True),
    ({"x-match": "all-with-x", "x-a": "1", "b": "2"}, {"b": "2", "x-a": "0"}, False),
    ({"x-match": "all-with-x", "x-match2": "z"}, {"x-match2": "z"}, True),
    ({"x-match": "all-with-x", "x-match2": "z"}, {}, False),
    ({"x-match": "any-with-x", "x-a": "1"}, {"x-a": "1"}, True),
    ({"x-match": "any-with-x", "x-a": "1", "b": "2"}, {"x-a": "0", "b": "0"}, False),
    ({"x-match": "any-with-x", "x-a": "1", "b": "2"}, {"x-a": "0", "b": "2"}, True),
    # the x-match key itself is never compared, even in *-with-x mode
    ({"x-match": "all-with-x"}, None, True),
    ({"x-match": "all-with-x"}, {"z": 1}, True),
    ({"x-match": "all-with-x"}, {"x-match": "any"}, True),
    ({"x-match": "any-with-x"}, {"z": 1}, False),
    ({"x-match": "any-with-x"}, {"x-match": "any-with-x"}, False),
    ({"x-match": "all", "a": "1"}, {"a": "1", "x-match": "other"}, True),
    # void binding value = presence
    ({"a": None}, {"a": "anything"}, True),
    ({"a": None}, {"a": None}, True),
    ({"a": None}, {"a": 17}, True),
    ({"a": None}, {"b": "anything"}, False),
    ({"a": None}, None, False),
    ({"x-match": "any", "a": None, "b": "2"}, {"a": "z"}, True),
    ({"x-match": "all", "a": None, "b": "2"}, {"a": "z", "b": "3"}, False),
    ({"a": "v"}, {"a": None}, False),
    # value comparison (type-insensitive Erlang ==)
    ({"a": 1}, {"a": 1}, True),
    ({"a": 1}, {"a": "1"}, False),
    ({"a": "1"}, {"a": 1}, False),
    ({"a": "1"}, {"a": b"1"}, True),
    ({"a": b"1"}, {"a": "1"}, True),
    ({"a": 1}, {"a": True}, False),
    ({"a": True}, {"a": True}, True),
    ({"a": True}, {"a": False}, False),
    ({"a": 1}, {"a": 1 << 40}, False),
    ({"a": 1 << 40}, {"a": 1 << 40}, True),
    ({"a": -5}, {"a": -5}, True),
    ({"a": TS}, {"a": TS}, True),
    ({"a": TS}, {"a": TS_INT}, True),
    ({"a": TS_INT}, {"a": TS}, True),
    ({"a": TS}, {"a": TS_INT + 1}, False),
    ({"a": decimal.Decimal("1.5")}, {"a": decimal.Decimal("1.5")}, True),
    ({"a": decimal.Decimal("1.5")}, {"a": decimal.Decimal("2.5")}, False),
    ({"a": {"n": 1}}, {"a": {"n": 1}}, True),
    ({"a": {"n": 1}}, {"a": {"n": 2}}, False),
    ({"a": [1, 2]}, {"a": [1, 2]}, True),
    ({"a": [1, 2]}, {"a": [2, 1]}, False),
    ({"a": "v"}, {"a": "V"}, False),
    ({"a": ""}, {"a": ""}, True),
    ({"a": ""}, {}, False),
    # keys are case-sensitive
    ({"A": "1"}, {"a": "1"}, False),
]


@pytest.mark.parametrize("case", CASES, ids=[f"c{i:02d}" for i in range(len(CASES))])
def test_match(ch, x, case):
    args, headers, routed = case
    a = q(ch)
    ch.queue_bind(a, x, arguments=args)
    ch.basic_publish(x, "rk", b"m", pika.BasicProperties(headers=headers))
    got = bodies(ch, a)
    assert got == ([b"m"] if routed else []), f"binding {args!r}, headers {headers!r}"


def test_routing_key_ignored(ch, x):
    a = q(ch)
    ch.queue_bind(a, x, routing_key="bk", arguments={"h": "v"})
    ch.basic_publish(x, "other", b"1", pika.BasicProperties(headers={"h": "v"}))
    ch.basic_publish(x, "bk", b"2", pika.BasicProperties(headers={"h": "w"}))
    assert bodies(ch, a) == [b"1"]


def test_several_matching_bindings_give_one_copy(ch, x):
    a = q(ch)
    ch.queue_bind(a, x, arguments={"x-match": "any", "h": "v"})
    ch.queue_bind(a, x, arguments={"x-match": "all", "h": "v", "i": "w"})
    ch.queue_bind(a, x, arguments={"x-match": "all"})
    ch.basic_publish(x, "", b"once", pika.BasicProperties(headers={"h": "v", "i": "w"}))
    assert bodies(ch, a) == [b"once"]


def test_unbind_needs_same_arguments(ch, x):
    a = q(ch)
    ch.queue_bind(a, x, arguments={"x-match": "any", "h": "v"})
    ch.queue_unbind(a, x, arguments={"x-match": "all", "h": "v"})  # not that binding
    ch.basic_publish(x, "", b"1", pika.BasicProperties(headers={"h": "v"}))
    ch.queue_unbind(a, x, arguments={"x-match": "any", "h": "v"})
    ch.basic_publish(x, "", b"2", pika.BasicProperties(headers={"h": "v"}))
    assert bodies(ch, a) == [b"1"]


def test_binding_argument_order_does_not_matter(ch, x):
    a = q(ch)
    ch.queue_bind(a, x, arguments={"b": "2", "a": "1", "x-match": "all"})
    ch.queue_unbind(a, x, arguments={"x-match": "all", "a": "1", "b": "2"})
    ch.basic_publish(x, "", b"m", pika.BasicProperties(headers={"a": "1", "b": "2"}))
    assert bodies(ch, a) == []


@pytest.mark.parametrize(
    "value,text",
    [
        ("foo", 'Invalid x-match field value <<"foo">>; expected all, any, all-with-x, or any-with-x'),
        ("ALL", 'Invalid x-match field value <<"ALL">>; expected all, any, all-with-x, or any-with-x'),
        ("", 'Invalid x-match field value <<>>; expected all, any, all-with-x, or any-with-x'),
        (1, "Invalid x-match field type signedint (value 1); expected longstr"),
        (None, "Invalid x-match field type void (value undefined); expected longstr"),
        (True, "Invalid x-match field type bool (value true); expected longstr"),
    ],
    ids=["foo", "ALL", "empty", "int", "void", "bool"],
)
def test_invalid_x_match(conn, x, value, text):
    ch = conn.channel()
    a = q(ch)
    with channel_closed(406, "PRECONDITION_FAILED - " + text, QUEUE_BIND):
        ch.queue_bind(a, x, arguments={"x-match": value, "h": "v"})
    assert conn.is_open


def test_invalid_x_match_on_exchange_binding(conn, uniq, x, cleanup):
    ch = conn.channel()
    dst = cleanup.exchange(uniq("dst"))
    ch.exchange_declare(dst, "fanout")
    text = ('PRECONDITION_FAILED - Invalid x-match field value <<"foo">>; '
            'expected all, any, all-with-x, or any-with-x')
    with channel_closed(406, text, EXCHANGE_BIND):
        ch.exchange_bind(destination=dst, source=x, arguments={"x-match": "foo"})


def test_x_match_not_validated_on_other_exchange_types(ch, uniq, cleanup):
    d = cleanup.exchange(uniq("direct"))
    ch.exchange_declare(d, "direct")
    a = q(ch)
    ch.queue_bind(a, d, routing_key="k", arguments={"x-match": "foo"})
    ch.basic_publish(d, "k", b"m")
    assert bodies(ch, a) == [b"m"]
