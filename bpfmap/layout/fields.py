"""Field paths: one grammar for every option that names a field of a key or value
(``--var``, ``--where``, ``--as``, ``--sort``, ``watch --var``, ``hist --slots``, the
exporter's ``labels:``/``value:``/``slots:``, CSV column names).

A path is ``NAME(.NAME|[INDEX])*``: ``comm``, ``stats.packets``, ``hists[2]``,
``hists[2].slots[0]``.  NAME is a C identifier, INDEX a decimal number.  Paths are
parsed once (cached) and then walk decoded values (:func:`select`, :func:`getter`: the
one evaluator) or types (:func:`locate`, :func:`field_type`, :func:`member`).

Which side of an entry a path names is decided here and only here (:func:`side`):
``key.PATH`` and ``value.PATH`` name their side, ``key`` and ``value`` alone the whole
side; a bare PATH is a field of the side that has it, and a name both sides have is
refused (write ``key.NAME`` or ``value.NAME``), except for the uses in
:data:`ONE_SIDE`, which only ever read one side."""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from typing import Any

from ..errors import Param, UsageError, Words, quote, words
from .model import Array, Struct, Type

Step = tuple[str, str]  # (NAME, "") or ("", INDEX)

_STEP = re.compile(r"\.?([A-Za-z_][A-Za-z_0-9]*)|\[([0-9]+)\]")
GRAMMAR = "NAME, NAME.FIELD or NAME[INDEX] (and so on: a.b[2].c)"


@functools.lru_cache(maxsize=512)
def parts(path: str) -> tuple[Step, ...]:
    """``a.b[3]`` -> (("a", ""), ("b", ""), ("", "3")): the names and indices of a path;
    UsageError for anything that is not one."""
    steps: tuple[Step, ...] = tuple((m.group(1) or "", m.group(2) or "") for m in _STEP.finditer(path))
    if not path or not steps or _text(steps) != path:
        raise UsageError(f"{quote(path)}: name a field as {GRAMMAR}")
    return steps


def _text(steps: tuple[Step, ...]) -> str:
    return "".join(f".{n}" if n else f"[{i}]" for n, i in steps).lstrip(".")


def names(path: str) -> list[str]:
    """The names of a path that has no index (``a.b`` -> [a, b]); UsageError for one with."""
    steps = parts(path)
    if any(not n for n, _i in steps):
        raise UsageError(f"{quote(path)}: name a struct field (NAME or NAME.FIELD), not an array element")
    return [n for n, _i in steps]


def keys(path: str) -> list[str | int]:
    """The path as the keys and indices that walk a decoded value (``a[2]`` -> [a, 2])."""
    return [n if n else int(i) for n, i in parts(path)]


def select(value: Any, path: str) -> Any:
    """The part of a decoded value ``path`` names (``hists``, ``limits.max_len``,
    ``hists[1]``); UsageError saying what is there instead."""
    for name, index in parts(path):
        if name:
            if not isinstance(value, dict) or name not in value:
                have = ", ".join(value) if isinstance(value, dict) else "none"
                raise UsageError(f"{quote(path)}: no field {name} (fields: {have})")
            value = value[name]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                raise UsageError(f"{quote(path)}: no element {index}")
            value = value[int(index)]
    return value


KEY, VALUE = 0, 1
SIDES = ("key", "value")

# The rule's only exceptions: uses that only ever read one side take a bare name as a
# field of that side even where the other side has one too.
ONE_SIDE = {
    "copy": VALUE,  # copy's sets and drops: the target's value fields (key.NAME for the key's)
    "stack id": KEY,  # a counts map's stack ids are what its entries are counted by
    "count": VALUE,  # what stacks and export count, hist's counts: numbers a value holds
}


def split(path: str) -> tuple[int | None, str | None]:
    """``key.a`` -> (KEY, "a"); ``value`` -> (VALUE, None); ``a.b`` -> (None, "a.b")."""
    steps = parts(path)
    head = steps[0][0]
    if head not in SIDES:
        return None, path
    return SIDES.index(head), _text(steps[1:]) or None


