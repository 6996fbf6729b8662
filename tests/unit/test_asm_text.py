"""The assembler's text and bytes, against llvm-mc where it can check them: no program is loaded."""

from __future__ import annotations

import random
import subprocess

import pytest
from helpers import need_tool

from bpfmap.core.asm import AsmError, assemble
from bpfmap.errors import UsageError


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
