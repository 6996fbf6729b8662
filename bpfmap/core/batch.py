"""Batch operations (Linux >= 5.6): many elements per syscall, with a per-element fallback,
and the key walk (BPF_MAP_GET_NEXT_KEY) the fallback rests on.

Each function works batch by batch on raw buffers: ``keys`` holds ``count`` keys of
``key_size`` bytes back to back, ``values`` ``count`` values of the map's value
stride (per-CPU maps: ``round_up(value_size, 8) * possible CPUs``).  When the
kernel or the map type has no batch support (EINVAL/ENOTSUPP on the first call) the
per-element path takes over, and the answer is remembered for the map type.
Set BPFMAP_NO_BATCH=1 to force the per-element path.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from typing import Protocol

from .. import _sys
from ..errors import ENOTSUPP, IterationAborted, translate
from ..types import MapType, TypeSpec
from .values import ValueShape


class MapCore(Protocol):
    """What batch operations need of a map (bpfmap.Map has it): its fd, its shape and
    what its type can do."""

    ref: str
    type: MapType | int
    kind: TypeSpec
    key_size: int
    max_entries: int
    shape: ValueShape

    def fileno(self) -> int: ...


FIRST_BATCH = 2048  # a read's first batch at most (output.rows.CHUNK: one chunk of lines)
_NO_BATCH_ERRNOS = (errno.EINVAL, ENOTSUPP, errno.EOPNOTSUPP)
_unsupported: set[tuple[int, int]] = set()  # (map type, cmd) the kernel refused to batch


class _NoBatch(Exception):
    pass


def enabled() -> bool:
    return _sys.batches_enabled()


def batch_count(m: MapCore, size: int | None = None) -> int:
    """Elements per batch: ``size`` when given, else _sys.batch_elements's (about 1 MiB of buffers)."""
    if size is not None:
        return size
    return _sys.batch_elements(m.key_size + m.shape.entry)


def _usable(m: MapCore, cmd: int) -> bool:
    return m.kind.batch and enabled() and (int(m.type), int(cmd)) not in _unsupported


def _refused(m: MapCore, cmd: int) -> None:
    _unsupported.add((int(m.type), int(cmd)))


# -- reading -----------------------------------------------------------------------------


def batches(m: MapCore, delete: bool = False, size: int | None = None) -> Iterator[tuple[bytes, bytes, int]]:
    """(keys, values, count) for every element, batch by batch; ``delete`` drains the map
    (each batch is looked up and deleted in one syscall where the kernel can).  ``size``
    bounds a batch (a hash bucket bigger than that still comes whole)."""
    cmd = _sys.Cmd.MAP_LOOKUP_AND_DELETE_BATCH if delete else _sys.Cmd.MAP_LOOKUP_BATCH
    if _usable(m, cmd):
        try:
            yield from _kernel_batches(m, cmd, size)
            return
        except _NoBatch:
            _refused(m, cmd)
    yield from _element_batches(m, delete, size)


def _kernel_batches(m: MapCore, cmd: int, size: int | None) -> Iterator[tuple[bytes, bytes, int]]:
    ks, vs = m.key_size, m.shape.entry
    full = batch_count(m, size)
    # the first batch small (unless one was asked for): a reader formats it while the next
    # is read, rather than waiting for a whole first batch
    first = full if size is not None else min(full, FIRST_BATCH)
    read = False
    try:
        for keys, values, count in _sys.batch_reads(cmd, m.fileno(), ks, vs, first, full):
            read = True
            yield _sys.contents(keys, count * ks), _sys.contents(values, count * vs), count
    except OSError as err:
        if not read and err.errno in _NO_BATCH_ERRNOS:
            raise _NoBatch() from None
        raise translate("iterate", m.ref, err) from None


def _element_batches(m: MapCore, delete: bool, size: int | None) -> Iterator[tuple[bytes, bytes, int]]:
    """The same shape from GET_NEXT_KEY + LOOKUP (and DELETE): the fallback path.

    Draining, the elements deleted so far are handed out before an error is raised,
    so that they are never dropped with the exception."""
    n = batch_count(m, size)
    kbuf, vbuf, count = bytearray(), bytearray(), 0
    vs = m.shape.entry
    fd = m.fileno()
    try:
        for key in walk_keys(m):
            kb, vb = _sys.buffer(key), _sys.buffer(vs)
            try:
                if delete:
                    _lookup_and_delete(m, fd, kb, vb)
                else:
                    _sys.map_elem(_sys.Cmd.MAP_LOOKUP_ELEM, fd, kb, vb)
            except OSError as err:
                if err.errno == errno.ENOENT:
                    continue  # deleted under us
                raise translate("iterate", m.ref, err) from err
            kbuf += key
            vbuf += _sys.contents(vb, vs)
            count += 1
            if count == n:
                batch, kbuf, vbuf, count = (bytes(kbuf), bytes(vbuf), count), bytearray(), bytearray(), 0
                yield batch
    except GeneratorExit:
        raise
    except BaseException:  # a kernel error, or Ctrl-C pressed twice
        if delete and count:
            yield bytes(kbuf), bytes(vbuf), count
        raise
    if count:
        yield bytes(kbuf), bytes(vbuf), count


