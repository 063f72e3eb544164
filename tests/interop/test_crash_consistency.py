"""Crash consistency (issue 3): SIGKILL the broker at random moments under load.

Each round, on the same data directory: publishers with confirms (pipelined, hundreds in
flight) and consumers run against a durable queue; the broker is SIGKILLed after a
random 0.2-1.5 s; it is started again and the queue is drained and checked against a
model of everything the clients saw, across all rounds so far:

- every confirmed persistent message that no consumer ever tried to ack is present;
- a message is in the queue at most once, and any message delivered before (in an earlier
  round, or before this crash) comes back flagged redelivered;
- every body and message-id is byte-exact for its id (nothing, confirmed or not, is
  corrupted, torn or invented); transient messages never survive;
- messages never delivered before come back in publish order (per publisher);
- a queue of sentinel messages published once at the start survives every crash intact.

CRASH_ROUNDS (default 10) sets the rounds per test, CRASH_SEED the random seed (printed
when a test fails). The last test checks, with strace, that a confirm / tx.commit-ok for
a persistent message is written only after an fsync (SIGKILL cannot show that: the page
cache survives it).
"""

import hashlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest
from pika import spec

from durability_helpers import (
    PERSISTENT,
    TRANSIENT,
    Closed,
    ConfirmTracker,
    Content,
    RawConn,
    RestartableWarren,
    drain,
    killable,  # noqa: F401  (fixture)
    private_warren,  # noqa: F401  (fixture)
    publish_confirmed,
)

ROUNDS = int(os.environ.get("CRASH_ROUNDS", "10"))
SEED = int(os.environ.get("CRASH_SEED", str(random.randrange(1 << 32))))
JOIN_TIMEOUT = 30.0


# ---------------------------------------------------------------- message identities


def body_for(mid):
    """The one correct body for message id `mid` (bytes): the id, a separator, then
    pseudo-random bytes of a size drawn from the id (0 B to 300 KB, mostly small)."""
    h = hashlib.blake2b(mid, digest_size=8).digest()
    r = int.from_bytes(h, "big")
    bucket = r % 1000
    if bucket < 600:
        size = r % 200
    elif bucket < 900:
        size = 200 + r % 4000
    elif bucket < 995:
        size = 4000 + r % 60000
    else:
        size = 131072 + r % 170000  # spans body frames
    return mid + b"|" + random.Random(h).randbytes(size)


def parse_id(body):
    mid, sep, _ = body.partition(b"|")
    return mid if sep else None


class Model:
    """What the clients know about every message ever published in this test."""

    def __init__(self):
        self.persistent = {}      # id -> bool
        self.confirmed = set()
        self.deliveries = {}      # id -> deliveries seen by any client
        self.ack_tried = set()    # an ack (or no-ack delivery) was sent: may be gone
        self.order = {}           # id -> (publisher key, seq)

    def published(self, mid, persistent, key, seq):
        self.persistent[mid] = persistent
        self.order[mid] = (key, seq)

    def delivered(self, mid):
        self.deliveries[mid] = self.deliveries.get(mid, 0) + 1


# ---------------------------------------------------------------- clients


