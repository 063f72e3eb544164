"""Damaged storage (Warren only): flipped bytes and torn segment tails are dropped at
start-up, said so in the log, and nothing else is lost; a full disk refuses publishes
(nacks) instead of crashing or corrupting.

The segment format (crates/store/src/segment.rs): a record is `u32 len, u32 crc32c,
payload` with `len` covering crc + payload, so a test can find record boundaries by
walking the lengths.
"""

import glob
import os
import struct
import subprocess
import tempfile

import pika
import pytest

from durability_helpers import RestartableWarren, drain, publish_confirmed


@pytest.fixture(autouse=True)
def warren_only(broker):
    if broker.is_reference:
        pytest.skip("edits Warren's own files")


def persistent(i, size=200):
    body = f"msg-{i:05d}-".encode() + bytes([i % 251]) * size
    return pika.BasicProperties(delivery_mode=2, message_id=f"m{i}"), body


def segments(data_dir):
    return sorted(glob.glob(os.path.join(data_dir, "queues", "*", "*.seg")))


def records(path):
    """(offset, length) of each record in a segment file."""
    raw = open(path, "rb").read()
    out, at = [], 0
    while at + 8 <= len(raw):
        (n,) = struct.unpack_from("<I", raw, at)
        if n == 0:
            break
        out.append((at, n + 4))
        at += n + 4
    return out


def fill(tmp_path, n, segment_size="8MiB"):
    rb = RestartableWarren(tmp_path / "data", extra_args=["--segment-size", segment_size])
    rb.start()
    c = rb.connect()
    c.channel().queue_declare("damaged", durable=True)
    c.close()
    publish_confirmed(rb, "damaged", (persistent(i) for i in range(n)))
    rb.stop(graceful=True)
    return rb


def bodies(rb):
    return [m.body for m in drain(rb, "damaged")]


def test_flipped_byte_drops_only_that_record_and_is_logged(tmp_path):
    rb = fill(tmp_path, 50)
    try:
        (seg,) = segments(rb.data_dir)
        recs = records(seg)
        assert len(recs) == 50
        at, length = recs[20]
        with open(seg, "r+b") as f:
            f.seek(at + length - 5)  # inside message 20's body
            b = f.read(1)
            f.seek(at + length - 5)
            f.write(bytes([b[0] ^ 0xFF]))
        rb.start()
        got = bodies(rb)
        want = [persistent(i)[1] for i in range(50) if i != 20]
        assert got == want
        assert "damaged record (checksum mismatch) dropped" in rb.log()
    finally:
        rb.close()


def test_torn_tail_is_truncated_and_logged(tmp_path):
    rb = fill(tmp_path, 30)
    try:
        (seg,) = segments(rb.data_dir)
        recs = records(seg)
        at, length = recs[-1]
        # A crash in the middle of the last record: its length claims more than is there.
        with open(seg, "r+b") as f:
            f.truncate(at + length // 2)
        rb.start()
        got = bodies(rb)
        assert got == [persistent(i)[1] for i in range(29)]
        assert "torn record at the end of a segment" in rb.log()
        # The queue works on after the damage.
        publish_confirmed(rb, "damaged", [persistent(99)])
        assert bodies(rb) == [persistent(99)[1]]
    finally:
        rb.close()


def test_garbage_length_in_the_middle_drops_the_rest_of_that_segment_only(tmp_path):
    # Small segments so the queue spans several files; damage the first one.
    rb = fill(tmp_path, 60, segment_size="4KiB")
    try:
        segs = segments(rb.data_dir)
        assert len(segs) >= 3
        first = records(segs[0])
        at, _ = first[2]
        with open(segs[0], "r+b") as f:
            f.seek(at)
            f.write(struct.pack("<I", 0x7FFFFFF0))
        rb.start()
        got = bodies(rb)
        lost = set(range(2, len(first)))
        assert got == [persistent(i)[1] for i in range(60) if i not in lost]
        assert "torn record" in rb.log()
    finally:
        rb.close()


def _mount_tmpfs(size_mb):
    d = tempfile.mkdtemp(prefix="warren-tmpfs-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", d],
                       capture_output=True)
    if r.returncode != 0:
        os.rmdir(d)
        return None
    return d


def test_full_disk_nacks_publishes_and_nothing_confirmed_is_lost():
    mnt = _mount_tmpfs(24)
    if mnt is None:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    rb = RestartableWarren(os.path.join(mnt, "data"),
                           extra_args=["--segment-size", "1MiB", "--disk-free-limit", "0"])
    try:
        rb.start()
        c = rb.connect()
        ch = c.channel()
        ch.queue_declare("full", durable=True)
        ch.confirm_delivery()
        confirmed, nacked = [], 0
        body = b"x" * 64 * 1024
        for i in range(1000):
            try:
                ch.basic_publish("", "full", body + str(i).encode(),
                                 pika.BasicProperties(delivery_mode=2))
                confirmed.append(i)
            except pika.exceptions.NackError:
                nacked += 1
                if nacked >= 5:
                    break
        assert nacked >= 5, "the disk never filled up"
        assert rb.proc.poll() is None, "the broker died on a full disk"
        assert "cannot store a message; refusing it" in rb.log()
        c.close()
        # Every confirmed message is there, intact, after a restart.
        rb.restart(graceful=True)
        got = [m.body for m in drain(rb, "full")]
        assert got == [body + str(i).encode() for i in confirmed]
        # Space is back (the queue is drained): publishing works again.
        publish_confirmed(rb, "full", [(pika.BasicProperties(delivery_mode=2), b"again")])
        assert [m.body for m in drain(rb, "full")] == [b"again"]
    finally:
        rb.close()
        subprocess.run(["umount", mnt])
        os.rmdir(mnt)
