"""Ring buffer and perf buffer readers, fed by programs the assembler builds and the
kernel runs (BPF_PROG_TEST_RUN): every record a program committed is read once, in
order, across wrap-around; a full ring loses records but never invents any."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import time

import pytest
from helpers import BPFMAP, run_cli
from helpers.events import Producer, events_while_writing

from bpfmap import Map
from bpfmap.core.maps import Program
from bpfmap.errors import UsageError
from bpfmap.streams.events import PerfBufferReader, Record, RingBufferReader, reader


def _lens(records) -> list[int]:
    out = []
    for r in records:
        length, marker = struct.unpack_from("<II", r.data)
        assert marker == 0xABCD
        out.append(length)
    return out


def test_ringbuf_reads_every_record_in_order_across_wraparound(bpffs):
    with Map.create("ringbuf", 0, 0, 4096) as rb, RingBufferReader(rb) as rd:
        prod = Producer(rb, record_size=24)  # 32 bytes with the header: 128 fit
        got, sent = [], []
        for _ in range(20):  # 20 * 100 records: the positions wrap 15 times
            sent += prod.run(100)
            got += _lens(rd.read(0))
        assert got == sent and prod.dropped == 0
        assert list(rd.read(0)) == []  # nothing left over
        prod.run(3)
        last = list(rd.read(0))
        assert [len(r.data) for r in last] == [24, 24, 24]  # each record its own size, no header bytes
        prod.close()


def test_ringbuf_full_loses_records_and_invents_none(bpffs):
    with Map.create("ringbuf", 0, 0, 4096) as rb, RingBufferReader(rb) as rd:
        prod = Producer(rb, record_size=8)
        sent = prod.run(400)  # 16 bytes each: the ring holds fewer than 256
        got = _lens(rd.drain())
        assert 200 < len(got) < 256 and got == sent[: len(got)]  # the first ones, in order, once
        assert len(got) + prod.dropped == 400
        assert rd.drain() == []
        more = prod.run(10)  # room again after the drain
        assert _lens(rd.read(1.0)) == more
        prod.close()


def _discarding(test: str) -> str:
    """A socket filter that reserves an 8-byte record holding skb->len and discards it
    when ``test`` (on r3 = skb->len) jumps to ``discard``, else submits it."""
    return f"""
        r6 = r1
        r1 = map[rb]
        r2 = 8
        r3 = 0
        call ringbuf_reserve
        if r0 == 0 goto out
        r1 = *(u32 *)(r6 + 0)
        *(u64 *)(r0 + 0) = r1
        r1 = r0
        r2 = 0
        r3 = *(u32 *)(r6 + 0)
        {test}
        call ringbuf_submit
        goto out
    discard:
        call ringbuf_discard
    out:
        r0 = 0
        exit
    """


def test_ringbuf_skips_discarded_records(bpffs):
    code = _discarding("r3 &= 1\n        if r3 == 1 goto discard")
    with Map.create("ringbuf", 0, 0, 4096) as rb, RingBufferReader(rb) as rd:
        prog = Program.load("socket_filter", code, {"rb": rb})
        for n in range(14, 40):
            prog.test_run(bytes(n))
        got = [int.from_bytes(r.data, "little") for r in rd.drain()]
        assert got == [n - 14 for n in range(14, 40) if n % 2 == 0]  # odd lengths were discarded
        prog.close()


def _drain_all(rd, packed: bool) -> list:
    """Drain until empty: each batch as ("packed", size, count) or ("list", count), and
    every record's bytes in order."""
    from bpfmap.streams.events import Packed

    shapes, datas = [], []
    while True:
        batch = rd.drain(packed=packed)
        if not len(batch):
            return shapes, datas
        if isinstance(batch, Packed):
            shapes.append(("packed", batch.size, batch.count))
            datas += [r.data for r in batch.records()]
            assert b"".join(r.data for r in batch.records()) == batch.data
        else:
            shapes.append(("list", len(batch)))
            datas += [r.data for r in batch]


def test_ringbuf_packed_runs_across_wraparound(bpffs):
    """Runs of same-sized records come out as one Packed each, in order, wrapping around
    the end of the ring (read through its second mapping) 15 times."""
    with Map.create("ringbuf", 0, 0, 4096) as rb, RingBufferReader(rb) as rd:
        prod = Producer(rb, record_size=24)  # 32 bytes with the header: 128 fit
        for _ in range(20):
            sent = prod.run(100)
            shapes, datas = _drain_all(rd, packed=True)
            assert shapes == [("packed", 24, 100)]
            assert _lens(Record(d) for d in datas) == sent
        assert prod.dropped == 0
        prod.close()