class Publisher(threading.Thread):
    """Publishes unique messages on a confirm channel with up to `window` unconfirmed,
    until the connection dies. Records every id it sent and every id confirmed."""

    def __init__(self, rb, queue, key, persistent, window, started):
        super().__init__(daemon=True, name=f"publisher-{key}")
        self.rb, self.queue, self.key = rb, queue, key
        self.persistent = persistent
        self.window = window
        self.started = started
        self.sent = []        # (id, seq) in publish order; sent or about to be
        self.confirmed = []
        self.nacked = []
        self.error = None
        self.stop = threading.Event()

    def run(self):
        try:
            c = RawConn.to(self.rb.broker)
            c.open_channel(1, confirm=True)
        except Exception as e:  # the kill may come before we are up
            self.error = e
            self.started.set()
            return
        props = spec.BasicProperties(delivery_mode=PERSISTENT if self.persistent else TRANSIENT)
        tracker = ConfirmTracker()
        seq = 0
        first = True
        try:
            while not self.stop.is_set():
                batch = []
                while len(tracker) < self.window and len(batch) < 16:
                    mid = b"%s.%08d" % (self.key.encode(), seq)
                    props.message_id = mid.decode()
                    batch.append(c.publish_bytes(1, "", self.queue, body_for(mid), props))
                    self.sent.append((mid, seq))
                    tracker.sent(mid)
                    seq += 1
                c.sock.sendall(b"".join(batch))
                if first:
                    self.started.set()
                    first = False
                while len(tracker) >= self.window // 2:
                    try:
                        _, m = c.next_method(timeout=JOIN_TIMEOUT)
                    except socket.timeout:
                        self.error = AssertionError(
                            f"{self.name}: no confirm for {JOIN_TIMEOUT}s with "
                            f"{len(tracker)} outstanding")
                        return
                    if isinstance(m, spec.Basic.Ack):
                        self.confirmed.extend(tracker.settle(m.delivery_tag, m.multiple))
                    elif isinstance(m, spec.Basic.Nack):
                        self.nacked.extend(tracker.settle(m.delivery_tag, m.multiple))
                    else:
                        raise AssertionError(f"{self.name}: unexpected {m!r}")
        except Closed as e:
            if e.reply_code is not None:  # closed by the broker, not by the kill
                self.error = e
        except OSError:
            pass  # the broker was killed
        except Exception as e:
            self.error = e
        finally:
            self.started.set()
            c.sock.close()


class Consumer(threading.Thread):
    """Consumes with manual acks until the connection dies.

    mode "mixed": acks most, requeues some (basic.reject requeue=true), keeps some unacked.
    mode "acker": acks everything, in batches of random size with multiple=true (or one
    by one), so acks are streaming when the kill lands."""

    def __init__(self, rb, queue, name, mode, rnd, prefetch, started):
        super().__init__(daemon=True, name=name)
        self.rb, self.queue, self.mode, self.rnd = rb, queue, mode, rnd
        self.prefetch = prefetch
        self.started = started
        self.deliveries = []  # (id, redelivered, body ok)
        self.ack_tried = set()
        self.error = None
        self.bad = []

    def run(self):
        try:
            c = RawConn.to(self.rb.broker)
            c.open_channel(1, prefetch=self.prefetch)
            c.rpc(1, spec.Basic.Consume(queue=self.queue, consumer_tag=self.name),
                  spec.Basic.ConsumeOk)
        except Exception as e:
            self.error = e
            self.started.set()
            return
        self.started.set()
        pending = []  # (tag, id) delivered, not yet acked, in "acker" mode
        batch = self.rnd.randint(1, 50)
        try:
            while True:
                try:
                    ev = c.next_event(timeout=JOIN_TIMEOUT)
                except socket.timeout:
                    continue
                if not isinstance(ev, Content):
                    raise AssertionError(f"{self.name}: unexpected {ev[1]!r}")
                mid = parse_id(ev.body)
                if mid is None or ev.body != body_for(mid):
                    self.bad.append(ev.body[:80])
                    continue
                tag = ev.method.delivery_tag
                self.deliveries.append((mid, ev.redelivered))
                if self.mode == "acker":
                    pending.append(mid)
                    if len(pending) >= batch:
                        self.ack_tried.update(pending)
                        c.send_method(1, spec.Basic.Ack(delivery_tag=tag,
                                                        multiple=len(pending) > 1))
                        pending = []
                        batch = self.rnd.randint(1, 50)
                    continue
                r = self.rnd.random()
                if r < 0.8:
                    self.ack_tried.add(mid)
                    c.send_method(1, spec.Basic.Ack(delivery_tag=tag))
                elif r < 0.9:
                    c.send_method(1, spec.Basic.Reject(delivery_tag=tag, requeue=True))
                # else: keep it unacked
        except Closed as e:
            if e.reply_code is not None:  # closed by the broker, not by the kill
                self.error = e
        except OSError:
            pass  # the broker was killed
        except Exception as e:
            self.error = e
        finally:
            c.sock.close()


# ---------------------------------------------------------------- checks


