"""Access control: configure / write / read permissions, checked on every operation as
in RabbitMQ's table (https://www.rabbitmq.com/access-control.html).

The world (helpers.AccessWorld): in a vhost V, user `pu` may configure names containing
"+c", write names containing "+w", read names containing "+r" (unanchored regexes: the
markers sit anywhere in the names); user `empty` has empty permissions ("" matches
nothing); guest sets objects up.

Recorded against RabbitMQ 3.10.8 (every refusal is a channel error, the connection stays
open): 403 ACCESS_REFUSED - access to <exchange|queue> '<name>' in vhost '<V>' refused for
user '<u>'; the default exchange is the resource 'amq.default'.
- exchange.declare / exchange.delete: configure on the exchange (even when it does not
  exist); when it creates the exchange with an alternate-exchange, also read on the
  exchange, then write on the AE;
- queue.declare / queue.delete: configure on the queue (a server-named queue: on its
  generated amq.gen-... name); when it creates the queue with x-dead-letter-exchange, also
  read on the queue, then write on the DLX; passive declares need no permission;
- queue.bind / queue.unbind: write on the queue, then read on the exchange;
- exchange.bind / exchange.unbind: write on the destination, then read on the source;
- basic.publish: write on the exchange; basic.consume / basic.get / queue.purge: read on
  the queue; permissions are checked before existence (403 before 404).
"""

import pika
import pytest

from helpers import (
    BASIC_CONSUME,
    BASIC_GET,
    BASIC_PUBLISH,
    EXCHANGE_BIND,
    EXCHANGE_DECLARE,
    EXCHANGE_DELETE,
    EXCHANGE_UNBIND,
    QUEUE_BIND,
    QUEUE_DECLARE,
    QUEUE_DELETE,
    QUEUE_PURGE,
    QUEUE_UNBIND,
    AccessWorld,
    channel_closed,
    unique_tag,
    wait_channel_closed,
)


class Names:
    def __init__(self, tag):
        self.tag = tag
        self.vhost = f"perm-{tag}"
        self.pu = f"pu-{tag}"
        self.empty = f"empty-{tag}"

    def __call__(self, base, marks=""):
        """A resource name: e.g. n('q', 'wr') -> 'q-<tag>+w+r'."""
        return f"{base}-{self.tag}" + "".join("+" + m for m in marks)


@pytest.fixture(scope="module")
def world(broker):
    n = Names(unique_tag())
    with AccessWorld(
        broker,
        users={n.pu: ("pu-password", []), n.empty: ("empty-password", [])},
        vhosts=[n.vhost],
        permissions=[(n.pu, n.vhost, r"\+c", r"\+w", r"\+r"),
                     (n.empty, n.vhost, "", "", "")],
    ) as w:
        w.n = n
        admin = w.connect("guest", n.vhost)
        ch = admin.channel()
        for marks in ["", "c", "r", "w", "wr", "cr", "cwr"]:
            ch.exchange_declare(n("x", marks), "direct")
            ch.queue_declare(n("q", marks))
        admin.close()
        yield w


@pytest.fixture
def n(world):
    return world.n


@pytest.fixture
def pconn(world):
    c = world.connect(world.n.pu, world.n.vhost)
    yield c
    if c.is_open:
        c.close()


def refused(world, kind, name, user=None):
    return (f"ACCESS_REFUSED - access to {kind} '{name}' in vhost '{world.n.vhost}' "
            f"refused for user '{user or world.n.pu}'")


def check(world, pconn, fn, refused_kind=None, refused_name=None, ids=None):
    """Run fn(channel); expect success, or a 403 naming (refused_kind, refused_name)."""
    ch = pconn.channel()
    if refused_kind is None:
        fn(ch)
        assert ch.is_open
    else:
        with channel_closed(403, refused(world, refused_kind, refused_name), ids):
            fn(ch)
    assert pconn.is_open


# ---------------------------------------------------------------- exchanges


def test_exchange_declare_needs_configure(world, pconn, n):
    check(world, pconn, lambda ch: ch.exchange_declare(n("new", "c"), "fanout"))
    check(world, pconn, lambda ch: ch.exchange_declare(n("new", "wr"), "fanout"),
          "exchange", n("new", "wr"), EXCHANGE_DECLARE)
    # redeclaring an existing exchange needs configure too
    check(world, pconn, lambda ch: ch.exchange_declare(n("x", "wr"), "direct"),
          "exchange", n("x", "wr"), EXCHANGE_DECLARE)


def test_passive_declares_need_no_permission(world, pconn, n):
    check(world, pconn, lambda ch: ch.exchange_declare(n("x"), "direct", passive=True))
    check(world, pconn, lambda ch: ch.queue_declare(n("q"), passive=True))


def test_exchange_delete_needs_configure(world, pconn, n):
    check(world, pconn, lambda ch: ch.exchange_delete(n("x", "wr")),
          "exchange", n("x", "wr"), EXCHANGE_DELETE)
    check(world, pconn, lambda ch: ch.exchange_delete(n("missing")),
          "exchange", n("missing"), EXCHANGE_DELETE)
    check(world, pconn, lambda ch: ch.exchange_delete(n("missing", "c")))


