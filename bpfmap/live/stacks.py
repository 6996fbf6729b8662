"""Stacks as profilers keep them: a counts map keyed by (pid, comm, kernel stack id, user
stack id, ...) joined with the stack_trace map the ids point into, symbolized, summed by
identical stack, and written as folded lines (flamegraph.pl, inferno, speedscope), an
offcputime-like text listing, or JSON.

Field names default from what real programs use (libbpf-tools' profile and offcputime,
bcc, bpftrace); failing those, a stack id field is found by what it is: an integer the
size of the stack map's keys whose name holds "stack" and "id" (wakeuptime's
``w_k_stack_id``), a user stack when its name says so (``u``, ``user``, ``usr``).  Any
can be named.  A negative stack id (-EFAULT: no user stack,
-EEXIST: a hash collision dropped it) becomes one frame that says so, and the count is kept.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..core.maps import Map
from ..errors import KeyNotFound, Param, UsageError, quote, words
from ..host import symbols
from ..host.hostnames import names_for
from ..layout import fields, format_text
from ..layout.model import Char, Scalar
from ..layout.stack import addresses
from ..types import MapType
from ..view import View, plain

Getter = Callable[[Any, Any], Any]  # (key, value) -> a field of one of them

KERNEL_FIELDS = ("kern_stack_id", "kernel_stack_id", "kstack_id", "kstackid", "kern_stackid", "kernel_stack")
USER_FIELDS = ("user_stack_id", "ustack_id", "ustackid", "user_stackid", "user_stack")
PID_FIELDS = ("pid", "tgid")
LABEL_FIELDS = ("comm", "name", "task")
COUNT_FIELDS = ("count", "counts", "value", "total", "delta", "us", "ns")
_USER_ID = re.compile(r"(^|_)u(ser|sr)?(_|stack)")  # w_u_stack_id, ustack_id, usr_stackid


class Stack:
    """One distinct stack: its labels (comm, ...), user and kernel frames (innermost
    first), and its count summed over every entry that has it."""

    __slots__ = ("labels", "user", "kernel", "count", "pid")

    def __init__(
        self,
        labels: dict[str, Any],
        user: list[dict[str, Any]],
        kernel: list[dict[str, Any]],
        count: int,
        pid: int | None,
    ):
        self.labels, self.user, self.kernel, self.count, self.pid = labels, user, kernel, count, pid

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "labels": self.labels, "pid": self.pid, "user": self.user, "kernel": self.kernel}


def _missing(stack_id: int, what: str) -> list[dict[str, Any]]:
    code = -stack_id
    why = {
        errno.EFAULT: f"[missing {what} stack]",
        errno.EEXIST: f"[{what} stack dropped: hash collision]",
        errno.ENOMEM: f"[{what} stack dropped: stack map full]",
    }.get(code, f"[{what} stack error {errno.errorcode.get(code, code)}]")
    return [{"addr": 0, "symbol": why, "offset": None, "module": None}]


class Joiner:
    """Reads stack ids through a counts map's decoded entries and resolves them in the
    stack map (each id read once, each process's maps once)."""

    def __init__(
        self,
        counts: View,
        stack_map: Map,
        kernel_field: str | None = None,
        user_field: str | None = None,
        pid_field: str | None = None,
        value_field: str | None = None,
        labels: list[str] | None = None,
    ) -> None:
        if stack_map.type is not MapType.STACK_TRACE:
            raise UsageError(
                words(
                    "stacks: ",
                    Param("stack_map"),
                    f" {stack_map.ref} is a {stack_map.type_label}, not a stack_trace map",
                )
            )
        self.counts, self.stack_map = counts, stack_map
        self.names = names_for(getattr(stack_map, "host_names", None))  # a saved stack map: its host's symbols
        key_names = _names(counts.key)
        value_names = _names(counts.value)
        ids = _stack_ids(counts, stack_map.key_size)
        kernel_p, user_p = Param("kernel_field"), Param("user_field")
        kernel = kernel_field or _only(ids["kernel"], KERNEL_FIELDS, key_names + value_names, counts, kernel_p)
        user = user_field or _only(ids["user"], USER_FIELDS, key_names + value_names, counts, user_p)
        self.kernel = _pick(kernel, KERNEL_FIELDS, counts, kernel_p, "stack id")
        self.user = _pick(user, USER_FIELDS, counts, user_p, "stack id")
        if self.kernel is None and self.user is None:
            raise UsageError(
                words(
                    f"stacks {counts.map.ref}: no stack id field in its key or value (looked for "
                    f"{', '.join(KERNEL_FIELDS[:3] + USER_FIELDS[:2])} and {stack_map.key_size}-byte integers "
                    "named like stack_id); name one with ",
                    kernel_p,
                    " or ",
                    user_p,
                )
            )
        self.pid = _pick(pid_field, PID_FIELDS, counts, Param("pid_field"))
        if labels is None:  # comm (or the like), else the key's strings (wakeuptime's waker and target)
            labels = [n for n in LABEL_FIELDS if n in key_names or n in value_names][:1] or _strings(counts.key)
        self.labels = [(n, _getter(n, counts, Param("labels"))) for n in labels]
        if value_field is not None:
            self.value = _getter(value_field, counts, Param("value_field"), "count")
        else:
            counted = next((n for n in COUNT_FIELDS if n in value_names), None) if value_names else None
            if value_names and counted is None:
                raise UsageError(
                    words(
                        f"stacks {counts.map.ref}: the value is a struct ({', '.join(value_names)}); name the count with ",
                        Param("value_field", "FIELD"),
                    )
                )
            self.value = _getter(counted, counts, Param("value_field"), "count") if counted else (lambda k, v: v)
        self._frames: dict[tuple[int, int | None], list[dict[str, Any]]] = {}
        self.gone: set[int] = set()  # processes that exited: their user frames are [unknown]

    def entries(self) -> Iterator[tuple[Any, Any]]:
        for keys, values in self.counts.column_batches():
            yield from zip(map(plain, keys), map(plain, values))

    def stacks(self, entries: Iterable[tuple[Any, Any]] | None = None) -> list[Stack]:
        """Every distinct stack of the counts map with its summed count, largest first."""
        merged: dict[tuple[Any, ...], Stack] = {}
        for k, v in entries if entries is not None else self.entries():
            count = self.value(k, v)
            if not isinstance(count, int):
                raise UsageError(f"stacks {self.counts.map.ref}: the count {quote(repr(count))} is not a number")
            pid = self.pid(k, v) if self.pid is not None else None
            labels = {name: get(k, v) for name, get in self.labels}
            kernel = self._stack(self.kernel(k, v), None, "kernel") if self.kernel is not None else []
            user = self._stack(self.user(k, v), pid, "user") if self.user is not None else []
            ident = (
                tuple(labels.items()),
                tuple(_name(f) for f in user),
                tuple(_name(f) for f in kernel),
            )
            s = merged.get(ident)
            if s is None:
                merged[ident] = Stack(labels, user, kernel, count, pid)
            else:
                s.count += count
        return sorted(merged.values(), key=lambda s: -s.count)

    def _stack(self, stack_id: Any, pid: int | None, what: str) -> list[dict[str, Any]]:
        if not isinstance(stack_id, int):
            raise UsageError(f"stacks: the {what} stack id {quote(repr(stack_id))} is not a number")
        if stack_id < 0:
            return _missing(stack_id, what)
        cache_key = (stack_id, pid if what == "user" else None)
        got = self._frames.get(cache_key)
        if got is None:
            try:
                raw = self.stack_map.lookup(stack_id.to_bytes(4, "little"))
            except KeyNotFound:
                got = [{"addr": 0, "symbol": f"[{what} stack {stack_id} gone from the stack map]", "offset": None,
                        "module": None}]  # fmt: skip
            else:
                assert isinstance(raw, bytes)
                got = self.names.frames(addresses(raw), pid)
                if pid is not None and what == "user" and self.names.gone(pid):
                    self.gone.add(pid)
            self._frames[cache_key] = got
        return got


def _names(codec: Any) -> list[str]:
    return [f.name for f in _fields(codec) if f.name]


def _fields(codec: Any) -> tuple[Any, ...]:
    return tuple(getattr(getattr(codec, "type", None), "fields", ()))


def _strings(codec: Any) -> list[str]:
    return [f.name for f in _fields(codec) if f.name and isinstance(f.type, Char)]


def _stack_ids(counts: View, size: int) -> dict[str, list[str]]:
    """The fields of the counts map that are stack ids by what they are: integers of the
    stack map's key size named like one, by the stack they say they hold."""
    found: dict[str, list[str]] = {"kernel": [], "user": []}
    for f in (*_fields(counts.key), *_fields(counts.value)):
        name = (f.name or "").lower()
        integer = isinstance(f.type, Scalar) and f.type.kind in ("int", "uint") and f.bit_size is None
        if integer and f.type.size == size and "stack" in name and "id" in name:
            found["user" if _USER_ID.search(name) else "kernel"].append(f.name)
    return found


def _only(found: list[str], defaults: tuple[str, ...], names: list[str], counts: View, opt: Param) -> str | None:
    """The one stack id field of a side when no default name is there; None for none."""
    if any(n in names for n in defaults) or not found:
        return None
    if len(found) > 1:
        raise UsageError(
            words(f"stacks {counts.map.ref}: several stack id fields ({', '.join(found)}); name one with ", opt)
        )
    return found[0]


def _pick(
    given: str | None, defaults: tuple[str, ...], counts: View, opt: Param, reads: str | None = None
) -> Getter | None:
    if given is not None:
        return _getter(given, counts, opt, reads)
    key_t, value_t = counts.field_types
    for n in defaults:
        if fields.member(key_t, n) is not None or fields.member(value_t, n) is not None:
            return _getter(n, counts, opt, reads)
    return None


def _getter(path: str, counts: View, opt: Param, reads: str | None = None) -> Getter:
    """A function (key, value) -> the field ``path`` of the side fields.side gives it."""
    side, rest = fields.side(path, *counts.field_types, words(opt, f" {path}"), reads)
    get = fields.getter(rest) if rest is not None else _whole
    return (lambda k, v: get(k)) if side == fields.KEY else (lambda k, v: get(v))


def _whole(x: Any) -> Any:
    return x


def _name(f: dict[str, Any]) -> str:
    """A frame as a flame graph names it: the function (``module+0xOFF`` for a user frame
    without a symbol), with no ``;`` in it."""
    sym: str = f["symbol"]
    if sym == symbols.UNKNOWN and f.get("module") and f.get("offset") is not None:
        sym = f"{f['module']}+{f['offset']:#x}"
    return sym.replace(";", ":").replace(" ", "_")


def folded(stacks: Iterable[Stack]) -> Iterator[str]:
    """``comm;user frames outer-to-inner;kernel frames outer-to-inner COUNT`` lines."""
    for s in stacks:
        parts = [format_text(v).replace(";", ":").replace(" ", "_") for v in s.labels.values()]
        parts += [_name(f) for f in reversed(s.user)]
        parts += [_name(f) for f in reversed(s.kernel)]
        yield f"{';'.join(parts) or '[empty]'} {s.count}\n"


def text(stacks: Iterable[Stack], top: int | None = None) -> Iterator[str]:
    """offcputime's listing: kernel frames innermost first, ``--``, user frames, then
    ``-  labels (pid)`` and the count, a blank line between stacks."""
    for i, s in enumerate(stacks):
        if top is not None and i >= top:
            return
        lines = [f"    {symbols.frame_text(f, kernel=True) if f['addr'] else f['symbol']}" for f in s.kernel]
        if s.kernel and s.user:
            lines.append("    --")
        lines += [f"    {symbols.frame_text(f) if f['addr'] else f['symbol']}" for f in s.user]
        who = " ".join(format_text(v) for v in s.labels.values())
        lines.append(f"    -                {who}{f' ({s.pid})' if s.pid is not None else ''}")
        lines.append(f"        {s.count}")
        yield "\n".join(lines) + "\n\n"
