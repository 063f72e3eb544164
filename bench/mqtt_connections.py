#!/usr/bin/env python3
"""Opens N concurrent MQTT 3.1.1 connections to a broker, each with its own session
(CONNECT, then SUBSCRIBE to a topic of its own), and reports the broker's resident
memory before and after, per connection. Then checks that a sample of the connections
still receive their messages, and closes them all.

Usage: bench/mqtt_connections.py --port 1883 --pid <broker pid> [--count 10000]
Bounded: it opens --count connections to 127.0.0.1 only, holds them --hold seconds,
and exits.
"""

import argparse
import asyncio
import json
import resource
import struct
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def mqtt_string(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def var_int(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_packet(cid, user, pw):
    body = mqtt_string("MQTT") + bytes([4, 0x02 | 0xC0]) + struct.pack(">H", 600)
    body += mqtt_string(cid) + mqtt_string(user) + mqtt_string(pw)
    return b"\x10" + var_int(len(body)) + body


def subscribe_packet(topic):
    body = struct.pack(">H", 1) + mqtt_string(topic) + b"\x00"
    return b"\x82" + var_int(len(body)) + body


def publish_packet(topic, payload):
    body = mqtt_string(topic) + payload
    return b"\x30" + var_int(len(body)) + body


async def read_packet(r):
    first = (await r.readexactly(1))[0]
    n, mult = 0, 1
    while True:
        b = (await r.readexactly(1))[0]
        n += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            break
    return first, await r.readexactly(n)


async def open_one(args, i, run):
    r, w = await asyncio.open_connection("127.0.0.1", args.port)
    w.write(connect_packet(f"scale-{run}-{i}", args.user, args.password))
    first, body = await read_packet(r)
    assert first == 0x20 and body[1] == 0, body
    if args.subscribe:
        w.write(subscribe_packet(f"scale/{run}/{i}"))
        first, _ = await read_packet(r)
        assert first == 0x90
    return r, w


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--hold", type=float, default=3.0)
    ap.add_argument("--user", default="guest")
    ap.add_argument("--password", default="guest")
    ap.add_argument("--no-subscribe", dest="subscribe", action="store_false")
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    run = str(int(time.time()))
    before = rss_kib(args.pid)
    conns = []
    t0 = time.time()
    for start in range(0, args.count, args.batch):
        n = min(args.batch, args.count - start)
        conns += await asyncio.gather(*(open_one(args, start + k, run) for k in range(n)))
    opened = time.time() - t0
    await asyncio.sleep(args.hold)
    after = rss_kib(args.pid)
    # A sample of sessions still works: publish to 20 of them on one connection.
    sample = list(range(0, args.count, max(1, args.count // 20)))
    pr, pw = await asyncio.open_connection("127.0.0.1", args.port)
    pw.write(connect_packet(f"scale-{run}-pub", args.user, args.password))
    await read_packet(pr)
    for i in sample:
        pw.write(publish_packet(f"scale/{run}/{i}", b"ping"))
    await pw.drain()
    ok = 0
    if args.subscribe:
        for i in sample:
            first, body = await asyncio.wait_for(read_packet(conns[i][0]), 10)
            ok += first & 0xF0 == 0x30 and body.endswith(b"ping")
    for _, w in conns:
        w.close()
    pw.close()
    print(json.dumps({
        "label": args.label, "connections": args.count, "subscribed": args.subscribe,
        "open_seconds": round(opened, 2), "rss_before_mib": round(before / 1024, 1),
        "rss_after_mib": round(after / 1024, 1),
        "kib_per_connection": round((after - before) / args.count, 1),
        "sample_delivered": f"{ok}/{len(sample) if args.subscribe else 0}",
    }))


asyncio.run(main())
