"""bpfmap send: records into a user ring buffer, read back by a real program that drains it
with bpf_user_ringbuf_drain (tests/bpf/userring.bpf.c, a socket filter run with
BPF_PROG_TEST_RUN), through wrap-around, odd sizes, a full ring and its --timeout."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import time

import pytest
from helpers import run_cli
from helpers.programs import loaded_program

from bpfmap import Map, Program

pytestmark = pytest.mark.kernel

userring_prog = loaded_program("userring")


class Ring:
    def __init__(self, loaded) -> None:
        self.urb, self.got = loaded.map("urb"), loaded.map("got")
        self.prog = os.path.join(loaded.progs, "drain")

    def drain(self) -> None:
        with Program.open(self.prog) as p:
            p.test_run(bytes(64))

    def totals(self) -> tuple[int, int, int]:
        """(records drained, sum of first u64s, sum of second u64s) so far."""
        with Map.open(self.got) as m:
            return tuple(struct.unpack("<Q", m.lookup(struct.pack("<I", i)))[0] for i in range(3))  # type: ignore[return-value]


@pytest.fixture
def ring(userring_prog):
    r = Ring(userring_prog)
    r.drain()  # start from an empty ring
    return r


def test_records_reach_the_program(ring):
    before = ring.totals()
    r = run_cli("send", ring.urb, "--layout", "a=u64,b=u64", "a=5,b=7", '{"a": 10, "b": 1}')
    assert r.returncode == 0 and "2 records sent" in r.stderr
    ring.drain()
    after = ring.totals()
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (2, 15, 8)


def test_wrap_around_with_odd_sizes(ring, tmp_path):
    """9-byte records (24 bytes with header and padding) in rounds that wrap the 4 KiB
    ring several times: every one arrives whole, in order of sending."""
    before = ring.totals()
    total = 0
    for round_ in range(6):
        values = [round_ * 1000 + i for i in range(100)]
        total += sum(values)
        lines = "".join(struct.pack("<Q", v).hex(" ") + " ff\n" for v in values)
        f = tmp_path / f"r{round_}"
        f.write_text(lines)
        r = run_cli("send", ring.urb, "--from", str(f))
        assert r.returncode == 0, r.stderr
        ring.drain()
    after = ring.totals()
    assert after[0] - before[0] == 600
    assert after[1] - before[1] == total


def test_a_full_ring_waits_for_a_drain(ring):
    """300 records of 16 bytes (7,200 bytes) into a 4 KiB ring: send waits (--timeout)
    while a program drains it, and every record goes in."""
    before = ring.totals()
    records = "\n".join(f"a={i},b=1" for i in range(300)) + "\n"
    cmd = [sys.executable, "-m", "bpfmap", "send", ring.urb, "--layout", "a=u64,b=u64", "--from", "-", "-t", "20"]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdin.write(records)
    p.stdin.close()
    stop = threading.Event()

    def drainer():
        while not stop.is_set():
            time.sleep(0.2)
            ring.drain()

    t = threading.Thread(target=drainer)
    t.start()
    try:
        assert p.wait(timeout=30) == 0, p.stderr.read()
    finally:
        stop.set()
        t.join()
    ring.drain()
    after = ring.totals()
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (300, sum(range(300)), 300)


def test_a_full_ring_says_how_many_went_in(ring):
    before = ring.totals()
    records = "\n".join(f"a={i},b=0" for i in range(200)) + "\n"
    r = run_cli("send", ring.urb, "--layout", "a=u64,b=u64", "--from", "-", input=records)
    assert r.returncode == 3
    assert "after 170 records went in" in r.stderr  # 4096 bytes / 24 per record
    ring.drain()
    assert ring.totals()[0] - before[0] == 170


def test_send_refusals(ring, pindir):
    r = run_cli("send", ring.got, "01 00 00 00 00 00 00 00")
    assert r.returncode == 2 and "send writes to user_ringbuf maps" in r.stderr
    r = run_cli("events", ring.urb, "--timeout", "0.1")
    assert r.returncode == 2 and "'bpfmap send'" in r.stderr
    r = run_cli("dump", ring.urb)
    assert r.returncode == 2 and "'bpfmap send'" in r.stderr
    r = run_cli("send", ring.urb, "00" * 5000)
    assert r.returncode == 2 and "does not fit a ring of 4096 bytes" in r.stderr
    before = ring.totals()
    r = run_cli("send", ring.urb, "--layout", "u64", "1", "x")  # every record encoded first: none sent
    assert r.returncode == 2 and "record 2:" in r.stderr and "nothing sent" in r.stderr, r.stderr
    ring.drain()
    assert ring.totals() == before