def check_after_restart(model, got, round_no, report):
    """The drained messages `got` (list of Content) against the model. Returns the list
    of problems (empty when all is well), then records the drain in the model."""
    problems = []
    seen = {}
    last_seq = {}
    for c in got:
        mid = parse_id(c.body)
        if mid is None or mid not in model.persistent:
            problems.append(f"unknown or corrupt message (no known id): {c.body[:60]!r}")
            continue
        if c.body != body_for(mid):
            problems.append(f"{mid!r}: body corrupted ({len(c.body)} B, "
                            f"expected {len(body_for(mid))} B)")
        if c.props.message_id != mid.decode():
            problems.append(f"{mid!r}: message-id property is {c.props.message_id!r}")
        if not model.persistent[mid]:
            problems.append(f"{mid!r}: a transient message survived the crash")
        if c.props.delivery_mode != PERSISTENT:
            problems.append(f"{mid!r}: delivery-mode {c.props.delivery_mode!r}")
        if mid in seen:
            problems.append(f"{mid!r}: twice in the queue after the restart")
        seen[mid] = c.redelivered
        if model.deliveries.get(mid, 0) > 0:
            if not c.redelivered:
                problems.append(f"{mid!r}: delivered before the crash, back without the "
                                f"redelivered flag")
        else:
            key, seq = model.order[mid]
            if seq <= last_seq.get(key, -1):
                problems.append(f"{mid!r}: out of publish order (after seq {last_seq[key]})")
            last_seq[key] = seq
    missing = [mid for mid in model.confirmed
               if model.persistent[mid] and mid not in model.ack_tried and mid not in seen]
    if missing:
        missing.sort()
        problems.append(f"{len(missing)} confirmed, never-acked messages lost, e.g. "
                        f"{[m.decode() for m in missing[:5]]}")
    for mid in seen:
        model.delivered(mid)
        model.ack_tried.add(mid)  # the drain acks everything
    report.append(f"round {round_no}: {len(got)} recovered, "
                  f"{sum(1 for r in seen.values() if r)} flagged redelivered")
    return problems


def sentinel_messages():
    return [(spec.BasicProperties(delivery_mode=PERSISTENT, message_id=f"s{i}"),
             b"sentinel-%d|" % i + random.Random(i).randbytes(i * 131)) for i in range(200)]


def check_sentinels(rb, queue, expected):
    """All sentinel messages are there, intact and in order; put them back (requeue)."""
    c = rb.raw()
    try:
        c.open_channel(1)
        got = []
        while True:
            m = c.get(1, queue, no_ack=False, timeout=30)
            if m is None:
                break
            got.append(m)
        if got:
            c.send_method(1, spec.Basic.Nack(delivery_tag=got[-1].method.delivery_tag,
                                             multiple=True, requeue=True))
        # The requeue may be applied asynchronously (RabbitMQ routes it through a
        # delegate process): wait for it, so the next crash finds them all ready.
        deadline = time.monotonic() + 30
        while c.rpc(1, spec.Queue.Declare(queue=queue, passive=True),
                    spec.Queue.DeclareOk).message_count != len(got):
            assert time.monotonic() < deadline, "requeued sentinels did not come back"
            time.sleep(0.01)
    finally:
        c.close()
    bodies = [m.body for m in got]
    assert len(bodies) == len(expected), \
        f"sentinel queue has {len(bodies)} messages, expected {len(expected)}"
    for i, (b, (_, want)) in enumerate(zip(bodies, expected)):
        assert b == want, f"sentinel {i} corrupted or out of order"


def declare_queue(rb, queue):
    c = rb.raw()
    try:
        c.open_channel(1)
        c.rpc(1, spec.Queue.Declare(queue=queue, durable=True), spec.Queue.DeclareOk)
    finally:
        c.close()


def queue_missing(rb, queue):
    c = rb.raw()
    try:
        c.open_channel(1)
        c.rpc(1, spec.Queue.Declare(queue=queue, passive=True), spec.Queue.DeclareOk)
        return False
    except Closed as e:
        if e.reply_code == 404:
            return True
        raise
    finally:
        c.close()


