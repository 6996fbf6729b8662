"""One model of C data for every layout source (layout language, C declarations, BTF).

A type knows its size and alignment; a Struct places its fields (and bitfields) the
way the C compiler does on this ABI (System V: natural alignment, a bitfield never
straddles a unit of its declared type), or with no padding when packed.
"""

from __future__ import annotations

from typing import Any


class _Record:
    """A small record, not changed after construction: equality, hash and repr from ``__slots__``.

    (Plain classes rather than dataclasses: decorating a dozen dataclasses costs
    ~10 ms at start-up, and the CLI imports this module on every command with a layout.)"""

    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, k) for k in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._values() == self._values()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._values()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"{type(self).__name__}({args})"


class Type(_Record):
    __slots__ = ()
    size: int
    align: int

    def c_name(self) -> str:
        raise NotImplementedError


class Scalar(Type):
    """An integer, float or bool.  ``kind`` is 'uint', 'int', 'float' or 'bool';
    ``order`` is '=' (host), '<' (le*) or '>' (be*)."""

    __slots__ = ("name", "kind", "size", "order", "align")

    def __init__(self, name: str, kind: str, size: int, order: str = "=") -> None:
        self.name, self.kind, self.size, self.order, self.align = name, kind, size, order, size

    @property
    def signed(self) -> bool:
        return self.kind == "int"

    def c_name(self) -> str:
        return self.name


class Char(Type):
    """``char[N]``: a NUL-terminated string."""

    __slots__ = ("size", "align")

    def __init__(self, size: int) -> None:
        self.size, self.align = size, 1

    def c_name(self) -> str:
        return f"char[{self.size}]"


class Bytes(Type):
    """``hex[N]``: raw bytes shown as hex."""

    __slots__ = ("size", "align")

    def __init__(self, size: int) -> None:
        self.size, self.align = size, 1

    def c_name(self) -> str:
        return f"hex[{self.size}]"


class Formatted(Type):
    """Addresses: ``ipv4`` (4 bytes, aligned like __be32), ``ipv6`` (16, like in6_addr),
    ``mac`` (6, like u8[6])."""

    __slots__ = ("name", "size", "align")

    def __init__(self, name: str, size: int, align: int) -> None:
        self.name, self.size, self.align = name, size, align

    def c_name(self) -> str:
        return self.name


IPV4 = Formatted("ipv4", 4, 4)
IPV6 = Formatted("ipv6", 16, 4)
MAC = Formatted("mac", 6, 1)


class Pad(Type):
    """Bytes to skip."""

    __slots__ = ("size", "align")

    def __init__(self, size: int) -> None:
        self.size, self.align = size, 1

    def c_name(self) -> str:
        return f"pad[{self.size}]"


class Array(Type):
    __slots__ = ("elem", "count", "size", "align")

    def __init__(self, elem: Type, count: int) -> None:
        self.elem, self.count = elem, count
        self.size, self.align = elem.size * count, elem.align

    def c_name(self) -> str:
        return f"{self.elem.c_name()}[{self.count}]"


class Enum(Type):
    """An enum: decodes to the enumerator's name when there is one."""

    __slots__ = ("name", "size", "signed", "values", "align")

    def __init__(self, name: str, size: int, signed: bool, values: tuple[tuple[str, int], ...]) -> None:
        self.name, self.size, self.signed, self.values, self.align = name, size, signed, tuple(values), size

    def c_name(self) -> str:
        return f"enum {self.name}" if self.name else "enum"


class Field(_Record):
    """A placed member: byte ``offset``; bitfields also ``bit_offset`` (from the struct
    start) and ``bit_size``."""

    __slots__ = ("name", "type", "offset", "bit_offset", "bit_size")

    def __init__(
        self, name: str, type: Type, offset: int, bit_offset: int | None = None, bit_size: int | None = None
    ) -> None:
        self.name, self.type, self.offset, self.bit_offset, self.bit_size = name, type, offset, bit_offset, bit_size


class Struct(Type):
    """A struct or union with placed fields.  Build one with :func:`layout_struct`.
    ``section``: the global variables of an ELF section (a BTF DATASEC, what libbpf
    makes a .data/.rodata/.bss map of), each variable a field at its offset."""

    __slots__ = ("name", "fields", "size", "align", "union", "packed", "section")

    def __init__(
        self,
        name: str,
        fields: tuple[Field, ...],
        size: int,
        align: int,
        union: bool = False,
        packed: bool = False,
        section: bool = False,
    ) -> None:
        self.name, self.fields, self.size, self.align = name, tuple(fields), size, align
        self.union, self.packed, self.section = union, packed, section

    def c_name(self) -> str:
        if self.section:
            return f'SEC("{self.name}")'
        kw = "union" if self.union else "struct"
        return f"{kw} {self.name}" if self.name else kw

    def describe(self) -> str:
        """Every field with its offset: what a size-mismatch error shows."""
        parts = []
        shown = 16
        for f in self.fields[:shown]:
            if isinstance(f.type, Pad):
                parts.append(f"pad@{f.offset}+{f.type.size}")
            elif f.bit_size is not None:
                parts.append(f"{f.name}:{f.bit_size}@bit{f.bit_offset}")
            else:
                parts.append(f"{f.name}={f.type.c_name()}@{f.offset}")
        if len(self.fields) > shown:
            parts.append(f"... {len(self.fields) - shown} more")
        return "{" + ", ".join(parts) + f"}} ({self.size} bytes)"


class Member:
    """A field before placement."""

    __slots__ = ("name", "type", "bit_size")

    def __init__(self, name: str, type: Type, bit_size: int | None = None) -> None:
        self.name, self.type, self.bit_size = name, type, bit_size


def layout_struct(
    name: str, members: list[Member], packed: bool = False, union: bool = False, align: int | None = None
) -> Struct:
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
SCALARS["u128"] = Scalar("u128", "uint", 16)  # __int128: two 8-byte words, aligned to 16 as x86-64 and arm64 do
SCALARS["s128"] = Scalar("s128", "int", 16)
SCALARS["i128"] = SCALARS["s128"]
SCALARS["f32"] = Scalar("f32", "float", 4)
SCALARS["f64"] = Scalar("f64", "float", 8)
SCALARS["bool"] = Scalar("bool", "bool", 1)
