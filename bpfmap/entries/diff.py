"""Two maps (or saved files, core/saved.py) compared entry by entry: added, removed and
changed, by their bytes (per CPU for per-CPU maps), shown decoded through each side's
layout or BTF, a changed entry field by field.

A is read into a dict of its keys' bytes (memory: A's entries); B is streamed against it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from ..core.maps import Map
from ..errors import UsageError
from ..view import View


class DiffResult:
    """How many entries were ``added`` (in B only), ``removed`` (in A only), ``changed``
    and ``same``."""

    def __init__(self, a: str, b: str) -> None:
        self.a, self.b = a, b
        self.added = self.removed = self.changed = self.same = 0

    @property
    def equal(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def summary(self) -> str:
        return (
            f"diff {self.a} {self.b}: {self.added:,} added, {self.removed:,} removed, {self.changed:,} changed, "
            f"{self.same:,} the same"
        )


def leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(field path, value) of every leaf of a decoded value, in the field-path grammar
    (``a.b``, ``arr[2]``); per-CPU lists as ``cpuN``."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from leaves(v, f"{prefix}[{i}]")
    else:
        yield prefix, value


def diff(a: str, b: str, out: IO[str], fmt: str = "text", where: list[str] | None = None) -> DiffResult:
    """Compare the maps ``a`` and ``b`` name (pins, ids, names, saved files) and write the
    differences to ``out`` (``fmt`` text or jsonl); ``where`` conditions (as dump's) pick
    the entries compared: an entry counts when either side's passes.  Raises UsageError
    when the keys or values of the two differ in size or kind."""
    from ..filters import Where

    result = DiffResult(a, b)
    with Map.open(a, readonly=True) as ma, Map.open(b, readonly=True) as mb:
        for m in (ma, mb):
            m.require("dump", "diff")
        if ma.key_size != mb.key_size or ma.value_size != mb.value_size or ma.percpu != mb.percpu:
            raise UsageError(
                f"diff {a} {b}: their keys and values differ in size or kind "
                f"({ma.key_size}:{ma.value_size}{' per-CPU' if ma.percpu else ''} and "
                f"{mb.key_size}:{mb.value_size}{' per-CPU' if mb.percpu else ''}); entries cannot be compared"
            )
        va, vb = View(ma), View(mb)
        wa, wb = (
            (
                Where(where, getattr(v.key, "type", None), getattr(v.value, "type", None), None, v.percpu)
                for v in (va, vb)
            )
            if where
            else (None, None)
        )
        for w in (wa, wb):
            if w is not None:
                w.begin()
        old: dict[bytes, bytes] = {}
        ks_a, vs_a = ma.key_size, ma.shape.entry
        for keys, values, count in ma.batches():
            for i in range(count):
                old[keys[i * ks_a : (i + 1) * ks_a]] = values[i * vs_a : (i + 1) * vs_a]
        write = _writer(fmt, out, va, vb)
        ks, vs = mb.key_size, mb.shape.entry
        for keys, values, count in mb.batches():
            for i in range(count):
                k, v = keys[i * ks : (i + 1) * ks], values[i * vs : (i + 1) * vs]
                was = old.pop(k, None)
                if was == v:
                    if not where or _picked(va, wa, k, was) or _picked(vb, wb, k, v):
                        result.same += 1
                    continue
                if was is None:
                    if _picked(vb, wb, k, v):
                        result.added += 1
                        write("added", k, None, v)
                elif _picked(va, wa, k, was) or _picked(vb, wb, k, v):
                    result.changed += 1
                    write("changed", k, was, v)
        for k, was in old.items():
            if _picked(va, wa, k, was):
                result.removed += 1
                write("removed", k, was, None)
    return result


def _picked(view: View, where: Any, key: bytes, value: bytes) -> bool:
    if where is None:
        return True
    return bool(where(view.key.decode(key), view.decode_value(view.map.shape.split(value))))


def _writer(fmt: str, out: IO[str], va: View, vb: View) -> Any:
    from ..output.entries import json_dumps

    def decoded(view: View, raw: bytes | None) -> Any:
        return None if raw is None else view.decode_value(view.map.shape.split(raw))

    def fields(old: Any, new: Any, raw_old: bytes, raw_new: bytes) -> dict[str, list[Any]]:
        a, b = dict(leaves(old)), dict(leaves(new))
        out = {p: [a.get(p), b.get(p)] for p in dict.fromkeys([*a, *b]) if a.get(p) != b.get(p)}
        return out or {"bytes": [raw_old.hex(), raw_new.hex()]}  # padding, or what the layout does not show

    def write(op: str, key: bytes, raw_old: bytes | None, raw_new: bytes | None) -> None:
        view = vb if raw_new is not None else va
        k = view.key.decode(key)
        old, new = decoded(va, raw_old), decoded(vb, raw_new)
        if fmt == "jsonl":
            obj: dict[str, Any] = {"op": op, "key": k}
            if op == "changed":
                assert raw_old is not None and raw_new is not None
                obj.update(old=old, new=new, fields=fields(old, new, raw_old, raw_new))
            else:
                obj["value"] = new if op == "added" else old
            out.write(json_dumps(obj) + "\n")
            return
        shown = view.key.format(k)
        if op == "changed":
            assert raw_old is not None and raw_new is not None
            parts = [
                f"{p or 'value'}: {json_dumps(x)} -> {json_dumps(y)}"
                for p, (x, y) in fields(old, new, raw_old, raw_new).items()
            ]
            out.write(f"~ {shown}\t{', '.join(parts)}\n")
        else:
            sign, v = ("+", new) if op == "added" else ("-", old)
            text = "\t".join(map(view.value.format, v)) if view.map.percpu else view.value.format(v)
            out.write(f"{sign} {shown}\t{text}\n")

    return write