def test_ringbuf_packed_runs_end_at_another_size(bpffs):
    """Records of 8, then 16, then 8 bytes: three runs, each its own Packed; a run
    shorter than 64 records is read record by record."""
    with Map.create("ringbuf", 0, 0, 8192) as rb, RingBufferReader(rb) as rd:
        small, big = Producer(rb, record_size=8), Producer(rb, record_size=16)
        sent = small.run(70) + big.run(70)
        small.next = 70
        sent += small.run(70) + big.run(10)
        shapes, datas = _drain_all(rd, packed=True)
        assert shapes == [("packed", 8, 70), ("packed", 16, 70), ("packed", 8, 70), ("list", 10)]
        assert _lens(Record(d) for d in datas) == sent
        assert [len(d) for d in datas] == [8] * 70 + [16] * 70 + [8] * 70 + [16] * 10
        small.close()
        big.close()


def test_ringbuf_packed_run_stops_at_a_discarded_record(bpffs):
    """A discarded record ends a run; what comes out is what the record-by-record
    loop gives (the discarded one skipped)."""
    code = _discarding("if r3 == 100 goto discard")
    results = []
    for packed in (True, False):
        with Map.create("ringbuf", 0, 0, 8192) as rb, RingBufferReader(rb) as rd:
            prog = Program.load("socket_filter", code, {"rb": rb})
            for n in range(14, 14 + 200):
                prog.test_run(bytes(n))
            shapes, datas = _drain_all(rd, packed=packed)
            results.append([int.from_bytes(d, "little") for d in datas])
            prog.close()
        if packed:
            assert shapes[0] == ("packed", 8, 100)  # lengths 0..99, then the discarded 100
    assert results[0] == results[1] == [n for n in range(200) if n != 100]


def test_ringbuf_packed_respects_the_limit(bpffs):
    with Map.create("ringbuf", 0, 0, 8192) as rb, RingBufferReader(rb) as rd:
        prod = Producer(rb, record_size=8)
        sent = prod.run(300)
        first = rd.drain(limit=100, packed=True)
        assert len(first) == 100
        rest = rd.drain(packed=True)
        assert _lens(first.records() + rest.records()) == sent  # type: ignore[union-attr]
        prod.close()


def test_perf_buffer_reads_samples_per_cpu_and_counts_lost(bpffs):
    with Map.create("perf_event_array", 4, 4) as pe, PerfBufferReader(pe, pages=1) as rd:
        prod = Producer(pe, record_size=16)
        saved = os.sched_getaffinity(0)
        cpus = sorted(saved)
        try:
            got: dict[int, list[int]] = {}
            sent: dict[int, list[int]] = {}
            for cpu in cpus:
                os.sched_setaffinity(0, {cpu})
                sent[cpu] = prod.run(20)
            for rec, length in zip(recs := rd.read(0), _lens(recs := list(recs))):
                got.setdefault(rec.cpu, []).append(length)
            assert got == sent and rd.lost == 0
            # raw sample data is padded so that its 4-byte size plus data is 8-aligned
            assert all(len(r.data) == 20 for r in recs)
            # a one-page ring overflows; the kernel's LOST records count every dropped sample
            os.sched_setaffinity(0, {cpus[0]})
            flood = prod.run(1000)
            read = _lens(rd.read(0))
            assert read == flood[: len(read)] and len(read) < 1000 and rd.lost == 0
            # the kernel writes its LOST record before the next sample that fits
            after = prod.run(1)
            assert _lens(rd.read(1.0)) == after
            assert len(read) + rd.lost == 1000
            assert prod.dropped == rd.lost  # the program saw the same failures
        finally:
            os.sched_setaffinity(0, saved)
            prod.close()


def test_perf_buffer_records_across_the_end_of_the_ring(bpffs):
    """24-byte samples in a 4096-byte ring: records straddle its end and are read whole."""
    with Map.create("perf_event_array", 4, 4) as pe, PerfBufferReader(pe, pages=1) as rd:
        prod = Producer(pe, record_size=8)
        saved = os.sched_getaffinity(0)
        try:
            os.sched_setaffinity(0, {min(saved)})
            got, sent = [], []
            for _ in range(30):  # 30 * 100 * 24 bytes: the ring wraps 17 times
                sent += prod.run(100)
                got += _lens(rd.read(0))
            assert got == sent and rd.lost == 0 and prod.dropped == 0
        finally:
            os.sched_setaffinity(0, saved)
            prod.close()