def side(path: str, key: Any, value: Any, what: str | Words, reads: str | None = None) -> tuple[int, str | None]:
    """(KEY or VALUE, the path within that side; None: the whole side) for ``path``, by
    THE rule (see the module).  ``key`` and ``value`` are what a field is looked up in:
    the sides' types (a Type, or None where there is none), else a decoded entry's key
    and value.  ``what`` heads the messages; ``reads`` names a use in :data:`ONE_SIDE`.
    UsageError for a name neither side has, or both (outside ONE_SIDE)."""
    named, rest = split(path)
    sides = (key, value)
    if named is not None:
        if rest is not None and sides[named] is not None and not _has(sides[named], rest):
            raise UsageError(words(what, f": the {SIDES[named]} has no field {rest}{listing(sides[named])}"))
        return named, rest
    found = [s for s in (KEY, VALUE) if _has(sides[s], path)]
    if reads is not None and (len(found) == 2 or (key, value) == (None, None)):
        return ONE_SIDE[reads], path
    if len(found) == 2:
        raise UsageError(
            words(what, f": {path} is a field of the key and of the value; write key.{path} or value.{path}")
        )
    if not found:
        if (key, value) == (None, None):
            raise UsageError(
                words(what, ": the map has no layout to name fields by; give ", Param("layout", also=True), " or BTF")
            )
        have = ", ".join(f"{SIDES[s]}.{n}" for s in (KEY, VALUE) for n in _names(sides[s]))
        raise UsageError(
            words(
                what,
                f": no field {path} in the key or the value"
                + (f" (fields: {have})" if have else " (key and value are not structs: use key or value)"),
            )
        )
    return found[0], path


def _has(obj: Any, path: str) -> bool:
    if obj is None or isinstance(obj, Type):
        return member(obj, path) is not None
    try:
        select(obj, path)
    except UsageError:
        return False
    return True


def _names(obj: Any) -> list[str]:
    if isinstance(obj, Struct):
        return [f.name for f in obj.fields if f.name]
    if isinstance(obj, dict):
        return list(obj)
    return []


def listing(obj: Any) -> str:
    """' (fields: a, b)' for a struct type or a decoded struct, '' for anything else."""
    have = _names(obj)
    return f" (fields: {', '.join(have)})" if have else ""


def getter(path: str) -> Callable[[Any], Any]:
    """A function reading the field ``path`` of a decoded value at C speed where it can;
    it raises KeyError, IndexError or TypeError when the value has no such field."""
    steps = keys(path)
    if len(steps) == 1:
        return operator.itemgetter(steps[0])

    def get(obj: Any) -> Any:
        for s in steps:
            obj = obj[s]
        return obj

    return get


def locate(t: Type, path: str) -> tuple[int, Type]:
    """(byte offset, type) of the field ``path`` names in the struct type ``t``: names into
    nested structs, indices into arrays.  A bitfield cannot be located (set the whole value)."""
    offset = 0
    for name, index in parts(path):
        if name:
            if not isinstance(t, Struct):
                raise UsageError(f"{quote(path)}: {t.c_name()} has no field {name}")
            found = next((f for f in t.fields if f.name == name), None)
            if found is None:
                have = ", ".join(f.name for f in t.fields if f.name)
                raise UsageError(f"{quote(path)}: no field {name}; there are {have}")
            if found.bit_size is not None:
                raise UsageError(f"{quote(path)}: {name} is a bitfield; set the whole value")
            offset += found.offset
            t = found.type
        else:
            if not isinstance(t, Array):
                raise UsageError(f"{quote(path)}: {t.c_name()} is not an array")
            i = int(index)
            if i >= t.count:
                raise UsageError(f"{quote(path)}: index {i} past the end of {t.c_name()}")
            offset += i * t.elem.size
            t = t.elem
    return offset, t


def field_type(t: Type, path: str) -> Type:
    """The type of the field ``path`` names in ``t`` (see :func:`locate`)."""
    return locate(t, path)[1]


def member(t: Type | None, path: str) -> Type | None:
    """The type of field ``path`` of type ``t`` (members of anonymous structs and unions
    and bitfields too), None when it has none."""
    for name, index in parts(path):
        if name:
            if not isinstance(t, Struct):
                return None
            t = _member(t, name)
            if t is None:
                return None
        else:
            if not isinstance(t, Array) or int(index) >= t.count:
                return None
            t = t.elem
    return t


def _member(t: Struct, name: str) -> Type | None:
    for f in t.fields:
        if f.name == name:
            return f.type
        if not f.name and isinstance(f.type, Struct):  # an anonymous struct or union's members
            inner = _member(f.type, name)
            if inner is not None:
                return inner
    return None


def has(t: Type, path: str) -> bool:
    """Whether ``t`` has the field ``path`` (a malformed path has none)."""
    try:
        locate(t, path)
    except UsageError:
        return False
    return True
