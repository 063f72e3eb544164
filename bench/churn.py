#!/usr/bin/env python3
"""Connection churn: rounds of N idle AMQP 0-9-1 connections opened (handshake and one
channel) then closed, with the broker's VmRSS after each round. A leak grows the RSS by
about the same amount every round; allocator retention grows it in the first rounds and
then plateaus, because freed memory is reused by the next round.

By default it starts `target/release/warren` itself (temp data dir, free ports, AMQP
only); `--port/--pid` measure a running broker instead. Extra environment for the broker
(e.g. MALLOC_ARENA_MAX=1) can be given with --env.

Usage: bench/churn.py [--rounds 10] [--connections 1000]
Prints one JSON object: RSS (MiB) fresh and after each round.
"""

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS")


def shortstr(s):
    return bytes([len(s)]) + s.encode()


def method(channel, class_id, method_id, args=b""):
    payload = struct.pack(">HH", class_id, method_id) + args
    return struct.pack(">BHI", 1, channel, len(payload)) + payload + b"\xce"


async def expect(r, class_id, method_id):
    while True:
        ftype, _, size = struct.unpack(">BHI", await r.readexactly(7))
        payload = await r.readexactly(size + 1)
        if ftype == 1 and struct.unpack_from(">HH", payload) == (class_id, method_id):
            return payload[4:-1]


async def open_one(port, user, password):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"AMQP\x00\x00\x09\x01")
    await expect(r, 10, 10)
    resp = b"\x00" + user.encode() + b"\x00" + password.encode()
    w.write(method(0, 10, 11, struct.pack(">I", 0) + shortstr("PLAIN")
                   + struct.pack(">I", len(resp)) + resp + shortstr("en_US")))
    tune = await expect(r, 10, 30)
    channel_max, frame_max, _ = struct.unpack(">HIH", tune[:8])
    w.write(method(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, 0)))
    w.write(method(0, 10, 40, shortstr("/") + shortstr("") + b"\x00"))
    await expect(r, 10, 41)
    w.write(method(1, 20, 10, shortstr("")))
    await expect(r, 20, 11)
    return r, w


async def close_one(r, w):
    w.write(method(0, 10, 50, struct.pack(">H", 200) + shortstr("bye") + struct.pack(">HH", 0, 0)))
    await expect(r, 10, 51)
    w.close()


async def run(args):
    out = {"connections": args.connections, "rss_mib": [rss_mib(args.pid)]}
    for rnd in range(args.rounds):
        conns = []
        for i in range(0, args.connections, args.batch):
            n = min(args.batch, args.connections - i)
            conns += await asyncio.gather(*(open_one(args.port, args.user, args.password)
                                            for _ in range(n)))
        out.setdefault("rss_open_mib", []).append(rss_mib(args.pid))
        await asyncio.gather(*(close_one(r, w) for r, w in conns))
        await asyncio.sleep(args.settle)
        out["rss_mib"].append(rss_mib(args.pid))
        print(f"round {rnd + 1}: open {out['rss_open_mib'][-1]} MiB, "
              f"closed {out['rss_mib'][-1]} MiB", file=sys.stderr, flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--warren", default=os.environ.get(
        "WARREN_BIN", os.path.join(ROOT, "target", "release", "warren")))
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the broker")
    ap.add_argument("--port", type=int)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--user", default="guest")
    ap.add_argument("--password", default="guest")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    proc = data = None
    if args.port is None:
        data = tempfile.mkdtemp(prefix="warren-churn-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            args.port = s.getsockname()[1]
        env = dict(os.environ, RUST_LOG="warn")
        env.update(kv.split("=", 1) for kv in args.env)
        proc = subprocess.Popen(
            [args.warren, "--bind", "127.0.0.1", "--amqp-port", str(args.port),
             "--http-port", "0", "--mqtt-port", "0", "--stomp-port", "0",
             "--prometheus-port", "0", "--web-mqtt-port", "0", "--web-stomp-port", "0",
             "--data-dir", os.path.join(data, "data")],
            stdout=open(os.path.join(data, "warren.log"), "wb"), stderr=subprocess.STDOUT,
            env=env, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard)))
        args.pid = proc.pid
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", args.port), timeout=0.5).close()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    proc.kill()
                    shutil.rmtree(data, ignore_errors=True)
                    sys.exit("warren did not start")
                time.sleep(0.05)
        time.sleep(0.5)
    elif args.pid is None:
        sys.exit("--port needs --pid")
    try:
        out = asyncio.run(run(args))
        out["env"] = args.env
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
            shutil.rmtree(data, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
