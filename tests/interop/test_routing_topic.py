"""Routing through topic exchanges: `*` is exactly one word, `#` zero or more words;
words are separated by `.` and may be empty."""

import pytest

from helpers import bodies, cleanup  # noqa: F401


@pytest.fixture
def x(ch, uniq, cleanup):
    name = cleanup.exchange(uniq("topic"))
    ch.exchange_declare(name, "topic")
    return name


def q(ch):
    return ch.queue_declare("", exclusive=True).method.queue


MANY = ".".join(f"w{i}" for i in range(60))

# pattern -> (keys that match, keys that do not)
CASES = {
    "a.b": (["a.b"], ["a", "a.b.c", "b.a", "A.b", "a.b.", ".a.b", "ab"]),
    "*": (["a", "abc", "*", "#"], ["", "a.b", ".", "a."]),
    "a.*": (["a.b", "a.", "a.*", "a.#"], ["a", "a.b.c", "b.a", ".a.b"]),
    "*.b": (["a.b", ".b"], ["b", "a.a.b", "a.b.c"]),
    "*.*": (["a.b", ".", "a.", ".b"], ["a", "", "a.b.c", ".."]),
    "#": (["", "a", "a.b", "a.b.c", ".", "..", MANY], []),
    "a.#": (["a", "a.b", "a.b.c", "a.", "a.."], ["", "b", "b.a", "ab", ".a"]),
    "#.b": (["b", "a.b", "a.c.b", ".b"], ["", "a", "b.a", "bb"]),
    "a.#.b": (["a.b", "a.x.b", "a.x.y.b", "a.b.b", "a..b", "a.b.x.b"], ["a", "b", "a.b.c", "a.x", "x.a.b"]),
    "#.a.#": (["a", "x.a", "a.x", "x.a.y", "a.a", "x.y.a.z.w"], ["", "b", "ab.c", "x.ab"]),
    "#.#": (["", "a", "a.b", "a.b.c", "."], []),
    "#.*": (["a", "a.b", "a.b.c", "."], [""]),
    "*.#": (["a", "a.b", "a.b.c", "."], [""]),
    "*.*.#": (["a.b", "a.b.c"], ["", "a"]),
    "a.*.#": (["a.b", "a.b.c", "a.b.c.d"], ["a", "b.c"]),
    "a.#.*": (["a.b", "a.b.c"], ["a", "b.a"]),
    "*.#.*": (["a.b", "a.b.c", "a.b.c.d"], ["a", ""]),
    "#.#.b": (["b", "a.b", "a.a.b"], ["", "a"]),
    "a..b": (["a..b"], ["a.b", "a.x.b"]),
    "a.*.b": (["a..b", "a.x.b"], ["a.b", "a.x.y.b"]),
    "": ([""], ["a", "."]),
    ".": (["."], ["", "a", "a."]),
    "a*": (["a*"], ["a", "ab", "a.b"]),
    "a#": (["a#"], ["a", "ab", "a.b"]),
    "*a": (["*a"], ["a", "ba"]),
    MANY: ([MANY], [MANY + ".x", MANY.rsplit(".", 1)[0]]),
    "w0.#.w59": ([MANY, "w0.w59"], ["w0.w58", MANY + ".w60"]),
    "#.w30.#": ([MANY, "w30"], ["w3.w0"]),
    "*." * 59 + "*": ([MANY], [MANY + ".x"]),
}


@pytest.mark.parametrize("pattern", list(CASES), ids=lambda p: repr(p[:20]))
def test_pattern(ch, x, pattern):
    matching, other = CASES[pattern]
    a = q(ch)
    ch.queue_bind(a, x, routing_key=pattern)
    for key in matching + other:
        ch.basic_publish(x, key, key.encode())
    assert bodies(ch, a) == [k.encode() for k in matching]


def test_several_matching_bindings_give_one_copy(ch, x):
    a = q(ch)
    for pattern in ["#", "a.#", "*.b.*", "a.b.c", "#.c", "a.*.c", "#.#"]:
        ch.queue_bind(a, x, routing_key=pattern)
    ch.basic_publish(x, "a.b.c", b"once")
    ch.basic_publish(x, "z", b"via-hash")
    assert bodies(ch, a) == [b"once", b"via-hash"]


def test_fan_out_to_several_queues(ch, x):
    qa, qb, qc = q(ch), q(ch), q(ch)
    ch.queue_bind(qa, x, routing_key="stock.*.nyse")
    ch.queue_bind(qb, x, routing_key="stock.#")
    ch.queue_bind(qc, x, routing_key="*.ibm.*")
    ch.basic_publish(x, "stock.ibm.nyse", b"1")
    ch.basic_publish(x, "stock.msft.nasdaq", b"2")
    ch.basic_publish(x, "bond.ibm.x", b"3")
    assert bodies(ch, qa) == [b"1"]
    assert bodies(ch, qb) == [b"1", b"2"]
    assert bodies(ch, qc) == [b"1", b"3"]


def test_unbind_removes_only_that_pattern(ch, x):
    a = q(ch)
    ch.queue_bind(a, x, routing_key="a.*")
    ch.queue_bind(a, x, routing_key="a.#")
    ch.queue_unbind(a, x, routing_key="a.*")
    ch.basic_publish(x, "a.b", b"via-hash")
    ch.basic_publish(x, "a", b"a")
    ch.queue_unbind(a, x, routing_key="a.#")
    ch.basic_publish(x, "a.b", b"none")
    assert bodies(ch, a) == [b"via-hash", b"a"]


def test_overlapping_patterns_on_shared_prefixes(ch, x):
    # bindings that share trie nodes must not disturb each other on unbind
    a, b = q(ch), q(ch)
    ch.queue_bind(a, x, routing_key="p.q.r")
    ch.queue_bind(b, x, routing_key="p.q")
    ch.queue_bind(b, x, routing_key="p.*.r")
    ch.queue_unbind(b, x, routing_key="p.*.r")
    ch.basic_publish(x, "p.q.r", b"pqr")
    ch.basic_publish(x, "p.q", b"pq")
    assert bodies(ch, a) == [b"pqr"]
    assert bodies(ch, b) == [b"pq"]


def test_case_sensitive(ch, x):
    a = q(ch)
    ch.queue_bind(a, x, routing_key="Log.*")
    ch.basic_publish(x, "log.info", b"lower")
    ch.basic_publish(x, "Log.info", b"upper")
    assert bodies(ch, a) == [b"upper"]