@pytest.mark.parametrize("xm,aem,refused_on", [
    ("cr", "w", None),
    ("c", "w", "x"),      # no read on the exchange itself
    ("cr", "", "ae"),     # no write on the alternate exchange
    ("c", "", "x"),       # both missing: the exchange is named
], ids=["ok", "no-read", "no-write-on-ae", "both"])
def test_exchange_declare_with_alternate_exchange(world, pconn, n, xm, aem, refused_on):
    x = n(f"aex-{refused_on}", xm)
    ae = n("ae", aem)
    names = {"x": ("exchange", x), "ae": ("exchange", ae)}
    kind, name = names[refused_on] if refused_on else (None, None)
    check(world, pconn, lambda ch: ch.exchange_declare(
        x, "direct", arguments={"alternate-exchange": ae}), kind, name, EXCHANGE_DECLARE)


# ---------------------------------------------------------------- queues


def test_queue_declare_needs_configure(world, pconn, n):
    check(world, pconn, lambda ch: ch.queue_declare(n("newq", "c")))
    check(world, pconn, lambda ch: ch.queue_declare(n("newq", "c")))  # redeclare
    check(world, pconn, lambda ch: ch.queue_declare(n("exclq", "c"), exclusive=True))
    check(world, pconn, lambda ch: ch.queue_declare(n("q", "wr")),
          "queue", n("q", "wr"), QUEUE_DECLARE)


def test_server_named_queue_needs_configure_on_its_generated_name(world, pconn):
    ch = pconn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare("", exclusive=True)
    prefix = "ACCESS_REFUSED - access to queue 'amq.gen-"
    suffix = f"' in vhost '{world.n.vhost}' refused for user '{world.n.pu}'"
    assert e.value.reply_code == 403
    assert e.value.reply_text.startswith(prefix) and e.value.reply_text.endswith(suffix)
    generated = e.value.reply_text[len(prefix) - len("amq.gen-"):-len(suffix)]
    assert len(generated) == len("amq.gen-") + 22


@pytest.mark.parametrize("qm,dlxm,refused_on", [
    ("cr", "w", None),
    ("c", "w", "q"),
    ("cr", "", "dlx"),
    ("c", "", "q"),
], ids=["ok", "no-read", "no-write-on-dlx", "both"])
def test_queue_declare_with_dead_letter_exchange(world, pconn, n, qm, dlxm, refused_on):
    q = n(f"dlq-{refused_on}", qm)
    dlx = n("dlx", dlxm)
    kind, name = {"q": ("queue", q), "dlx": ("exchange", dlx), None: (None, None)}[refused_on]
    check(world, pconn, lambda ch: ch.queue_declare(
        q, arguments={"x-dead-letter-exchange": dlx}), kind, name, QUEUE_DECLARE)


def test_dlx_and_ae_are_checked_only_when_created(world, pconn, n):
    """Redeclaring an existing queue / exchange checks configure only."""
    admin = world.connect("guest", n.vhost)
    try:
        ach = admin.channel()
        ach.queue_declare(n("predlq", "c"), arguments={"x-dead-letter-exchange": n("x")})
        ach.exchange_declare(n("preae", "c"), "direct", arguments={"alternate-exchange": n("x")})
    finally:
        admin.close()
    check(world, pconn, lambda ch: ch.queue_declare(
        n("predlq", "c"), arguments={"x-dead-letter-exchange": n("x")}))
    check(world, pconn, lambda ch: ch.exchange_declare(
        n("preae", "c"), "direct", arguments={"alternate-exchange": n("x")}))


def test_dead_letter_to_default_exchange_needs_write_on_amq_default(world, pconn, n):
    check(world, pconn, lambda ch: ch.queue_declare(
        n("dldef", "cr"), arguments={"x-dead-letter-exchange": ""}),
          "exchange", "amq.default", QUEUE_DECLARE)


def test_queue_delete_needs_configure(world, pconn, n):
    check(world, pconn, lambda ch: ch.queue_delete(n("q", "wr")),
          "queue", n("q", "wr"), QUEUE_DELETE)
    check(world, pconn, lambda ch: ch.queue_delete(n("missing")),
          "queue", n("missing"), QUEUE_DELETE)
    check(world, pconn, lambda ch: ch.queue_delete(n("missing", "c")))


def test_queue_purge_needs_read(world, pconn, n):
    check(world, pconn, lambda ch: ch.queue_purge(n("q", "r")))
    check(world, pconn, lambda ch: ch.queue_purge(n("q", "cw")), "queue", n("q", "cw"),
          QUEUE_PURGE)


# ---------------------------------------------------------------- bindings


