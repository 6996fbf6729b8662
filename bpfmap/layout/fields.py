"""Field paths: one grammar for every option that names a field of a key or value
(``--var``, ``--where``, ``--as``, ``--sort``, ``watch --var``, ``hist --slots``, the
exporter's ``labels:``/``value:``/``slots:``, CSV column names).

A path is ``NAME(.NAME|[INDEX])*``: ``comm``, ``stats.packets``, ``hists[2]``,
``hists[2].slots[0]``.  NAME is a C identifier, INDEX a decimal number.  Paths are
parsed once (cached) and then walk decoded values (:func:`select`, :func:`getter`) or
types (:func:`locate`, :func:`field_type`)."""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from typing import Any

from ..errors import UsageError, quote
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


def has(t: Type, path: str) -> bool:
    """Whether ``t`` has the field ``path`` (a malformed path has none)."""
    try:
        locate(t, path)
    except UsageError:
        return False
    return True