def run_rounds(rb, uniq, consumers, prefill, rounds, seed):
    """The crash loop shared by the tests. consumers: list of (mode, prefetch)."""
    rnd = random.Random(seed)
    q, sq = uniq("q"), uniq("sentinels")
    rb.track(queues=[q, sq])
    declare_queue(rb, q)
    declare_queue(rb, sq)
    sentinels = sentinel_messages()
    publish_confirmed(rb, sq, sentinels)
    model = Model()
    report = [f"seed {seed}"]
    total_confirmed = total_in_flight = 0
    for r in range(rounds):
        if prefill:
            key = f"r{r}.pre"
            msgs = []
            for seq in range(prefill):
                mid = b"%s.%08d" % (key.encode(), seq)
                model.published(mid, True, key, seq)
                msgs.append((spec.BasicProperties(delivery_mode=PERSISTENT,
                                                  message_id=mid.decode()), body_for(mid)))
            publish_confirmed(rb, q, msgs)
            model.confirmed.update(parse_id(b) for _, b in msgs)
        started = [threading.Event() for _ in range(3 + len(consumers))]
        pubs = [Publisher(rb, q, f"r{r}.p{i}", persistent=(i != 2), window=400,
                          started=started[i]) for i in range(3)]
        cons = [Consumer(rb, q, f"r{r}.c{i}", mode, random.Random(rnd.random()), prefetch,
                         started[3 + i]) for i, (mode, prefetch) in enumerate(consumers)]
        for t in cons + pubs:
            t.start()
        for e in started:
            assert e.wait(JOIN_TIMEOUT), "a client did not start"
        delay = rnd.uniform(0.2, 1.5)
        time.sleep(delay)  # the random kill moment
        rb.kill9()
        for t in pubs + cons:
            t.join(JOIN_TIMEOUT)
            assert not t.is_alive(), f"{t.name} still running {JOIN_TIMEOUT}s after the kill"
        for t in pubs + cons:
            if t.error is not None:
                raise AssertionError(f"{t.name} failed: {t.error!r}")
        for c in cons:
            assert not c.bad, f"{c.name} got corrupt bodies before the crash: {c.bad[:3]}"
        # Record what the clients saw.
        in_flight = 0
        for p in pubs:
            for mid, seq in p.sent:
                model.published(mid, p.persistent, p.key, seq)
            model.confirmed.update(p.confirmed)
            in_flight += len(p.sent) - len(p.confirmed) - len(p.nacked)
            assert not p.nacked, f"{p.name}: broker nacked {len(p.nacked)} publishes"
        for c in cons:
            for mid, _ in c.deliveries:
                model.delivered(mid)
            model.ack_tried.update(c.ack_tried)
        confirmed_now = sum(len(p.confirmed) for p in pubs if p.persistent)
        total_confirmed += confirmed_now
        total_in_flight += in_flight
        report.append(
            f"round {r}: killed after {delay:.2f}s; published "
            f"{sum(len(p.sent) for p in pubs)}, confirmed {confirmed_now} persistent, "
            f"{in_flight} unconfirmed in flight; consumers got "
            f"{sum(len(c.deliveries) for c in cons)}, acked "
            f"{sum(len(c.ack_tried) for c in cons)}")

        rb.start()
        assert not queue_missing(rb, q), f"round {r}: the durable queue is gone after the crash"
        got = drain(rb, q, timeout=60)
        problems = check_after_restart(model, got, r, report)
        if problems:
            raise AssertionError(
                f"round {r} (seed {seed}): {len(problems)} problems:\n  "
                + "\n  ".join(problems[:20]) + "\n" + "\n".join(report))
        check_sentinels(rb, sq, sentinels)
    print("\n".join(report))
    assert total_confirmed > 0, "no message was ever confirmed: the test checked nothing"
    assert total_in_flight > 0, "no kill ever caught a publish in flight"
    return report


@pytest.mark.timeout(120 + 40 * ROUNDS)
def test_crash_under_publishers_and_consumer(killable, uniq):
    """2 persistent publishers + 1 transient one, a consumer acking most, requeueing
    some, keeping some unacked; SIGKILL at random; drain and check; repeat."""
    run_rounds(killable, uniq, consumers=[("mixed", 300)], prefill=0, rounds=ROUNDS, seed=SEED)


