"""The assembler against LLVM's (llvm-mc -triple bpf assembles the same syntax), and
programs it builds loaded and run by the kernel, writing maps that bpfmap then reads."""

from __future__ import annotations

import os
import random
import subprocess

import pytest
from helpers import need_tool

from bpfmap import Map
from bpfmap.core.asm import AsmError, assemble
from bpfmap.core.maps import Program
from bpfmap.errors import UsageError, VerifierRejected


def _random_line(rng: random.Random) -> str:
    r = lambda: rng.randrange(11)  # noqa: E731
    num = lambda bits=31: rng.choice([0, 1, -1, rng.randrange(-(1 << bits), 1 << bits)])  # noqa: E731
    w = rng.choice("rw")
    # LLVM 14's assembler lacks %= and 'if .. & ..' (JSET): those are checked below by encoding
    op = rng.choice(["", "+", "-", "*", "/", "&", "|", "^", "<<", ">>", "s>>"])
    size = rng.choice(["u8", "u16", "u32", "u64"])
    off = rng.randrange(-512, 512)
    offs = f"{'-' if off < 0 else '+'} {abs(off)}"
    cmp = rng.choice(["==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<="])
    choices = [
        f"{w}{r()} {op}= {w}{r()}",
        f"{w}{r()} {op}= {num()}",
        f"r{r()} = {num(63)} ll",
        f"r{r()} = *({size} *)(r{r()} {offs})",
        f"*({size} *)(r{r()} {offs}) = r{r()}",
        f"lock *({rng.choice(['u32', 'u64'])} *)(r{r()} {offs}) += r{r()}",
        f"if {w}{r()} {cmp} {w}{r()} goto {rng.randrange(-100, 100):+d}",
        f"if {w}{r()} {cmp} {num()} goto {rng.randrange(-100, 100):+d}",
        f"goto {rng.randrange(-100, 100):+d}",
        f"call {rng.randrange(200)}",
        "exit",
    ]
    reg = r()
    choices.append(f"{w}{reg} = -{w}{reg}")
    choices.append(f"r{reg} = {rng.choice(['be', 'le'])}{rng.choice([16, 32, 64])} r{reg}")
    return rng.choice(choices)


def test_same_bytes_as_llvm(tmp_path):
    llvm_mc = need_tool("llvm-mc")
    objcopy = need_tool("llvm-objcopy")
    rng = random.Random(1234)
    lines = [_random_line(rng) for _ in range(3000)]
    src = tmp_path / "p.s"
    src.write_text("\n".join(lines) + "\n")
    obj, raw = tmp_path / "p.o", tmp_path / "p.bin"
    subprocess.run([llvm_mc, "-triple", "bpf", "-filetype=obj", "-o", str(obj), str(src)], check=True)
    subprocess.run([objcopy, "-O", "binary", "--only-section=.text", str(obj), str(raw)], check=True)
    ours = assemble(src.read_text())
    theirs = raw.read_bytes()
    assert len(ours) == len(theirs)
    for i in range(0, len(ours), 8):
        assert ours[i : i + 8] == theirs[i : i + 8], (
            f"insn {i // 8}: ours {ours[i : i + 8].hex()} llvm {theirs[i : i + 8].hex()}"
        )


def test_encodings_llvm_14_cannot_check():
    # linux/bpf.h: BPF_ALU64|BPF_MOD|BPF_K = 0x97, BPF_ALU|BPF_MOD|BPF_X = 0x9c,
    # BPF_JMP|BPF_JSET|BPF_K = 0x45, BPF_JMP32|BPF_JSET|BPF_X = 0x4e, BPF_ST|BPF_MEM|BPF_W = 0x62
    assert assemble("r1 %= 7").hex() == "9701000007000000"
    assert assemble("w2 %= w3").hex() == "9c32000000000000"
    assert assemble("if r1 & 0x10 goto +2").hex() == "4501020010000000"
    assert assemble("if w4 & w5 goto -1").hex() == "4e54ffff00000000"
    assert assemble("*(u32 *)(r10 - 4) = 7").hex() == "620afcff07000000"


def test_labels_and_comments():
    code = assemble("""
        start:  r0 = 0          ; comment
        if r0 == 0 goto end     # another
        r1 = 1 ll               // LD_IMM64 takes two slots
        goto start
        end: exit
    """)
    insns = [code[i : i + 8] for i in range(0, len(code), 8)]
    assert len(insns) == 6
    assert int.from_bytes(insns[1][2:4], "little", signed=True) == 3  # over the 2-slot ld_imm64 and goto
    assert int.from_bytes(insns[4][2:4], "little", signed=True) == -5


@pytest.mark.parametrize(
    "text, message",
    [
        ("r11 = 1", "cannot read"),
        ("goto nowhere", "no label"),
        ("call no_such_helper", "no helper"),
        ("r1 = map[m]", "no map 'm'"),
        ("r1 = 1 << 40", "cannot read"),
        ("w1 = 0x100000000", "does not fit"),
        ("r1 += w2", "one width"),
        ("a:\na:\nexit", "defined twice"),
        ("r1 = -r2", "in place"),
    ],
)
def test_errors_name_the_line(text, message):
    with pytest.raises(AsmError) as exc:
        assemble(text)
    assert message in str(exc.value) and "asm line" in str(exc.value)
    assert isinstance(exc.value, UsageError)


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