@pytest.mark.parametrize("qm,xm,refused_on", [
    ("w", "r", None), ("", "r", "q"), ("w", "", "x"), ("", "", "q"),
], ids=["ok", "no-write-on-queue", "no-read-on-exchange", "both"])
@pytest.mark.parametrize("op", ["bind", "unbind"])
def test_queue_bind_and_unbind(world, pconn, n, qm, xm, refused_on, op):
    q, x = n("q", qm), n("x", xm)
    kind, name = {"q": ("queue", q), "x": ("exchange", x), None: (None, None)}[refused_on]
    if op == "bind":
        check(world, pconn, lambda ch: ch.queue_bind(q, x, "k"), kind, name, QUEUE_BIND)
    else:
        check(world, pconn, lambda ch: ch.queue_unbind(q, x, "k"), kind, name, QUEUE_UNBIND)


@pytest.mark.parametrize("dm,sm,refused_on", [
    ("w", "r", None), ("", "r", "dst"), ("w", "", "src"), ("", "", "dst"),
], ids=["ok", "no-write-on-destination", "no-read-on-source", "both"])
@pytest.mark.parametrize("op", ["bind", "unbind"])
def test_exchange_bind_and_unbind(world, pconn, n, dm, sm, refused_on, op):
    dst, src = n("x", dm), n("x", sm)
    if dst == src:
        src = n("x", sm + "c")  # another exchange with the same read/write marks
    kind, name = {"dst": ("exchange", dst), "src": ("exchange", src), None: (None, None)}[
        refused_on]
    if op == "bind":
        check(world, pconn, lambda ch: ch.exchange_bind(dst, src, "k"), kind, name,
              EXCHANGE_BIND)
    else:
        check(world, pconn, lambda ch: ch.exchange_unbind(dst, src, "k"), kind, name,
              EXCHANGE_UNBIND)


def test_bind_checks_permissions_before_existence(world, pconn, n):
    check(world, pconn, lambda ch: ch.queue_bind(n("missing"), n("x", "r")),
          "queue", n("missing"), QUEUE_BIND)
    check(world, pconn, lambda ch: ch.queue_bind(n("missing", "w"), n("missing2")),
          "exchange", n("missing2"), QUEUE_BIND)


# ---------------------------------------------------------------- publish / consume / get


def test_publish_needs_write_on_the_exchange(world, pconn, n):
    ch = pconn.channel()
    ch.confirm_delivery()
    ch.basic_publish(n("x", "w"), "k", b"ok")
    for exchange, resource in [(n("x", "cr"), n("x", "cr")), ("", "amq.default"),
                               (n("missing"), n("missing"))]:
        ch = pconn.channel()
        ch.basic_publish(exchange, n("q", "cwr"), b"m")
        wait_channel_closed(pconn, ch, 403, refused(world, "exchange", resource), BASIC_PUBLISH)
        assert pconn.is_open


def test_publish_with_write_to_missing_exchange_is_404(world, pconn, n):
    ch = pconn.channel()
    ch.basic_publish(n("missing", "w"), "k", b"m")
    wait_channel_closed(pconn, ch, 404, f"NOT_FOUND - no exchange '{n('missing', 'w')}' in "
                                        f"vhost '{world.n.vhost}'", BASIC_PUBLISH)


def test_consume_and_get_need_read(world, pconn, n):
    check(world, pconn, lambda ch: ch.basic_consume(n("q", "r"), lambda *a: None))
    check(world, pconn, lambda ch: ch.basic_get(n("q", "r")))
    check(world, pconn, lambda ch: ch.basic_consume(n("q", "cw"), lambda *a: None),
          "queue", n("q", "cw"), BASIC_CONSUME)
    check(world, pconn, lambda ch: ch.basic_get(n("q", "cw")), "queue", n("q", "cw"), BASIC_GET)
    check(world, pconn, lambda ch: ch.basic_get(n("missing")), "queue", n("missing"), BASIC_GET)


def test_messages_flow_with_the_right_permissions(world, pconn, n):
    ch = pconn.channel()
    q, x = n("flow", "cwr"), n("flowx", "cwr")
    ch.exchange_declare(x, "direct")
    ch.queue_declare(q)
    ch.queue_bind(q, x, "k")
    ch.confirm_delivery()
    ch.basic_publish(x, "k", b"m")
    assert ch.basic_get(q, auto_ack=True)[2] == b"m"
    ch.queue_delete(q)
    ch.exchange_delete(x)


# ---------------------------------------------------------------- empty permissions


def test_empty_permissions_allow_login_but_nothing_else(world, n):
    c = world.connect(n.empty, n.vhost)
    try:
        ch = c.channel()
        ch.exchange_declare(n("x"), "direct", passive=True)
        with channel_closed(403, refused(world, "queue", n("q", "cwr"), n.empty), BASIC_GET):
            c.channel().basic_get(n("q", "cwr"))
        with channel_closed(403, refused(world, "queue", n("e", "cwr"), n.empty), QUEUE_DECLARE):
            c.channel().queue_declare(n("e", "cwr"))
    finally:
        c.close()
