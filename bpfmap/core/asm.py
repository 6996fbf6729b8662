"""A small eBPF assembler, in the syntax the kernel's verifier log and ``llvm-objdump``
print, for tests, demos and quick experiments::

    r1 = 0
    *(u32 *)(r10 - 4) = r1          ; key on the stack
    r2 = r10
    r2 += -4
    r1 = map[counts]                ; LD_IMM64 with BPF_PSEUDO_MAP_FD
    call map_lookup_elem
    if r0 == 0 goto out
    r1 = 1
    lock *(u64 *)(r0 + 0) += r1     ; atomic add
    out:
    r0 = 0
    exit

Registers ``r0``-``r10`` (64-bit) and ``w0``-``w10`` (32-bit ALU and JMP32);
ALU ``= += -= *= /= %= &= |= ^= <<= >>= s>>=``, ``rX = -rX``, ``rX = be16|be32|be64|le16|
le32|le64 rX``; ``rX = IMM ll`` (64-bit immediate), ``rX = map[NAME]`` (a map's fd);
loads ``rX = *(u8|u16|u32|u64 *)(rY + OFF)``, stores ``*(SIZE *)(rX + OFF) = rY|IMM``,
``lock *(u32|u64 *)(rX + OFF) += rY`` (atomic add); ``goto L``, ``if rX OP rY|IMM goto
L`` with ``== != > >= < <= s> s>= s< s<= &``, labels ``L:`` (or ``goto +N``);
``call NAME`` (helpers by name, ``call 130`` by number); ``exit``.  Comments start with
``;``, ``#`` or ``//``.  Each instruction is 8 bytes; ``assemble`` returns them all."""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Mapping
from typing import Any

from .._sys.helpers import HELPERS
from ..errors import UsageError

# instruction classes, sizes, modes, sources, operations (linux/bpf_common.h, linux/bpf.h)
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
SIZES = {"u32": 0x00, "u16": 0x08, "u8": 0x10, "u64": 0x18}
IMM, MEM, ATOMIC = 0x00, 0x60, 0xC0
K, X = 0x00, 0x08
ALU_OPS = {
    "+": 0x00,
    "-": 0x10,
    "*": 0x20,
    "/": 0x30,
    "|": 0x40,
    "&": 0x50,
    "<<": 0x60,
    ">>": 0x70,
    "%": 0x90,
    "^": 0xA0,
    "": 0xB0,
    "s>>": 0xC0,
}
NEG, END, TO_LE, TO_BE = 0x80, 0xD0, 0x00, 0x08
JMP_OPS = {
    "==": 0x10,
    ">": 0x20,
    ">=": 0x30,
    "&": 0x40,
    "!=": 0x50,
    "s>": 0x60,
    "s>=": 0x70,
    "<": 0xA0,
    "<=": 0xB0,
    "s<": 0xC0,
    "s<=": 0xD0,
}
JA, CALL, EXIT = 0x00, 0x80, 0x90
PSEUDO_MAP_FD = 1
ATOMIC_ADD = 0x00

_REG = r"([rw])(10|[0-9])"
_NUM = r"([-+]?(?:0x[0-9a-fA-F]+|\d+))"
_MEMREF = r"\*\(\s*(u8|u16|u32|u64)\s*\*\s*\)\s*\(\s*r(10|[0-9])\s*(?:([-+])\s*(0x[0-9a-fA-F]+|\d+))?\s*\)"

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (name, re.compile(rx))
    for name, rx in [
        ("label", r"([A-Za-z_.][\w.]*):"),
        ("exit", r"exit"),
        ("call", r"call\s+(\w+)"),
        ("goto", r"goto\s+([+-]?\d+|[A-Za-z_.][\w.]*)"),
        (
            "jcond",
            rf"if\s+{_REG}\s*(==|!=|s>=|s<=|s>|s<|>=|<=|>|<|&)\s*(?:{_REG}|{_NUM})\s+goto\s+"
            r"([+-]?\d+|[A-Za-z_.][\w.]*)",
        ),
        ("imm64", rf"r(10|[0-9])\s*=\s*{_NUM}\s+ll"),
        ("mapfd", r"r(10|[0-9])\s*=\s*map\[\s*([^\]\s]+)\s*\]"),
        ("load", rf"r(10|[0-9])\s*=\s*{_MEMREF}"),
        ("atomic", rf"lock\s+{_MEMREF}\s*\+=\s*r(10|[0-9])"),
        ("store", rf"{_MEMREF}\s*=\s*(?:r(10|[0-9])|{_NUM})"),
        ("neg", rf"{_REG}\s*=\s*-\s*([rw])(10|[0-9])"),
        ("endian", rf"{_REG}\s*=\s*(be|le)(16|32|64)\s+([rw])(10|[0-9])"),
        ("alu", rf"{_REG}\s*(\+|-|\*|/|%|&|\||\^|<<|>>|s>>)?=\s*(?:{_REG}|{_NUM})"),
    ]
]


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One ``struct bpf_insn`` (dst in the low nibble of the register byte)."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, _s32(imm))


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _int(text: str, line: int, bits: int = 32, what: str = "immediate") -> int:
    v = int(text, 0)
    lo, hi = -(1 << (bits - 1)), (1 << bits) - 1
    if not lo <= v <= hi:
        raise AsmError(f"{what} {text} does not fit in {bits} bits", line)
    return v


