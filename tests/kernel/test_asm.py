"""The assembler against LLVM's (llvm-mc -triple bpf assembles the same syntax), and
programs it builds loaded and run by the kernel, writing maps that bpfmap then reads."""

from __future__ import annotations

import os

import pytest

from bpfmap import Map
from bpfmap.core.maps import Program
from bpfmap.errors import UsageError, VerifierRejected

COUNT_ON_CPU = """
    r1 = 0
    *(u32 *)(r10 - 4) = r1
    r2 = r10
    r2 += -4
    r1 = map[counter]
    call map_lookup_elem
    if r0 == 0 goto out
    r1 = 1
    lock *(u64 *)(r0 + 0) += r1
out:
    r0 = 0
    exit
"""


def test_kernel_increments_a_percpu_counter_on_the_cpu_it_runs_on(bpffs):
    ncpu_online = os.sched_getaffinity(0)
    with Map.create("percpu_array", 4, 8, 1) as counter:
        prog = Program.load("socket_filter", COUNT_ON_CPU, {"counter": counter}, name="count")
        saved = os.sched_getaffinity(0)
        expected = [0] * counter.ncpus
        try:
            for i, cpu in enumerate(sorted(ncpu_online)):
                os.sched_setaffinity(0, {cpu})
                for _ in range(i + 3):
                    assert prog.test_run(bytes(64)) == (0, b"")
                expected[cpu] += i + 3
        finally:
            os.sched_setaffinity(0, saved)
            prog.close()
        got = [int.from_bytes(v, "little") for v in counter.lookup(bytes(4))]
        assert got == expected


def test_verifier_log_in_the_error(bpffs):
    with pytest.raises(VerifierRejected) as exc:
        Program.load("socket_filter", "r0 = *(u64 *)(r1 + 9999)\nexit", name="bad")
    assert "invalid bpf_context access" in str(exc.value) and "r0 = *(u64 *)(r1 +9999)" in exc.value.log
    with pytest.raises(VerifierRejected) as exc:
        Program.load("socket_filter", "exit")  # R0 never set
    assert "R0 !read_ok" in exc.value.log
    with pytest.raises(UsageError):
        Program.load("no_such_type", "exit")


def test_kernel_pushes_to_a_queue_that_bpfmap_pops(pindir):
    """bpf_map_push_elem from a program; pop from the command line sees the kernel's order."""
    from helpers import run_cli

    path = os.path.join(pindir, "jobs")
    assert run_cli("create", "queue", "--value", "4", "--max-entries", "8", "--pin", path, "-q").returncode == 0
    code = """
        r1 = *(u32 *)(r1 + 0)       ; skb->len: the value to push
        *(u32 *)(r10 - 4) = r1
        r1 = map[jobs]
        r2 = r10
        r2 += -4
        r3 = 0
        call map_push_elem
        r0 = 0
        exit
    """
    with Map.open(path) as jobs:
        prog = Program.load("socket_filter", code, {"jobs": jobs})
        for n in (3, 1, 2):
            prog.test_run(bytes(14 + n))
        prog.close()
    popped = [run_cli("pop", path, "--layout", "u32").stdout.strip() for _ in range(3)]
    assert popped == ["3", "1", "2"]
    assert run_cli("pop", path, "--layout", "u32").returncode == 1  # empty now
