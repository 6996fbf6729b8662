"""Records for ring buffers and perf buffers: a program the assembler builds that writes
one record per run (Producer), and 'bpfmap events' run while it writes
(events_while_writing)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable

from bpfmap import Map
from bpfmap.core.maps import Program

from . import BPFMAP
from .programs import ringbuf_output


def _emit(kind: str, record_size: int) -> str:
    """A socket filter writing one record: the packet's length (skb->len), then a
    marker, then zeros to ``record_size`` bytes; a failed output counts in drops[0]."""
    assert record_size % 8 == 0 and record_size >= 8
    lines = ["r6 = r1", "r1 = 0"]
    lines += [f"*(u64 *)(r10 - {off})  = r1" for off in range(8, record_size + 1, 8)]
    lines += [
        "r1 = *(u32 *)(r6 + 0)",
        f"*(u32 *)(r10 - {record_size}) = r1",
        "r1 = 0xabcd",
        f"*(u32 *)(r10 - {record_size - 4}) = r1",
    ]
    if kind == "ringbuf":
        lines.append(ringbuf_output(record_size, "out"))
    else:
        lines += [
            "r1 = r6",
            "r2 = map[out]",
            "r3 = 0xffffffff ll",
            "r4 = r10",
            f"r4 += -{record_size}",
            f"r5 = {record_size}",
            "call perf_event_output",
        ]
    lines += [
        "if r0 == 0 goto out",
        "r1 = 0",
        "*(u32 *)(r10 - 4) = r1",
        "r2 = r10",
        "r2 += -4",
        "r1 = map[drops]",
        "call map_lookup_elem",
        "if r0 == 0 goto out",
        "r1 = 1",
        "lock *(u64 *)(r0 + 0) += r1",
        "out:",
        "r0 = 0",
        "exit",
    ]
    return "\n".join(lines)


class Producer:
    """A program that writes records to ``out``; ``run(n)`` makes n records whose first
    u32 is 0, 1, 2, ... (skb->len: the test packet's length past its 14-byte Ethernet
    header), continuing across calls."""

    def __init__(self, out: Map, record_size: int = 8) -> None:
        kind = "ringbuf" if out.type_label == "ringbuf" else "perf"
        self.drops = Map.create("array", 4, 8, 1)
        self.prog = Program.load("socket_filter", _emit(kind, record_size), {"out": out, "drops": self.drops})
        self.next = 0

    def run(self, n: int) -> list[int]:
        sent = []
        for _ in range(n):
            assert self.prog.test_run(bytes(14 + self.next))[0] == 0
            sent.append(self.next)
            self.next += 1
        return sent

    @property
    def dropped(self) -> int:
        return int.from_bytes(self.drops.lookup(bytes(4)), "little")

    def close(self) -> None:
        self.prog.close()
        self.drops.close()


def communicate_while(
    proc: subprocess.Popen, write: Callable[[], object], timeout: float = 30, cpu: int | None = None
) -> tuple[str, str]:
    """``proc.communicate()`` while a thread calls ``write()`` every 20 ms until proc ends
    (a perf buffer only sees what is written after its reader attached), on ``cpu`` when
    given; returns (stdout, stderr)."""
    stop = threading.Event()

    def writer() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})  # this thread: a program it runs writes on that CPU
        while not stop.is_set():
            write()
            time.sleep(0.02)

    t = threading.Thread(target=writer)
    t.start()
    try:
        return proc.communicate(timeout=timeout)
    finally:
        stop.set()
        t.join()


def events_while_writing(path: str, *args: str, record_size: int = 8, cpu: int | None = None) -> tuple[int, str, str]:
    """Run 'bpfmap events PATH ARGS' while a program writes a record every 20 ms (until
    the command ends), on ``cpu`` when given; returns (exit code, stdout, stderr)."""
    with Map.open(path) as m:
        prod = Producer(m, record_size=record_size)
        proc = subprocess.Popen(
            [*BPFMAP, "events", path, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            out, err = communicate_while(proc, lambda: prod.run(1), cpu=cpu)
        finally:
            prod.close()
    return proc.returncode, out, err
