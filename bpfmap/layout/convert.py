"""Values of one layout turned into values of another: what ``copy`` and ``migrate`` do to
every key and value when the two maps' types differ.

The rules, checked once from the two types (:func:`converter`) and then per value:
- struct fields are matched by name, at any depth; a field the target has and the source
  lacks is zero, or what ``sets`` gives; a field the source has and the target lacks is
  refused by name unless it is in ``drops``;
- integers (and bools, enums, bitfields) become integers of any width or sign: a value
  that does not fit the target fails when it is encoded (the codec checks every range);
  floats become floats; addresses stay the same kind of address;
- arrays grow with zeros and shrink only when in ``drops``; ``char[N]`` strings grow
  freely, and a string longer than the target is cut only with ``truncate``;
- anything else (an integer to an address, a struct to a scalar) is refused, naming the field.

Paths (in ``drops``, ``sets`` and messages) are ``key.NAME`` / ``value.NAME`` (a bare
NAME is the value's: fields.ONE_SIDE): the side, then a field path (``value.stats.bytes``, ``value.hist``); ``key`` / ``value`` alone is
the whole side."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import Param, UsageError, Words, words
from . import fields
from .codec import compile_type
from .hexbytes import hex_bytes
from .model import Array, Bytes, Char, Enum, Formatted, Pad, Scalar, Struct, Type

Convert = Callable[[Any], Any]
_INTS = ("uint", "int", "bool")


def _same(v: Any) -> Any:
    return v


class Conversion:
    """What a conversion needs from the user: ``drops`` (paths allowed to be left out or
    cut), ``sets`` (path -> value text for fields the source lacks), ``truncate``
    (strings may be cut).  ``unmatched`` collects what the source has and the target
    lacks; ``used`` which drops and sets matched a field (the rest are misspelt)."""

    def __init__(self, drops: set[str] | None = None, sets: dict[str, str] | None = None, truncate: bool = False):
        self.drops = {_sided(p) for p in drops or ()}
        self.sets = {_sided(p): v for p, v in (sets or {}).items()}
        self.truncate = truncate
        self.unmatched: list[str] = []
        self.used: set[str] = set()

    def dropped(self, path: str) -> bool:
        if path in self.drops:
            self.used.add(path)
            return True
        return False


def _sided(path: str) -> str:
    """``path`` with its side (``count`` -> ``value.count``), as fields.side reads a
    copy's bare names."""
    side, rest = fields.side(path, None, None, path, "copy")
    return f"{fields.SIDES[side]}.{rest}" if rest is not None else fields.SIDES[side]


def converter(src: Type, dst: Type, path: str, plan: Conversion) -> Convert:
    """A function from a decoded ``src`` value to a ``dst`` value its codec encodes."""
    if src == dst:
        return _same
    if isinstance(src, Struct) and isinstance(dst, Struct) and not src.union and not dst.union:
        return _struct(src, dst, path, plan)
    if isinstance(src, Array) and isinstance(dst, Array):
        return _array(src, dst, path, plan)
    if isinstance(src, Char) and isinstance(dst, Char):
        return _char(dst, path, plan)
    if isinstance(src, Bytes) and isinstance(dst, Bytes):
        return _bytes(src, dst, path, plan)
    if _integer(src) and _integer(dst):
        return _to_int(src)
    if isinstance(src, Scalar) and isinstance(dst, Scalar) and src.kind == dst.kind == "float":
        return _same
    if isinstance(src, Formatted) and isinstance(dst, Formatted) and src.name == dst.name:
        return _same
    raise UsageError(
        words(
            f"{path}: {src.c_name()} cannot become {dst.c_name()}; ",
            *(Param("drops"), f" {path} and ", Param("sets"), f" {path}=VALUE"),
        )
    )


def _drop(path: str, kept: str) -> Words:
    """How to let ``path`` be cut to what the target holds (``kept``)."""
    return words(Param("drops"), f" {path} to keep {kept}")


def _integer(t: Type) -> bool:
    return isinstance(t, Enum) or (isinstance(t, Scalar) and t.kind in _INTS)


