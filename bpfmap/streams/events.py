"""Event streams programs write: BPF ring buffers (Linux 5.8+) and perf event arrays
(bpf_perf_event_output).  Readers give records as bytes, in the order the kernel
committed them, and count what the kernel says was lost.

Ring buffer: the map's consumer page is mapped read-write, the producer page and the
data area read-only, the data area twice in a row (as the kernel maps it) so a record
that wraps around the end reads as one slice.  A record's 8-byte header holds its
length with a BUSY bit (not committed yet: stop there) and a DISCARD bit (skip it).

Perf event array: one PERF_COUNT_SW_BPF_OUTPUT event per online CPU, its fd stored at
the CPU's index of the map, its ring of ``pages`` pages mapped; PERF_RECORD_SAMPLE
records carry the raw bytes (padded to 8 bytes with their 4-byte size),
PERF_RECORD_LOST records say how many samples the kernel dropped."""

from __future__ import annotations

import mmap
import os
import select
import struct
import time
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

from .._sys import perf
from ..core.columns import copy_columns
from ..core.maps import Map, verb_list
from ..errors import Param, UsageError, translate, words
from ..filters import Condition
from ..types import MapType

if TYPE_CHECKING:
    from ..layout.model import Struct

PAGE = mmap.PAGESIZE
_U32 = struct.Struct("<I").unpack_from
_U64 = struct.Struct("<Q").unpack_from
_PERF_HDR = struct.Struct("<IHH").unpack_from
DRAIN_MAX = 1 << 16  # records per drain at most: memory stays bounded on a big, full ring
RINGBUF_BUSY = 1 << 31
RINGBUF_DISCARD = 1 << 30
RINGBUF_HDR = 8
_PACKED_MIN = 64  # records of one size in a row worth copying out as one Packed


class Record:
    """One record: its bytes and the CPU it came from (perf buffers; None for ring buffers)."""

    __slots__ = ("data", "cpu")

    def __init__(self, data: bytes, cpu: int | None = None) -> None:
        self.data, self.cpu = data, cpu


class Packed:
    """Records of one size back to back in ``data`` (``count`` of ``size`` bytes), as a
    ring buffer's drain gives a run of same-sized records with ``packed=True``: decoders
    take them whole, without a Record each.  ``records()`` gives them as Records."""

    __slots__ = ("data", "size", "count")

    def __init__(self, data: bytes, size: int, count: int) -> None:
        self.data, self.size, self.count = data, size, count

    def __len__(self) -> int:
        return self.count

    def records(self) -> list[Record]:
        n, data = self.size, self.data
        return [Record(data[i : i + n]) for i in range(0, n * self.count, n)]


RecordBatch = list[Record] | Packed