@pytest.mark.timeout(120 + 40 * ROUNDS)
def test_crash_while_consumers_ack(killable, uniq):
    """A pre-filled queue being consumed by two acking consumers (single and multiple
    acks) while publishers keep it fed: the kill lands amid acks."""
    run_rounds(killable, uniq, consumers=[("acker", 100), ("acker", 1000)], prefill=2000,
               rounds=max(2, ROUNDS // 2), seed=SEED + 1)


# ---------------------------------------------------------------- fsync before confirm

SYNC_CALLS = ("fsync", "fdatasync", "sync_file_range", "syncfs", "sync", "msync")
TRACED = ("read,readv,recvfrom,recvmsg,write,writev,sendto,sendmsg,pwrite64,pwritev,pwritev2,"
          "fsync,fdatasync,sync_file_range,syncfs,sync,msync,io_uring_enter,accept4,accept")
LINE = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+(.*)$")


def hexs(data):
    return "".join("\\x%02x" % b for b in data)


class Strace:
    """strace -f attached to a running process, recording the syscalls in TRACED with
    their buffers in hex."""

    def __init__(self, pid, out):
        self.out = out
        self.proc = subprocess.Popen(
            ["strace", "-f", "-qq", "-xx", "-s", "262144", "-e", f"trace={TRACED}",
             "-e", "signal=none", "-o", out, "-p", str(pid)],
            stderr=subprocess.PIPE)

    def wait_attached(self, rb, timeout=30):
        """Open connections until the broker's accept shows up in the trace."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:  # e.g. no ptrace permission in a container
                pytest.skip(f"strace cannot trace the broker: "
                            f"{self.proc.stderr.read().decode().strip()}")
            rb.raw().close()
            try:
                if "accept" in open(self.out).read():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("strace did not attach")

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return [l.rstrip("\n") for l in open(self.out)]


def syscall_name(text):
    if text.startswith("<... "):
        return text[5:].split()[0]
    return text.split("(", 1)[0]


def first_index(lines, pred, start=0):
    for i in range(start, len(lines)):
        if pred(lines[i]):
            return i
    return None


def assert_synced_between(lines, marker, reply, what, pid):
    """In the trace: the read that brought `marker` in, then a completed sync call, then
    the socket write of `reply`. If the marker is seen written to a file, the sync must
    follow that write (unless the write was RWF_DSYNC or the file is open O_DSYNC)."""
    m_hex, r_hex = hexs(marker), hexs(reply)
    texts = []
    for raw in lines:
        m = LINE.match(raw)
        texts.append(m.group(2) if m else raw)
    if any(syscall_name(t) == "io_uring_enter" for t in texts):
        pytest.skip("the broker uses io_uring: fsync ordering is not visible to strace")
    i_read = first_index(texts, lambda t: m_hex in t and syscall_name(t).startswith(
        ("read", "recv", "<...")))
    assert i_read is not None, f"{what}: the publish was not seen being read"
    i_reply = first_index(texts, lambda t: r_hex in t and syscall_name(t).startswith(
        ("write", "send")), i_read)
    assert i_reply is not None, f"{what}: the reply was not seen being written"
    i_file = first_index(texts, lambda t: m_hex in t and syscall_name(t).startswith(
        ("write", "pwrite")), i_read)
    data_fd = None
    if i_file is not None and i_file < i_reply:
        fdm = re.match(r"\w+\((\d+),", texts[i_file])
        data_fd = fdm.group(1) if fdm else None
        if "RWF_DSYNC" in texts[i_file] or "RWF_SYNC" in texts[i_file]:
            return "dsync-write"
        if data_fd is not None:
            try:
                flags = int(re.search(r"flags:\s*(\d+)",
                                      open(f"/proc/{pid}/fdinfo/{data_fd}").read()).group(1), 8)
                if flags & 0o10000:  # O_DSYNC (O_SYNC includes it)
                    return "dsync-write"
            except (OSError, AttributeError):
                pass
    start = i_file if (i_file is not None and i_file < i_reply) else i_read
    syncs = []
    for i in range(start, i_reply):
        t = texts[i]
        name = syscall_name(t)
        if name not in SYNC_CALLS or "<unfinished" in t:
            continue
        if "= 0" not in t.rsplit(")", 1)[-1]:
            continue
        syncs.append(t)
    assert syncs, (f"{what}: the reply was written with no completed fsync/fdatasync since "
                   f"the message was {'written to a file' if start != i_read else 'read'}:\n"
                   + "\n".join(texts[start:i_reply + 1][-40:]))
    return "sync-call"


def test_confirm_and_commit_ok_only_after_fsync(private_warren, uniq, tmp_path):
    """Group commit: the basic.ack of a persistent message on a durable queue, and the
    tx.commit-ok of a transaction publishing one, are written to the socket only after
    an fsync-class call completed (after the message reached its file, if it was written
    with write/pwrite). And confirms are grouped: 2000 in flight need far fewer syncs."""
    rb = private_warren
    if shutil.which("strace") is None:
        pytest.skip("strace not installed")
    q = uniq("q")
    declare_queue(rb, q)
    c = rb.raw()
    c.open_channel(1, confirm=True)
    c.open_channel(2, tx=True)
    # Warm up: files created, first writes done.
    c.publish(1, "", q, b"warm-up", spec.BasicProperties(delivery_mode=PERSISTENT))
    assert isinstance(c.next_method()[1], spec.Basic.Ack)
    tracer = Strace(rb.pid, str(tmp_path / "trace"))
    try:
        tracer.wait_attached(rb)
        marker1 = b"confirm-probe-" + uuid.uuid4().hex.encode()
        c.publish(1, "", q, marker1, spec.BasicProperties(delivery_mode=PERSISTENT))
        _, ack = c.next_method(timeout=30)
        assert isinstance(ack, spec.Basic.Ack) and ack.delivery_tag == 2, ack
        marker2 = b"commit-probe-" + uuid.uuid4().hex.encode()
        c.publish(2, "", q, marker2, spec.BasicProperties(delivery_mode=PERSISTENT))
        c.rpc(2, spec.Tx.Commit(), spec.Tx.CommitOk, timeout=30)
        # Many in flight at once: a grouped commit needs far fewer syncs than messages.
        n = 2000
        c.sock.sendall(b"".join(c.publish_bytes(1, "", q, b"group-%d" % i,
                                                spec.BasicProperties(delivery_mode=PERSISTENT))
                                for i in range(n)))
        tracker = ConfirmTracker()
        for i in range(n):
            tracker.sent(i)
        while len(tracker):
            _, m = c.next_method(timeout=60)
            assert isinstance(m, spec.Basic.Ack), m
            tracker.settle(m.delivery_tag - 2, m.multiple)
        lines = tracer.stop()
    finally:
        if tracer.proc.poll() is None:
            tracer.stop()
        c.close()
    # basic.ack on channel 1 for delivery tag 2 (frame header, class/method, tag)
    ack_frame = b"\x01\x00\x01\x00\x00\x00\x0d\x00\x3c\x00\x50" + (2).to_bytes(8, "big")
    mode = assert_synced_between(lines, marker1, ack_frame, "publisher confirm", rb.pid)
    commit_ok = b"\x01\x00\x02\x00\x00\x00\x04\x00\x5a\x00\x15"
    assert_synced_between(lines, marker2, commit_ok, "tx.commit-ok", rb.pid)
    if mode != "sync-call":
        return  # synchronous writes (O_DSYNC): no sync calls to count
    group_start = first_index(lines, lambda l: hexs(b"group-0") in l)
    syncs = sum(1 for l in lines[group_start:]
                if syscall_name((LINE.match(l).group(2) if LINE.match(l) else l))
                in SYNC_CALLS and "<unfinished" not in l)
    assert 0 < syncs <= n // 10, f"{syncs} sync calls for {n} confirms in flight: not grouped"


def test_sync_topology_replies_only_after_fsync(broker, tmp_path, uniq):
    """--sync-topology: a durable queue's declare-ok goes out only after the definitions
    journal line naming it has been fsynced."""
    if broker.is_reference:
        pytest.skip("Warren option")
    if shutil.which("strace") is None:
        pytest.skip("strace not installed")
    rb = RestartableWarren(tmp_path / "data", extra_args=["--sync-topology"])
    rb.start()
    c = rb.raw()
    try:
        c.open_channel(1)
        declare_queue(rb, uniq("warm-up"))
        tracer = Strace(rb.pid, str(tmp_path / "trace"))
        try:
            tracer.wait_attached(rb)
            q = uniq("probe")
            c.rpc(1, spec.Queue.Declare(queue=q, durable=True), spec.Queue.DeclareOk)
            lines = tracer.stop()
        finally:
            if tracer.proc.poll() is None:
                tracer.stop()
        declare_ok_start = b"\x00\x32\x00\x0b"  # class 50, method 11
        assert_synced_between(lines, q.encode(), declare_ok_start, "queue.declare-ok", rb.pid)
    finally:
        c.close()
        rb.close()