def test_readers_refuse_other_maps(bpffs):
    with Map.create("hash", 4, 4, 4) as m, pytest.raises(UsageError):
        reader(m)
    with Map.create("perf_event_array", 4, 4) as pe, pytest.raises(UsageError):
        PerfBufferReader(pe, pages=3)


def _cmd(*args: str) -> list[str]:
    return [*BPFMAP, *args]


def test_cli_ringbuf_jsonl_text_and_timeout(pindir):
    path = os.path.join(pindir, "rb")
    assert run_cli("create", "ringbuf", "--max-entries", "65536", "--pin", path, "-q").returncode == 0
    with Map.open(path) as rb:
        prod = Producer(rb, record_size=8)
        sent = prod.run(5)
        r = run_cli("events", path, "--layout", "len=u32,tag=u32", "--count", "3", "-o", "jsonl")
        assert r.returncode == 0, r.stderr
        assert [json.loads(x) for x in r.stdout.splitlines()] == [
            {"value": {"len": n, "tag": 0xABCD}} for n in sent[:3]
        ]
        assert r.stderr == f"bpfmap: events {path}: 3 records\n"
        r = run_cli("events", path, "--timeout", "0.5")  # the two left, as hex, then the timeout
        assert r.returncode == 0 and r.stdout.splitlines() == [
            n.to_bytes(4, "little").hex(" ") + " cd ab 00 00" for n in sent[3:]
        ]
        r = run_cli("events", path, "--timeout", "0.2", "-q")  # nothing left: exit 1
        assert (r.returncode, r.stdout, r.stderr) == (1, "", "")
        prod.close()
    r = run_cli("events", path, "--layout", "u32", "--count", "0")
    assert r.returncode == 2


def test_cli_perf_buffer_while_a_program_writes(pindir):
    path = os.path.join(pindir, "pe")
    assert run_cli("create", "perf_event_array", "--pin", path, "-q").returncode == 0
    code, out, err = events_while_writing(path, "--layout", "len=u32,tag=u32", "--count", "5", "-o", "jsonl")
    assert code == 0 and err == f"bpfmap: events {path}: 5 records, 0 lost\n", err
    lines = [json.loads(x) for x in out.splitlines()]
    assert len(lines) == 5 and all(set(x) == {"cpu", "value"} and x["value"]["tag"] == 0xABCD for x in lines)
    lens = [x["value"]["len"] for x in lines]
    assert lens == sorted(lens) and len(set(lens)) == 5  # in order, none twice (one CPU at a time here)


def test_cli_ctrl_c_prints_a_summary(pindir):
    import signal

    path = os.path.join(pindir, "rb2")
    assert run_cli("create", "ringbuf", "--pin", path, "-q").returncode == 0
    with Map.open(path) as rb:
        prod = Producer(rb)
        prod.run(2)
        proc = subprocess.Popen(_cmd("events", path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while proc.stdout is not None and time.monotonic() < deadline:
            time.sleep(0.3)
            break
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and len(out.splitlines()) == 2
        assert err == f"bpfmap: events {path}: 2 records\n"
        prod.close()


def test_cli_events_cpu_reads_one_cpus_perf_buffer(pindir):
    from bpfmap.streams.events import online_cpus

    online = online_cpus()
    path = os.path.join(pindir, "pe")
    assert run_cli("create", "perf_event_array", "--pin", path, "-q").returncode == 0
    last = online[-1]
    code, out, err = events_while_writing(path, "--cpu", str(last), "--count", "3", "-o", "jsonl", cpu=last)
    assert code == 0, err
    assert [json.loads(x)["cpu"] for x in out.splitlines()] == [last] * 3
    if len(online) > 1:  # records written on another CPU never reach this CPU's buffer
        code, out, err = events_while_writing(path, "--cpu", str(online[0]), "--timeout", "1", cpu=last)
        assert code == 1 and out == "", err
    code, _out, err = events_while_writing(path, "--cpu", "4096", "--timeout", "0")
    assert code == 2 and "not online" in err