class _Reader:
    """What both readers share: an epoll set, a lost-record count, a context manager."""

    lost: int
    _epoll: select.epoll

    def read(self, timeout: float | None = None, limit: int | None = None, packed: bool = False) -> RecordBatch:
        """Records that are ready (``limit`` at most: the rest stay in the ring), waiting
        up to ``timeout`` seconds (None: until some arrive) for the kernel's wake-up when
        there are none.  ``packed``: a run of same-sized records may come as one Packed."""
        got = self.drain(limit, packed)
        if got:
            return got
        self._epoll.poll(-1 if timeout is None else max(timeout, 0.0))
        return self.drain(limit, packed)

    def drain(self, limit: int | None = None, packed: bool = False) -> RecordBatch:
        """The records ready now, ``limit`` at most; consumed from the ring."""
        raise NotImplementedError

    def batches(
        self, count: int | None = None, timeout: float | None = None, packed: bool = False
    ) -> Generator[RecordBatch, int | None, None]:
        """Lists of records as the kernel wakes us, ``count`` records in all at most (the
        rest stay in the ring), for ``timeout`` seconds at most (None: no limit).  A batch
        may be empty when a wait ends with nothing to read.  A consumer that keeps only
        some records (a filter) sends how many it kept: only those count toward ``count``.
        ``packed``: runs of same-sized records may come as Packed batches."""
        deadline = None if timeout is None else time.monotonic() + timeout
        left = count
        while left is None or left > 0:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                return
            batch = self.read(wait, left, packed)
            kept = yield batch
            if left is not None:
                left -= len(batch) if kept is None else kept

    def records(self, count: int | None = None, timeout: float | None = None) -> Iterator[Record]:
        """Records one by one, as ``batches`` gives them."""
        for batch in self.batches(count, timeout):
            yield from batch  # type: ignore[misc]  # never Packed: not asked for

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class RingBufferReader(_Reader):
    """Read a BPF_MAP_TYPE_RINGBUF map as its consumer.  ``lost`` stays 0: a full ring
    makes the producer's reserve fail, which only the program sees."""

    def __init__(self, m: Map) -> None:
        if m.type is not MapType.RINGBUF:
            raise UsageError(f"events {m.ref}: a {m.type_label} map is not a ring buffer")
        self.map, self.size, self.lost = m, m.max_entries, 0
        fd = m.fileno()
        try:
            self._cons = mmap.mmap(fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
            self._prod = mmap.mmap(fd, PAGE + 2 * self.size, mmap.MAP_SHARED, mmap.PROT_READ, offset=PAGE)
        except OSError as err:
            raise translate("map ring buffer", m.ref, err) from err
        self._epoll = select.epoll()
        self._epoll.register(fd, select.EPOLLIN)

    def drain(self, limit: int | None = None, packed: bool = False) -> RecordBatch:
        cons = _U64(self._cons, 0)[0]
        prod = _U64(self._prod, 0)[0]
        mask, data = self.size - 1, self._prod
        limit = DRAIN_MAX if limit is None else min(limit, DRAIN_MAX)
        if packed and prod - cons >= _PACKED_MIN * RINGBUF_HDR:
            run = self._run(cons, prod, limit)
            if run is not None:
                return run
        out: list[Record] = []
        append = out.append
        while cons < prod:
            at = PAGE + (cons & mask)
            word = _U32(data, at)[0]
            if word & RINGBUF_BUSY:
                break  # reserved, not committed yet: later records wait for it
            length = word & ~(RINGBUF_BUSY | RINGBUF_DISCARD)
            cons += (length + RINGBUF_HDR + 7) & ~7
            if not word & RINGBUF_DISCARD:
                append(Record(data[at + RINGBUF_HDR : at + RINGBUF_HDR + length]))
                if len(out) >= limit:
                    break
        # one store hands the space of the whole batch back to producers
        struct.pack_into("<Q", self._cons, 0, cons)
        return out

    def _run(self, cons: int, prod: int, limit: int) -> Packed | None:
        """The committed records from ``cons`` on that have the first one's size (and are
        neither busy nor discarded), copied out a column at a time: one Packed, consumed;
        None when fewer than _PACKED_MIN such records lead (the loop reads them)."""
        at = PAGE + (cons & (self.size - 1))
        word = _U32(self._prod, at)[0]
        if word & (RINGBUF_BUSY | RINGBUF_DISCARD) or not word:
            return None
        length = word
        stride = (length + RINGBUF_HDR + 7) & ~7
        n = min((prod - cons) // stride, limit)
        if n < _PACKED_MIN:
            return None
        # the data area is mapped twice in a row: a run that wraps around reads as one span
        span = memoryview(self._prod)[at : at + n * stride]
        words = span.cast("I")[:: stride // 4]  # every record's header word
        want = struct.pack("<I", word)
        if words.tobytes() != want * n:  # a record of another size, busy or discarded: the run ends there
            lo, hi = 0, n  # the longest prefix of headers that are all ``word``
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if words[:mid].tobytes() == want * mid:
                    lo = mid
                else:
                    hi = mid - 1
            n = lo
            if n < _PACKED_MIN:
                return None
        out = bytearray(n * length)
        copy_columns(out, length, 0, span, stride, RINGBUF_HDR, length, n)
        del words, span  # the ring's mapping is closed later: no view of it may remain
        struct.pack_into("<Q", self._cons, 0, cons + n * stride)
        return Packed(bytes(out), length, n)

    def close(self) -> None:
        self._epoll.close()
        self._prod.close()
        self._cons.close()


class _PerfRing:
    def __init__(self, cpu: int, pages: int) -> None:
        self.cpu = cpu
        self.fd = perf.perf_event_open_bpf_output(cpu)
        try:
            self.mm = mmap.mmap(self.fd, (pages + 1) * PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError:
            os.close(self.fd)
            raise
        off, size = struct.unpack_from("<QQ", self.mm, perf.MMAP_DATA_OFFSET)
        self.offset, self.size = off or PAGE, size or pages * PAGE

    def drain(self, out: list[Record], limit: int | None = None) -> int:
        """Append this CPU's samples to ``out`` until it holds ``limit``; returns how
        many samples the kernel said it lost."""
        mm, base, size, cpu = self.mm, self.offset, self.size, self.cpu
        head = _U64(mm, perf.MMAP_DATA_HEAD)[0]
        tail = _U64(mm, perf.MMAP_DATA_TAIL)[0]
        limit = DRAIN_MAX if limit is None else min(limit, DRAIN_MAX)
        append = out.append
        lost = 0
        while tail < head and len(out) < limit:
            at = tail % size
            if at + 8 <= size:
                rtype, _misc, rsize = _PERF_HDR(mm, base + at)
            else:
                rtype, _misc, rsize = _PERF_HDR(self._read(at, 8))
            if at + rsize <= size:  # the common case: no copy of the record but its data
                if rtype == perf.PERF_RECORD_SAMPLE:
                    n = _U32(mm, base + at + 8)[0]
                    append(Record(mm[base + at + 12 : base + at + 12 + n], cpu))
                elif rtype == perf.PERF_RECORD_LOST:
                    lost += _U64(mm, base + at + 16)[0]
            else:  # the record wraps around the end of the ring
                rec = self._read(at, rsize)
                if rtype == perf.PERF_RECORD_SAMPLE:
                    n = _U32(rec, 8)[0]
                    append(Record(rec[12 : 12 + n], cpu))
                elif rtype == perf.PERF_RECORD_LOST:
                    lost += _U64(rec, 16)[0]
            tail += rsize
        struct.pack_into("<Q", mm, perf.MMAP_DATA_TAIL, tail)
        return lost

    def _read(self, at: int, n: int) -> bytes:
        """``n`` bytes at ring offset ``at``, across the end of the ring if need be."""
        base, size = self.offset, self.size
        if at + n <= size:
            return self.mm[base + at : base + at + n]
        first = size - at
        return self.mm[base + at : base + size] + self.mm[base : base + n - first]

    def close(self) -> None:
        self.mm.close()
        os.close(self.fd)


def online_cpus() -> list[int]:
    """CPUs online now (perf events open only there), from /sys/devices/system/cpu/online."""
    from ..core.values import parse_cpu_list

    with open("/sys/devices/system/cpu/online") as f:
        return parse_cpu_list(f.read())


class PerfBufferReader(_Reader):
    """Read a BPF_MAP_TYPE_PERF_EVENT_ARRAY: a ring of ``pages`` pages (a power of two)
    per online CPU (or only on the CPUs in ``cpus``, as bpftool's ``event_pipe cpu N``),
    stored in the map at the CPU's index (replacing what was there, as every perf buffer
    reader does).  ``lost`` counts samples the kernel dropped."""

    def __init__(self, m: Map, pages: int = 64, cpus: list[int] | None = None) -> None:
        if m.type is not MapType.PERF_EVENT_ARRAY:
            raise UsageError(f"events {m.ref}: a {m.type_label} map is not a perf event array")
        if pages < 1 or pages & (pages - 1):
            raise UsageError(f"perf buffer of {pages} pages: give a power of two")
        self.map, self.lost = m, 0
        self._rings: list[_PerfRing] = []
        online = online_cpus()
        for cpu in cpus or ():
            if cpu not in online:
                raise UsageError(f"events {m.ref}: CPU {cpu} is not online (online: {', '.join(map(str, online))})")
            if cpu >= m.max_entries:
                raise UsageError(f"events {m.ref}: CPU {cpu} is past max_entries {m.max_entries}")
        self._epoll = select.epoll()
        try:
            for cpu in cpus if cpus is not None else online:
                if cpu >= m.max_entries:
                    continue
                try:
                    ring = _PerfRing(cpu, pages)
                except OSError as err:
                    raise translate("open perf buffer for", f"{m.ref} on CPU {cpu}", err) from err
                self._rings.append(ring)
                m.put_fd(cpu, ring.fd)
                self._epoll.register(ring.fd, select.EPOLLIN)
        except BaseException:
            self.close()
            raise
        if not self._rings:
            raise UsageError(f"events {m.ref}: max_entries {m.max_entries} covers no online CPU")

    def drain(self, limit: int | None = None, packed: bool = False) -> list[Record]:
        out: list[Record] = []  # each sample names its CPU: never Packed
        for ring in self._rings:
            self.lost += ring.drain(out, limit)
        return out

    def close(self) -> None:
        for ring in self._rings:
            try:
                self.map.remove_fd(ring.cpu)
            except Exception:  # the map may be gone or read-only: the fd's close detaches anyway
                pass
            ring.close()
        self._rings = []
        self._epoll.close()


def reader(m: Map, pages: int = 64, cpus: list[int] | None = None) -> _Reader:
    """The reader for a ring buffer or perf event array map (``cpus``: for a perf event
    array, read only these CPUs' buffers)."""
    if m.type is MapType.RINGBUF:
        if cpus is not None:
            raise UsageError(
                words(
                    f"events {m.ref}: a ring buffer is one for every CPU; ", Param("cpus"), " is for perf event arrays"
                )
            )
        return RingBufferReader(m)
    if m.type is MapType.PERF_EVENT_ARRAY:
        return PerfBufferReader(m, pages, cpus)
    if m.type is MapType.USER_RINGBUF:
        raise UsageError(
            f"events {m.ref}: a user_ringbuf carries records from user space to programs; "
            f"write them with 'bpfmap send' (events reads ringbuf and perf_event_array maps)"
        )
    works = verb_list(m.kind)
    raise UsageError(
        f"events {m.ref}: {m.type_label} maps hold entries, not events; use {works or 'the programs that own it'} "
        f"(events reads ringbuf and perf_event_array maps)"
    )


# -- decoding records -----------------------------------------------------------------------


class RecordDecoder:
    """Records (bytes) to decoded values, as programs really send them: records shorter
    than the type (a trailing array sent only as far as it is used) decode the fields
    that fit and the used part of a cut array or string; longer ones decode the type
    and keep the excess as hex (``extra``); perf samples' padding to 8 bytes is not
    excess.  ``where`` conditions filter decoded records, comparing what the fields hold
    (``~``: looking in the text the record shows): ``stored`` is the codec before display
    ``formats`` (field path -> format) made ``codec`` of it (None: the same codec).
    ``notes`` holds one line for each kind of mismatch seen (the caller says each once)."""

    def __init__(
        self,
        codec: Any,
        where: list[Condition] | None = None,
        perf: bool = False,
        stored: Any = None,
        formats: dict[str, str] | None = None,
    ) -> None:
        from ..layout import HexCodec
        from ..layout.model import Struct

        self.codec, self.where, self.perf = codec, where or [], perf
        t = getattr(codec, "type", None)
        self._struct = t if isinstance(t, Struct) and not t.union else None
        self._stored = stored if stored is not None and stored is not codec and self.where else None
        st = getattr(stored if stored is not None else codec, "type", None)
        for c in self.where:
            if st is None:
                raise UsageError(words(Param("where"), f" {c.text}: records need a layout (", Param("codec"), ")"))
            c.check_fields(st, formats)
        self._hex = HexCodec
        self.notes: list[str] = []
        self._noted: set[str] = set()
        self.cut = False
        self._type_name = t.c_name() if t is not None else ""

    def decode(self, batch: list[Record]) -> list[tuple[Record, object, str | None]]:
        """(record, value, excess hex or None) for each record that passes ``where``."""
        codec = self.codec
        out: list[tuple[Record, object, str | None]]
        self.cut = False  # whether a record of this batch was shorter than the type (decoded in part)
        if codec is None:
            out = [(r, r.data.hex(" "), None) for r in batch]
        else:
            size = codec.size
            if batch and all(len(r.data) == size for r in batch):
                values = codec.decode_many(b"".join([r.data for r in batch]), len(batch))
                out = [(r, v, None) for r, v in zip(batch, values)]
            else:
                self.cut = any(len(r.data) < size for r in batch)
                out = [self._one(r) for r in batch]
        if self.where:
            conds = self.where
            held = (lambda o: o[1]) if self._stored is None else (lambda o: self._held(o[0].data))
            out = [o for o in out if all(c(v, o[1]) for v in [held(o)] for c in conds)]
        return out

    def _held(self, data: bytes) -> object:
        """A record decoded as what its fields hold, not as --as shows them (what --where
        compares), cut as :meth:`_one` cuts a short one."""
        stored = self._stored
        assert stored is not None
        size = stored.size
        if len(data) >= size or self._struct is None:
            return stored.decode(data[:size].ljust(size, b"\0"))
        return _cut(stored.type, stored.decode(data.ljust(size, b"\0")), len(data))

    def _one(self, r: Record) -> tuple[Record, object, str | None]:
        codec, data = self.codec, r.data
        size = codec.size
        if len(data) >= size:
            extra = data[size:]
            # a perf sample of exactly the type's size comes padded so that its 4-byte size and
            # data fill whole 8-byte words: those zeros are not excess
            padded = (size + 4 + 7) // 8 * 8 - 4
            if extra and not (self.perf and len(data) == padded and not any(extra)):
                self._note(
                    "long",
                    f"records longer than {self._type_name} ({size} bytes) came (e.g. {len(data)} bytes): "
                    f"the bytes past it are shown as hex (extra)",
                )
                return r, codec.decode(data[:size]), extra.hex(" ")
            return r, codec.decode(data[:size]), None
        if self._struct is None:
            self._note("short", f"records shorter than {self._type_name or 'the layout'} ({size} bytes): shown as hex")
            return r, data.hex(" "), None
        self._note(
            "short",
            f"records shorter than {self._type_name} ({size} bytes) came (e.g. {len(data)} bytes): "
            f"the fields that fit are shown, a cut array or string as far as it was sent",
        )
        return r, _cut(self._struct, codec.decode(data.ljust(size, b"\0")), len(data)), None

    def _note(self, kind: str, text: str) -> None:
        if kind not in self._noted:
            self._noted.add(kind)
            self.notes.append(text)


def _cut(t: Struct, value: Any, length: int) -> Any:
    """The fields of decoded struct ``value`` that lie within ``length`` bytes: a field
    past the end is left out; a cut array keeps its whole elements, a cut string the
    characters sent."""
    from ..layout.model import Array, Char

    if not isinstance(value, dict):
        return value
    out = {}
    for f in t.fields:
        if not f.name or f.name not in value:
            continue
        end = f.offset + f.type.size
        if end <= length:
            out[f.name] = value[f.name]
        elif f.offset <= length and f.bit_size is None:  # a trailing array sent up to where it starts: empty
            if isinstance(f.type, Array):
                out[f.name] = value[f.name][: (length - f.offset) // f.type.elem.size]
            elif isinstance(f.type, Char):
                out[f.name] = value[f.name]  # the zeros after the sent part end the string
    return out


__all__ = [
    "Condition",
    "Record",
    "RecordDecoder",
    "RingBufferReader",
    "PerfBufferReader",
    "reader",
    "online_cpus",
]
