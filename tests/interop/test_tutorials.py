"""The seven RabbitMQ tutorials, run end to end like a user would run them.

Each test starts the tutorial programs of examples/tutorials/ as separate processes
(`python -u prog.py args...`, with AMQP_URL pointing at the broker under test): the
consumers first, waiting until they print their "Waiting" line, then the producers,
one after the other. It then checks every line each program printed, stops the
consumers with SIGINT (what CTRL+C does) and checks that they exit cleanly.

Synchronisation is done on printed lines, never on sleeps. Where a consumer must
*not* receive a message (routing, topics), the last producer run sends a message
that every consumer receives: once each consumer has printed it, anything routed
by mistake earlier would have been printed before it.

The tutorials use fixed names (queues 'hello', 'task_queue', 'rpc_queue';
exchanges 'logs', 'direct_logs', 'topic_logs'): they are deleted before and after
each test so that nothing can leak from one run to the next.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pika
import pika.exceptions
import pytest

TUTORIALS = os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "examples", "tutorials")
)

WAIT = 20.0  # seconds to wait for an expected line
RUN = 60.0  # seconds a producer program may take

FIXED_QUEUES = ("hello", "task_queue", "rpc_queue")
FIXED_EXCHANGES = ("logs", "direct_logs", "topic_logs")

WAITING_MESSAGES = " [*] Waiting for messages. To exit press CTRL+C"
WAITING_LOGS = " [*] Waiting for logs. To exit press CTRL+C"


def _env(broker):
    env = dict(os.environ)
    env["AMQP_URL"] = broker.url
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("MESSAGE_COUNT", None)
    return env


def _sigint_default():
    # If the test runner was started with SIGINT ignored (a background job of a
    # non-interactive shell, say), children inherit that and Python would not
    # turn SIGINT into KeyboardInterrupt: restore the default in the child.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# Notified whenever any program prints a line or exits.
_printed = threading.Condition()


def wait_until(programs, predicate, what, timeout=WAIT):
    """Waits until predicate() holds, re-checking it whenever one of the programs
    prints something; fails if it does not hold within timeout, or once all the
    programs have exited without it holding."""
    deadline = time.monotonic() + timeout
    with _printed:
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0 or all(p._open == 0 for p in programs):
                details = "\n".join(p.describe() for p in programs)
                pytest.fail(f"{what}: not seen within {timeout}s in\n{details}")
            _printed.wait(left)


class Program:
    """A long-running tutorial program (a consumer) whose output is read live."""

    def __init__(self, broker, script, *args):
        self.label = " ".join([script, *args])
        self.proc = subprocess.Popen(
            [sys.executable, "-u", os.path.join(TUTORIALS, script), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(broker),
            cwd=TUTORIALS,
            preexec_fn=_sigint_default,
        )
        self.out = []
        self.err = []
        self._open = 2  # stdout and stderr, until the program exits
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _pump(self, stream, sink):
        for raw in iter(stream.readline, b""):
            with _printed:
                sink.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                _printed.notify_all()
        with _printed:
            self._open -= 1
            _printed.notify_all()

    def describe(self):
        with _printed:
            return (
                f"{self.label} (exit code {self.proc.poll()})\n"
                f"  stdout: {self.out!r}\n  stderr: {self.err!r}"
            )

    def wait_until(self, predicate, what, timeout=WAIT):
        """Waits until predicate(lines printed so far) holds."""
        wait_until([self], lambda: predicate(self.out), what, timeout)

    def wait_for(self, line, count=1, timeout=WAIT):
        self.wait_until(
            lambda out: out.count(line) >= count,
            f"line {line!r}" + (f" x{count}" if count > 1 else ""),
            timeout,
        )

    def interrupt(self, timeout=WAIT):
        """Presses CTRL+C and waits for the program to exit; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"did not exit within {timeout}s of SIGINT:\n{self.describe()}")
        for t in self._readers:
            t.join(timeout)
        return code

    def stop(self, expected_stdout):
        """CTRL+C, then checks the exit code and the whole output."""
        code = self.interrupt()
        assert code == 0, self.describe()
        assert self.err == [], self.describe()
        assert self.out == [*expected_stdout, "Interrupted"], self.describe()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run(broker, script, *args, timeout=RUN):
    """Runs a producer program to completion; returns its stdout lines."""
    label = " ".join([script, *args])
    try:
        done = subprocess.run(
            [sys.executable, "-u", os.path.join(TUTORIALS, script), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=_env(broker),
            cwd=TUTORIALS,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{label}: still running after {timeout}s; stdout {e.stdout!r}, stderr {e.stderr!r}")
    out = done.stdout.decode("utf-8", "replace").splitlines()
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0 and err == "", (
        f"{label}: exit code {done.returncode}\n  stdout: {out!r}\n  stderr: {err}"
    )
    return out


def _delete_fixed_names(broker):
    conn = broker.connect()
    try:
        for kind, names in (("queue", FIXED_QUEUES), ("exchange", FIXED_EXCHANGES)):
            for name in names:
                ch = conn.channel()
                try:
                    if kind == "queue":
                        ch.queue_delete(queue=name)
                    else:
                        ch.exchange_delete(exchange=name)
                    ch.close()
                except pika.exceptions.ChannelClosedByBroker:
                    pass  # a broker may refuse to delete what does not exist
    finally:
        conn.close()


def _message_count(broker, queue):
    conn = broker.connect()
    try:
        return conn.channel().queue_declare(queue=queue, passive=True).method.message_count
    finally:
        conn.close()


@pytest.fixture
def spawn(broker):
    """spawn(script, *args) starts a consumer program; all are killed at teardown."""
    _delete_fixed_names(broker)
    programs = []

    def start(script, *args):
        p = Program(broker, script, *args)
        programs.append(p)
        return p

    yield start
    for p in programs:
        p.kill()
    _delete_fixed_names(broker)


# ----------------------------------------------------------------------------
# 1. "Hello World!"
# ----------------------------------------------------------------------------


def test_1_hello_world(broker, spawn):
    receiver = spawn("receive.py")
    receiver.wait_for(WAITING_MESSAGES)

    for n in (1, 2):
        assert run(broker, "send.py") == [" [x] Sent 'Hello World!'"]
        receiver.wait_for(" [x] Received b'Hello World!'", count=n)

    receiver.stop([WAITING_MESSAGES] + [" [x] Received b'Hello World!'"] * 2)
    assert _message_count(broker, "hello") == 0


# ----------------------------------------------------------------------------
# 2. Work queues
# ----------------------------------------------------------------------------


def test_2_work_queues(broker, spawn):
    workers = [spawn("worker.py"), spawn("worker.py")]
    for w in workers:
        w.wait_for(WAITING_MESSAGES)

    # One second of work per dot. With prefetch 1 a busy worker gets nothing new,
    # and the tasks are sent faster than they are done: both workers must work.
    tasks = ["First message.", "Second message..", "Third message.", "Fourth message.", "Fifth message."]
    for task in tasks:
        assert run(broker, "new_task.py", *task.split()) == [f" [x] Sent {task!r}"]

    # Wait until, together, the workers have finished every task.
    wait_until(
        workers,
        lambda: sum(w.out.count(" [x] Done") for w in workers) >= len(tasks),
        f"all {len(tasks)} tasks done",
        timeout=WAIT + sum(t.count(".") for t in tasks),
    )

    received = []
    for w in workers:
        code = w.interrupt()
        assert code == 0 and w.err == [], w.describe()
        out = w.out
        assert out[0] == WAITING_MESSAGES and out[-1] == "Interrupted", w.describe()
        body = out[1:-1]
        # Each task: " [x] Received '...'" then " [x] Done", nothing else.
        assert len(body) % 2 == 0, "\n".join(x.describe() for x in workers)
        mine = []
        for got, done in zip(body[0::2], body[1::2]):
            m = re.fullmatch(r" \[x\] Received '(.*)'", got)
            assert m and done == " [x] Done", w.describe()
            mine.append(m.group(1))
        assert mine, f"round robin: this worker got no task\n{w.describe()}"
        received += mine

    assert sorted(received) == sorted(tasks), "every task must be done exactly once"
    # Every task was acknowledged: nothing is left in the queue.
    assert _message_count(broker, "task_queue") == 0


# ----------------------------------------------------------------------------
# 3. Publish/Subscribe
# ----------------------------------------------------------------------------


def test_3_publish_subscribe(broker, spawn):
    first = spawn("receive_logs.py")
    first.wait_for(WAITING_LOGS)

    assert run(broker, "emit_log.py") == [" [x] Sent 'info: Hello World!'"]
    first.wait_for(" [x] b'info: Hello World!'")

    # A subscriber started later gets only what is broadcast from then on.
    second = spawn("receive_logs.py")
    second.wait_for(WAITING_LOGS)

    assert run(broker, "emit_log.py", "warning:", "disk", "almost", "full") == [
        " [x] Sent 'warning: disk almost full'"
    ]
    for r in (first, second):
        r.wait_for(" [x] b'warning: disk almost full'")

    first.stop([WAITING_LOGS, " [x] b'info: Hello World!'", " [x] b'warning: disk almost full'"])
    second.stop([WAITING_LOGS, " [x] b'warning: disk almost full'"])


# ----------------------------------------------------------------------------
# 4. Routing
# ----------------------------------------------------------------------------


def test_4_routing(broker, spawn):
    # As in the slides: `receive_logs_direct.py warning error > logs_from_rabbit.log`
    # in one terminal, `receive_logs_direct.py info warning error` in another.
    to_file = spawn("receive_logs_direct.py", "warning", "error")
    to_screen = spawn("receive_logs_direct.py", "info", "warning", "error")
    for r in (to_file, to_screen):
        r.wait_for(WAITING_LOGS)

    assert run(broker, "emit_log_direct.py", "error", "GPU card 0 is down!!") == [
        " [x] Sent 'error':'GPU card 0 is down!!'"
    ]
    assert run(broker, "emit_log_direct.py", "info", "Add new GPU card!!") == [
        " [x] Sent 'info':'Add new GPU card!!'"
    ]
    # Last, a severity both subscribe to (see the module docstring).
    assert run(broker, "emit_log_direct.py", "warning", "Running out of disk space") == [
        " [x] Sent 'warning':'Running out of disk space'"
    ]

    error = " [x] 'error':b'GPU card 0 is down!!'"
    info = " [x] 'info':b'Add new GPU card!!'"
    warning = " [x] 'warning':b'Running out of disk space'"
    for r in (to_file, to_screen):
        r.wait_for(warning)

    to_file.stop([WAITING_LOGS, error, warning])
    to_screen.stop([WAITING_LOGS, error, info, warning])


def test_4_routing_usage(broker):
    done = subprocess.run(
        [sys.executable, "-u", os.path.join(TUTORIALS, "receive_logs_direct.py")],
        stdin=subprocess.DEVNULL, capture_output=True, env=_env(broker), timeout=RUN,
    )
    assert done.returncode == 1
    assert done.stdout == b""
    assert done.stderr.decode().startswith("Usage: ")


# ----------------------------------------------------------------------------
# 5. Topics
# ----------------------------------------------------------------------------


def test_5_topics(broker, spawn):
    # The four terminals of the slides.
    everything = spawn("receive_logs_topic.py", "#")
    kern = spawn("receive_logs_topic.py", "kern.*")
    critical = spawn("receive_logs_topic.py", "*.critical")
    # "*critical" has no dot: it is a plain word, not a wildcard, matching only
    # the routing key "*critical" itself.
    kern_or_literal = spawn("receive_logs_topic.py", "kern.*", "*critical")
    consumers = (everything, kern, critical, kern_or_literal)
    for r in consumers:
        r.wait_for(WAITING_LOGS)

    sends = [
        (("kern.critical", "kernel error"), " [x] Sent 'kern.critical':'kernel error'"),
        (("cron.critical", "cron job failed"), " [x] Sent 'cron.critical':'cron job failed'"),
        (("kern.info", "kernel booted"), " [x] Sent 'kern.info':'kernel booted'"),
        (("kern.disk.full", "disk full"), " [x] Sent 'kern.disk.full':'disk full'"),
        ((), " [x] Sent 'anonymous.info':'Hello World!'"),
        # Last, a key every subscriber matches (see the module docstring).
        (("kern.critical", "kernel panic"), " [x] Sent 'kern.critical':'kernel panic'"),
    ]
    for args, printed in sends:
        assert run(broker, "emit_log_topic.py", *args) == [printed]

    kernel_error = " [x] 'kern.critical':b'kernel error'"
    cron = " [x] 'cron.critical':b'cron job failed'"
    booted = " [x] 'kern.info':b'kernel booted'"
    disk = " [x] 'kern.disk.full':b'disk full'"
    hello = " [x] 'anonymous.info':b'Hello World!'"
    panic = " [x] 'kern.critical':b'kernel panic'"
    for r in consumers:
        r.wait_for(panic)

    everything.stop([WAITING_LOGS, kernel_error, cron, booted, disk, hello, panic])
    kern.stop([WAITING_LOGS, kernel_error, booted, panic])
    critical.stop([WAITING_LOGS, kernel_error, cron, panic])
    kern_or_literal.stop([WAITING_LOGS, kernel_error, booted, panic])


# ----------------------------------------------------------------------------
# 6. RPC
# ----------------------------------------------------------------------------


def test_6_rpc(broker, spawn):
    server = spawn("rpc_server.py")
    server.wait_for(" [x] Awaiting RPC requests")

    assert run(broker, "rpc_client.py") == [" [x] Requesting fib(30)", " [.] Got 832040"]
    server.wait_for(" [.] fib(30)")
    assert run(broker, "rpc_client.py", "10") == [" [x] Requesting fib(10)", " [.] Got 55"]
    server.wait_for(" [.] fib(10)")

    server.stop([" [x] Awaiting RPC requests", " [.] fib(30)", " [.] fib(10)"])
    assert _message_count(broker, "rpc_queue") == 0


# ----------------------------------------------------------------------------
# 7. Publisher confirms
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_7_publisher_confirms(broker, how):
    count = 2000
    script = os.path.join(TUTORIALS, "publisher_confirms.py")
    env = _env(broker)
    if how == "argument":
        cmd = [sys.executable, "-u", script, str(count)]
    else:
        cmd = [sys.executable, "-u", script]
        env["MESSAGE_COUNT"] = str(count)
    done = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=RUN
    )
    out = done.stdout.decode().splitlines()
    err = done.stderr.decode()
    assert done.returncode == 0 and err == "", f"exit code {done.returncode}\n{out!r}\n{err}"

    assert len(out) == 3, out
    for line, how_published in zip(
        out, ["individually", "in batch", "and handled confirms asynchronously"]
    ):
        assert re.fullmatch(
            rf"Published 2,000 messages {how_published} in \d{{1,3}}(,\d{{3}})* ms", line
        ), out