class AsmError(UsageError):
    """A line the assembler cannot read: names the line and what is wrong."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"asm line {line}: {message}")
        self.line = line


def _map_fd(ref: Any) -> int:
    fd = ref.fileno() if hasattr(ref, "fileno") else ref
    if not isinstance(fd, int):
        raise TypeError(f"not a map or fd: {ref!r}")
    return fd


def assemble(text: str, maps: Mapping[str, Any] | None = None) -> bytes:
    """Assemble ``text`` into instructions.  ``maps`` names the maps ``map[NAME]``
    refers to (Map objects or fds); ``map[id:N]`` is not accepted (a program needs
    an fd).  Raises AsmError (a UsageError) naming the line."""
    items = _parse(text)
    ctx = _Context(maps or {}, _labels(items))
    out: list[bytes] = []
    for lineno, kind, m in items:
        if kind == "label":
            continue
        out += _ENCODERS[kind](m.groups(), lineno, ctx)
        ctx.pc += _slots(kind)
    return b"".join(out)


def _parse(text: str) -> list[tuple[int, str, re.Match[str]]]:
    """(line number, kind, match) for every instruction and label, in order."""
    items: list[tuple[int, str, re.Match[str]]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        code = re.split(r";|#|//", raw, maxsplit=1)[0].strip()
        while code:
            for name, rx in _PATTERNS:
                m = rx.match(code) if name == "label" else rx.fullmatch(code)
                if m:
                    items.append((lineno, name, m))
                    code = code[m.end() :].strip() if name == "label" else ""
                    break
            else:
                raise AsmError(f"cannot read {code!r}", lineno)
    return items


def _slots(kind: str) -> int:
    return 2 if kind in ("imm64", "mapfd") else 1  # LD_IMM64 takes two instruction slots


def _labels(items: list[tuple[int, str, re.Match[str]]]) -> dict[str, int]:
    """Where each label lands (the first pass)."""
    labels: dict[str, int] = {}
    pc = 0
    for lineno, kind, m in items:
        if kind == "label":
            if m.group(1) in labels:
                raise AsmError(f"label {m.group(1)!r} defined twice", lineno)
            labels[m.group(1)] = pc
        else:
            pc += _slots(kind)
    return labels


class _Context:
    """What encoding an instruction needs besides its text: the maps, the labels and
    where the instruction lands."""

    def __init__(self, maps: Mapping[str, Any], labels: dict[str, int]) -> None:
        self.maps, self.labels, self.pc = maps, labels, 0

    def target(self, ref: str, lineno: int) -> int:
        """A jump offset: a number, or a label's distance from the next instruction."""
        if re.fullmatch(r"[+-]?\d+", ref):
            off = int(ref)
        elif ref in self.labels:
            off = self.labels[ref] - (self.pc + 1)
        else:
            raise AsmError(f"no label {ref!r}", lineno)
        if not -(1 << 15) <= off < (1 << 15):
            raise AsmError(f"jump to {ref} is too far", lineno)
        return off


def _exit(g: tuple[str, ...], lineno: int, ctx: _Context) -> list[bytes]:
    return [insn(JMP | EXIT)]


def _call(g: tuple[str, ...], lineno: int, ctx: _Context) -> list[bytes]:
    name = g[0]
    helper = int(name) if name.isdigit() else HELPERS.get(name, HELPERS.get(name.removeprefix("bpf_")))
    if helper is None:
        raise AsmError(f"no helper {name!r} (bpf_map_lookup_elem is 'call map_lookup_elem')", lineno)
    return [insn(JMP | CALL, imm=helper)]