def _to_int(src: Type) -> Convert:
    if isinstance(src, Enum):
        by_name = dict(src.values)
        return lambda v: by_name.get(v, v) if isinstance(v, str) else v
    if isinstance(src, Scalar) and src.kind == "bool":
        return int
    return _same


def zero(t: Type) -> Any:
    """The decoded value of ``t``'s all-zero bytes."""
    dec, _enc = compile_type(t)
    return dec(bytes(t.size), 0)


def members(t: Struct) -> dict[str, Type]:
    """A struct's fields as decoded values hold them: named fields (bitfields too), and the
    members of anonymous structs and unions."""
    out: dict[str, Type] = {}
    for f in t.fields:
        if isinstance(f.type, Pad):
            continue
        if f.name:
            out[f.name] = f.type if f.bit_size is None else _Bits(f.type, f.bit_size)
        elif isinstance(f.type, Struct):
            out.update(members(f.type))
    return out


class _Bits(Type):
    """A bitfield, as the converter sees it: an integer of its own type (its codec checks
    the bit width)."""

    __slots__ = ("type", "bits", "size", "align")

    def __init__(self, t: Type, bits: int) -> None:
        self.type, self.bits, self.size, self.align = t, bits, t.size, t.align

    def c_name(self) -> str:
        return f"{self.type.c_name()}:{self.bits}"


def _unbits(t: Type) -> Type:
    return t.type if isinstance(t, _Bits) else t


def _struct(src: Struct, dst: Struct, path: str, plan: Conversion) -> Convert:
    have, want = members(src), members(dst)
    for name, t in have.items():
        sub = f"{path}.{name}"
        if name not in want and not plan.dropped(sub):
            plan.unmatched.append(f"{sub} ({_unbits(t).c_name()})")
    steps: list[tuple[str, str | None, Convert | None, Any]] = []  # (name, source name, convert, constant)
    for name, t in want.items():
        sub = f"{path}.{name}"
        if sub in plan.sets:
            plan.used.add(sub)
            steps.append((name, None, None, plan.sets[sub]))
        elif name in have:
            s, d = _unbits(have[name]), _unbits(t)
            steps.append((name, name, converter(s, d, sub, plan), None))
        else:
            steps.append((name, None, None, zero(_unbits(t)) if not isinstance(t, _Bits) else 0))

    def convert(v: Any) -> dict[str, Any]:
        return {name: (fn(v[src_name]) if src_name is not None else const) for name, src_name, fn, const in steps}  # type: ignore[misc]

    return convert


def _array(src: Array, dst: Array, path: str, plan: Conversion) -> Convert:
    elem = converter(src.elem, dst.elem, f"{path}[]", plan)
    n, m = src.count, dst.count
    if m < n and not plan.dropped(path):
        raise UsageError(
            words(f"{path}: {src.c_name()} does not fit {dst.c_name()}; ", _drop(path, f"the first {m} elements"))
        )
    pad = [zero(dst.elem)] * max(0, m - n)

    def convert(v: list[Any]) -> list[Any]:
        return [elem(x) for x in v[:m]] + pad

    return convert


def _char(dst: Char, path: str, plan: Conversion) -> Convert:
    n = dst.size
    if not plan.truncate:
        return _same  # a longer string fails when encoded, naming the entry

    def cut(v: str) -> str:
        data = v.encode("utf-8", "surrogateescape")
        return v if len(data) <= n else data[:n].decode("utf-8", "surrogateescape")

    return cut


def _bytes(src: Bytes, dst: Bytes, path: str, plan: Conversion) -> Convert:
    n, m = src.size, dst.size
    if m < n and not plan.dropped(path):
        raise UsageError(
            words(f"{path}: {src.c_name()} does not fit {dst.c_name()}; ", _drop(path, f"the first {m} bytes"))
        )

    def convert(v: str) -> bytes:
        data = hex_bytes(v) or b""
        return data[:m].ljust(m, b"\0")

    return convert