def _lookup_and_delete(m: MapCore, fd: int, kb: _sys.CBuffer, vb: _sys.CBuffer) -> None:
    if (int(m.type), -1) not in _unsupported:
        try:
            _sys.map_elem(_sys.Cmd.MAP_LOOKUP_AND_DELETE_ELEM, fd, kb, vb)
            return
        except OSError as err:
            if err.errno not in _NO_BATCH_ERRNOS:
                raise
            _unsupported.add((int(m.type), -1))  # before 5.14 only queues and stacks had it
    _sys.map_elem(_sys.Cmd.MAP_LOOKUP_ELEM, fd, kb, vb)
    _sys.map_elem(_sys.Cmd.MAP_DELETE_ELEM, fd, kb, None)


# -- writing -----------------------------------------------------------------------------


def _batch_error(op: str, m: MapCore, err: int | None, done: int) -> Exception:
    """The usual exception for ``err``, saying (and carrying as ``done``) how many
    elements of the batch went in before it."""
    err = err or 0
    return translate(
        op, m.ref, OSError(err, os.strerror(err)), detail=f" (after {done} element(s) of the batch)", done=done
    )


def update(m: MapCore, keys: bytes, values: bytes, count: int, flags: int = 0) -> int:
    """Write ``count`` elements; returns ``count``, or raises the usual exception (MapFull,
    KeyExists, ...) with ``done``: how many of them went in, in order."""
    if count == 0:
        return 0
    cmd = _sys.Cmd.MAP_UPDATE_BATCH
    # The kernel's batch update takes no BPF_NOEXIST/BPF_EXIST (only BPF_F_LOCK): those
    # modes go element by element.
    if _usable(m, cmd) and not flags & ~_sys.BPF_F_LOCK:
        kb, vb = _sys.buffer(keys), _sys.buffer(values)
        done, err = _sys.map_batch(cmd, m.fileno(), kb, vb, count, elem_flags=flags)
        if not err:
            return done
        if done == count:
            done = 0  # refused before the first element: the kernel left count as we passed it
        if not (done == 0 and err in _NO_BATCH_ERRNOS):
            raise _batch_error("update", m, err, done)
        _refused(m, cmd)
    ks, vs = m.key_size, m.shape.entry
    fd = m.fileno()
    for i in range(count):
        try:
            _sys.map_elem(
                _sys.Cmd.MAP_UPDATE_ELEM,
                fd,
                _sys.buffer(keys[i * ks : (i + 1) * ks]),
                _sys.buffer(values[i * vs : (i + 1) * vs]),
                flags,
            )
        except OSError as err:
            raise _batch_error("update", m, err.errno, i) from err
    return count


def delete(m: MapCore, keys: bytes, count: int) -> int:
    """Delete ``count`` keys; keys already gone are not an error.  Returns how many were deleted."""
    cmd = _sys.Cmd.MAP_DELETE_BATCH
    ks = m.key_size
    if _usable(m, cmd):
        kb = _sys.buffer(keys)
        done, err = _sys.map_batch(cmd, m.fileno(), kb, None, count)
        if not err:
            return done
        if done == count:
            done = 0  # refused before the first element
        if not (done == 0 and err in _NO_BATCH_ERRNOS) and err != errno.ENOENT:
            raise _batch_error("delete", m, err, done)
        if err != errno.ENOENT:
            _refused(m, cmd)
        # ENOENT: one key was gone; the rest, from there, one by one
        start = done if err == errno.ENOENT else 0
    else:
        start = 0
    deleted = start
    fd = m.fileno()
    for i in range(start, count):
        try:
            _sys.map_elem(_sys.Cmd.MAP_DELETE_ELEM, fd, _sys.buffer(keys[i * ks : (i + 1) * ks]), None)
            deleted += 1
        except OSError as err:
            if err.errno != errno.ENOENT:
                raise _batch_error("delete", m, err.errno, deleted) from err
    return deleted


# -- the key walk ----------------------------------------------------------------------------


def walk_keys(m: MapCore) -> Iterator[bytes]:
    """Every key, by BPF_MAP_GET_NEXT_KEY.

    When the current key is deleted under us, hash maps and tries restart from their
    first key; keys already returned are then skipped, so each key comes once.  Raises
    IterationAborted if the map changes so fast that the walk cannot finish (after 4x
    max_entries steps)."""
    ks = m.key_size
    seen: set[bytes] | None = None if m.kind.indexed else set()  # arrays walk by index, never restart
    budget = 4 * max(m.max_entries, 1) + 16
    cur = None
    nxt = _sys.buffer(ks)
    fd = m.fileno()
    while True:
        try:
            _sys.map_elem(_sys.Cmd.MAP_GET_NEXT_KEY, fd, cur, nxt)
        except OSError as err:
            if err.errno == errno.ENOENT:
                return
            raise translate("iterate", m.ref, err) from err
        budget -= 1
        if budget < 0:
            raise IterationAborted(
                f"iterate {m.ref}: the map changed too fast to finish the walk; retry, or dump while writers are paused",
                errno.EAGAIN,
            )
        key = nxt.raw[:ks]
        cur, nxt = nxt, _sys.buffer(ks)
        if seen is not None:
            if key in seen:
                continue
            seen.add(key)
        yield key