def _goto(g: tuple[str, ...], lineno: int, ctx: _Context) -> list[bytes]:
    return [insn(JMP | JA, off=ctx.target(g[0], lineno))]


def _jcond(g: tuple[str, ...], lineno: int, ctx: _Context) -> list[bytes]:
    width, dst, op, swidth, src, num, ref = g
    cls = JMP32 if width == "w" else JMP
    if swidth is not None:
        if swidth != width:
            raise AsmError("compare registers of one width (r with r, w with w)", lineno)
        return [insn(cls | JMP_OPS[op] | X, int(dst), int(src), ctx.target(ref, lineno))]
    return [insn(cls | JMP_OPS[op] | K, int(dst), 0, ctx.target(ref, lineno), _int(num, lineno))]


def _imm64(g: tuple[str, ...], lineno: int, ctx: _Context) -> list[bytes]:
    v = _int(g[1], lineno, 64) & ((1 << 64) - 1)
    return [insn(LD | SIZES["u64"] | IMM, int(g[0]), imm=v & 0xFFFFFFFF), insn(0, imm=v >> 32)]


def _mapfd(g: tuple[str, ...], lineno: int, ctx: _Context) -> list[bytes]:
    name = g[1]
    if name not in ctx.maps:
        raise AsmError(f"no map {name!r} given (maps={{{name!r}: Map}})", lineno)
    return [insn(LD | SIZES["u64"] | IMM, int(g[0]), PSEUDO_MAP_FD, imm=_map_fd(ctx.maps[name])), insn(0)]


def _load(g: tuple[str, ...], lineno: int, ctx: _Context) -> list[bytes]:
    dst, size, src, sign, off = g
    return [insn(LDX | SIZES[size] | MEM, int(dst), int(src), _off(sign, off, lineno))]


def _store(g: tuple[str, ...], lineno: int, ctx: _Context) -> list[bytes]:
    size, dst, sign, off, src, num = g
    if src is not None:
        return [insn(STX | SIZES[size] | MEM, int(dst), int(src), _off(sign, off, lineno))]
    return [insn(ST | SIZES[size] | MEM, int(dst), 0, _off(sign, off, lineno), _int(num, lineno))]


def _atomic(g: tuple[str, ...], lineno: int, ctx: _Context) -> list[bytes]:
    size, dst, sign, off, src = g
    if size not in ("u32", "u64"):
        raise AsmError("atomic add works on u32 and u64", lineno)
    return [insn(STX | SIZES[size] | ATOMIC, int(dst), int(src), _off(sign, off, lineno), ATOMIC_ADD)]


def _neg(g: tuple[str, ...], lineno: int, ctx: _Context) -> list[bytes]:
    width, dst, swidth, src = g
    if (width, dst) != (swidth, src):
        raise AsmError("negation is in place: rX = -rX", lineno)
    return [insn((ALU if width == "w" else ALU64) | NEG, int(dst))]


def _endian(g: tuple[str, ...], lineno: int, ctx: _Context) -> list[bytes]:
    width, dst, order, bits, swidth, src = g
    if (width, dst) != (swidth, src):
        raise AsmError("byte swaps are in place: rX = be16 rX", lineno)
    return [insn(ALU | END | (TO_BE if order == "be" else TO_LE), int(dst), imm=int(bits))]


def _alu(g: tuple[str, ...], lineno: int, ctx: _Context) -> list[bytes]:
    width, dst, op, swidth, src, num = g
    cls = ALU if width == "w" else ALU64
    code_op = ALU_OPS[op or ""]
    if swidth is not None:
        if swidth != width:
            raise AsmError("mix of r and w registers; use one width", lineno)
        return [insn(cls | code_op | X, int(dst), int(src))]
    return [insn(cls | code_op | K, int(dst), imm=_int(num, lineno))]


# the kind of a parsed line (a name in _PATTERNS) -> its encoder
_ENCODERS: dict[str, Callable[[tuple[str, ...], int, _Context], list[bytes]]] = {
    "exit": _exit,
    "call": _call,
    "goto": _goto,
    "jcond": _jcond,
    "imm64": _imm64,
    "mapfd": _mapfd,
    "load": _load,
    "store": _store,
    "atomic": _atomic,
    "neg": _neg,
    "endian": _endian,
    "alu": _alu,
}


def _off(sign: str | None, off: str | None, line: int) -> int:
    if off is None:
        return 0
    v = int(off, 0) * (-1 if sign == "-" else 1)
    if not -(1 << 15) <= v < (1 << 15):
        raise AsmError(f"offset {v} does not fit in 16 bits", line)
    return v
