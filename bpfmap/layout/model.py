"""One model of C data for every layout source (layout language, C declarations, BTF).

A type knows its size and alignment; a Struct places its fields (and bitfields) the
way the C compiler does on this ABI (System V: natural alignment, a bitfield never
straddles a unit of its declared type), or with no padding when packed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class Type:
    size: int
    align: int

    def c_name(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Scalar(Type):
    """An integer, float or bool.  ``kind`` is 'uint', 'int', 'float' or 'bool';
    ``order`` is '=' (host), '<' (le*) or '>' (be*)."""

    name: str
    kind: str
    size: int
    order: str = "="

    @property
    def align(self) -> int:  # type: ignore[override]
        return self.size

    @property
    def signed(self) -> bool:
        return self.kind == "int"

    def c_name(self) -> str:
        return self.name


@dataclass(frozen=True)
class Char(Type):
    """``char[N]``: a NUL-terminated string."""

    size: int
    align: int = 1

    def c_name(self) -> str:
        return f"char[{self.size}]"


@dataclass(frozen=True)
class Bytes(Type):
    """``hex[N]``: raw bytes shown as hex."""

    size: int
    align: int = 1

    def c_name(self) -> str:
        return f"hex[{self.size}]"


@dataclass(frozen=True)
class Formatted(Type):
    """Addresses: ``ipv4`` (4 bytes, aligned like __be32), ``ipv6`` (16, like in6_addr),
    ``mac`` (6, like u8[6])."""

    name: str
    size: int
    align: int

    def c_name(self) -> str:
        return self.name


IPV4 = Formatted("ipv4", 4, 4)
IPV6 = Formatted("ipv6", 16, 4)
MAC = Formatted("mac", 6, 1)


@dataclass(frozen=True)
class Pad(Type):
    """Bytes to skip."""

    size: int
    align: int = 1

    def c_name(self) -> str:
        return f"pad[{self.size}]"


@dataclass(frozen=True)
class Array(Type):
    elem: Type
    count: int

    @property
    def size(self) -> int:  # type: ignore[override]
        return self.elem.size * self.count

    @property
    def align(self) -> int:  # type: ignore[override]
        return self.elem.align

    def c_name(self) -> str:
        return f"{self.elem.c_name()}[{self.count}]"


@dataclass(frozen=True)
class Enum(Type):
    """An enum: decodes to the enumerator's name when there is one."""

    name: str
    size: int
    signed: bool
    values: tuple[tuple[str, int], ...]

    @property
    def align(self) -> int:  # type: ignore[override]
        return self.size

    def c_name(self) -> str:
        return f"enum {self.name}" if self.name else "enum"


@dataclass(frozen=True)
class Field:
    name: str
    type: Type
    offset: int  # bytes
    bit_offset: int | None = None  # bitfields: bit position from the struct start
    bit_size: int | None = None


@dataclass(frozen=True)
class Struct(Type):
    """A struct or union with placed fields.  Build one with :func:`layout_struct`."""

    name: str
    fields: tuple[Field, ...]
    size: int
    align: int
    union: bool = False
    packed: bool = False

    def c_name(self) -> str:
        kw = "union" if self.union else "struct"
        return f"{kw} {self.name}" if self.name else kw

    def describe(self) -> str:
        """Every field with its offset: what a size-mismatch error shows."""
        parts = []
        for f in self.fields:
            if isinstance(f.type, Pad):
                parts.append(f"pad@{f.offset}+{f.type.size}")
            elif f.bit_size is not None:
                parts.append(f"{f.name}:{f.bit_size}@bit{f.bit_offset}")
            else:
                parts.append(f"{f.name}={f.type.c_name()}@{f.offset}")
        return "{" + ", ".join(parts) + f"}} ({self.size} bytes)"


@dataclass
class Member:
    """A field before placement."""

    name: str
    type: Type
    bit_size: int | None = None


def layout_struct(name: str, members: list[Member], packed: bool = False, union: bool = False,
                  align: int | None = None) -> Struct:
    """Place ``members`` as the C compiler does (or packed), and pad the end to the alignment."""
    fields: list[Field] = []
    bit = 0  # next free bit
    max_align = 1
    size = 0
    for m in members:
        t = m.type
        a = 1 if packed else t.align
        if m.bit_size is not None:
            unit = t.size * 8
            if m.bit_size == 0:  # zero-width: start the next unit
                bit = _round_up(bit, unit if not packed else 1)
                continue
            start = 0 if union else bit
            if not packed and start // unit != (start + m.bit_size - 1) // unit:
                start = _round_up(start, unit)
            fields.append(Field(m.name, t, start // 8, start, m.bit_size))
            if not union:
                bit = start + m.bit_size
            size = max(size, _round_up(start + m.bit_size, 8) // 8)
            if m.name:
                max_align = max(max_align, a)
            continue
        offset = 0 if union else _round_up(_round_up(bit, 8) // 8, a)
        fields.append(Field(m.name, t, offset))
        max_align = max(max_align, a)
        end = offset + t.size
        size = max(size, end)
        if not union:
            bit = end * 8
    if align is not None:
        max_align = max(max_align, align)
    size = _round_up(max(size, _round_up(bit, 8) // 8), max_align)
    return Struct(name, tuple(fields), size, max_align, union, packed)


def _round_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a if a > 1 else n


SCALARS: dict[str, Scalar] = {}
for _bits in (8, 16, 32, 64):
    _n = _bits // 8
    SCALARS[f"u{_bits}"] = Scalar(f"u{_bits}", "uint", _n)
    SCALARS[f"s{_bits}"] = Scalar(f"s{_bits}", "int", _n)
    SCALARS[f"i{_bits}"] = SCALARS[f"s{_bits}"]
    if _bits > 8:
        SCALARS[f"be{_bits}"] = Scalar(f"be{_bits}", "uint", _n, ">")
        SCALARS[f"le{_bits}"] = Scalar(f"le{_bits}", "uint", _n, "<")
SCALARS["f32"] = Scalar("f32", "float", 4)
SCALARS["f64"] = Scalar("f64", "float", 8)
SCALARS["bool"] = Scalar("bool", "bool", 1)
