"""The read-only map backed by a saved file, and the file format itself (docs/disk-format.md).

A saved file holds one or more maps: each map's shape, its BTF, every entry's bytes as
the kernel's batches gave them (per-CPU values with the saving host's slots), where it
came from and the names the host would have shown.  :class:`SavedMap` reads one of them
with the byte-level reading interface of :class:`bpfmap.Map` (``batches``, ``lookup``,
``next_key``, ``items``, ``btf``, ``info``...), so every reader takes it where it takes
a live map; ``Map.open`` hands one out for a reference that names a saved file.  Reading
needs no root, no bpffs and no BPF in the kernel.

:class:`Writer` writes the format; the jobs that fill it (save, restore, diff) live in
``bpfmap.entries``.  A file is checked whole when opened (frame by frame: sizes against
the file, checksums, counts, the BTF parsed), in memory bounded by a frame, so a
truncated, corrupted or hostile file raises :class:`SavedFileError` (exit 2) naming what
is wrong and where before anything is read from it.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from typing import IO, Any

from ..errors import BpfmapError, KeyNotFound, NotFound, UsageError, quote
from ..types import READS, MapFlag, MapType, TypeSpec
from ..types import spec as type_spec
from .info import MapInfo
from .savedref import MAGIC, split_ref
from .values import ValueReads, ValueShape

MAJOR, MINOR = 1, 0
HEADER = struct.Struct("<11sxHH")  # magic, 0, major, minor: 16 bytes
FRAME = struct.Struct("<4sB3xIIQQI4x")  # tag, codec, map, count, raw length, stored length, crc32: 40 bytes
_CRC_AT = 32  # the checksum covers the frame's first 32 bytes and its stored payload

RAW, ZLIB = 0, 1
CODECS = {RAW: "raw", ZLIB: "zlib"}

HOST, MAP, BTF, DATA, END, NAMES, FIN = b"HOST", b"MAP ", b"BTF ", b"DATA", b"END ", b"NAME", b"FIN "
# the most a frame of each kind may hold once decompressed: what a hostile file can make a reader allocate
_LIMITS = {HOST: 1 << 20, MAP: 1 << 20, BTF: 64 << 20, DATA: 64 << 20, END: 1 << 16, NAMES: 64 << 20, FIN: 1 << 16}
_MAX_KEY, _MAX_VALUE, _MAX_CPUS = 1 << 16, 1 << 26, 1 << 16
INDEX_MAX = 1 << 21  # entries up to which lookups go through an index of the keys (~100 bytes each)


class SavedFileError(UsageError):
    """A saved file that cannot be read: not one, truncated, corrupted, of a newer format
    version, or claiming more than it holds.  Exit code 2 (input error)."""


def several(ref: str) -> list[str] | None:
    """``FILE:NAME`` of each map of a saved file that holds several (its inner maps are
    read through their outer map), in the file's order; None when ``ref`` names one map
    (or no saved file)."""
    found = split_ref(ref)
    if found is None or found[1] is not None:
        return None
    f = SavedFile(found[0])
    try:
        top = [e for e in f.entries if "inner_of" not in e.meta]
        return [f"{found[0]}:{f.label(e)}" for e in top] if len(top) > 1 else None
    finally:
        f.close()


# -- reading ------------------------------------------------------------------------------


class _Frame:
    __slots__ = ("tag", "codec", "map", "count", "raw_len", "stored_len", "at")

    def __init__(self, tag: bytes, codec: int, map_: int, count: int, raw_len: int, stored_len: int, at: int) -> None:
        self.tag, self.codec, self.map, self.count = tag, codec, map_, count
        self.raw_len, self.stored_len, self.at = raw_len, stored_len, at  # at: the payload's offset


class SavedEntry:
    """One map of a saved file: its description (``meta``, the JSON of its MAP frame), its
    BTF blob, its data frames and how many entries they hold."""

    def __init__(self, index: int, meta: dict[str, Any]) -> None:
        self.index, self.meta = index, meta
        self.btf: bytes | None = None
        self.frames: list[_Frame] = []
        self.entries = 0
        self.ended = False

    @property
    def name(self) -> str:
        return str(self.meta.get("name", ""))

    @property
    def pins(self) -> list[str]:
        return [str(p) for p in self.meta.get("pinned", [])]


class SavedFile:
    """A saved file, checked whole on open (see the module's docstring): its host facts,
    its maps (``entries``) and the names saved with them.  Raises SavedFileError."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._f: IO[bytes] = open(path, "rb")  # noqa: SIM115 (kept open while its maps are read)
        except OSError as err:
            raise SavedFileError(f"read {quote(path)}: {err.strerror}") from err
        try:
            self.size = os.fstat(self._f.fileno()).st_size
            self.host: dict[str, Any] = {}
            self.names: dict[str, Any] | None = None  # the NAME frame's table (None: saved without one)
            self.entries: list[SavedEntry] = []
            self._scan()
        except BaseException:
            self._f.close()
            raise

    def close(self) -> None:
        self._f.close()

    def _bad(self, what: str, at: int | None = None) -> SavedFileError:
        where = f" at byte {at:,}" if at is not None else ""
        return SavedFileError(f"read {quote(self.path)}: {what}{where}; the file is damaged or not a whole saved file")

    def _scan(self) -> None:
        head = self._f.read(HEADER.size)
        if len(head) < HEADER.size or not head.startswith(MAGIC):
            raise SavedFileError(f"read {quote(self.path)}: not a saved map file (no bpfmap magic number)")
        _magic, major, minor = HEADER.unpack(head)
        if head[len(MAGIC)] != 0:
            raise self._bad("the header's reserved byte is not zero", len(MAGIC))
        if major > MAJOR:
            raise SavedFileError(
                f"read {quote(self.path)}: saved in format version {major}.{minor}, newer than the "
                f"{MAJOR}.x this bpfmap reads; read it with a newer bpfmap"
            )
        self.version = (major, minor)
        pos = HEADER.size
        current: SavedEntry | None = None
        while True:
            frame, payload = self._frame(pos)
            pos = frame.at + frame.stored_len
            if frame.tag == FIN:
                fin = self._json(frame, payload)
                if current is not None and not current.ended:
                    raise self._bad(f"map {current.index} has no END frame before the file's end", frame.at)
                if fin.get("maps") != len(self.entries):
                    raise self._bad(f"the file says it holds {fin.get('maps')} maps, it has {len(self.entries)}")
                return
            if frame.tag == HOST:
                self.host = self._json(frame, payload)
            elif frame.tag == NAMES:
                self.names = self._json(frame, payload)
            elif frame.tag == MAP:
                if current is not None and not current.ended:
                    raise self._bad(f"map {current.index} has no END frame before the next map", frame.at)
                if frame.map != len(self.entries):
                    raise self._bad(f"map frame numbered {frame.map}, expected {len(self.entries)}", frame.at)
                current = SavedEntry(frame.map, self._json(frame, payload))
                _check_meta(current.meta, self._bad, frame.at)
                self.entries.append(current)
            elif frame.tag in (BTF, DATA, END):
                if current is None or current.ended or frame.map != current.index:
                    raise self._bad(f"a {frame.tag.decode().strip()} frame outside its map's frames", frame.at)
                self._map_frame(current, frame, payload)
            # other tags: written by a newer minor version, skipped

    def _map_frame(self, entry: SavedEntry, frame: _Frame, payload: bytes | None) -> None:
        if frame.tag == BTF:
            entry.btf = self._inflate(frame, payload)
        elif frame.tag == DATA:
            per = int(entry.meta["key_size"]) + _entry_size(entry.meta)
            if frame.count * per != frame.raw_len:
                raise self._bad(
                    f"map {entry.index}: a data frame claims {frame.count:,} entries of {per} bytes in "
                    f"{frame.raw_len:,} bytes",
                    frame.at,
                )
            entry.frames.append(frame)
            entry.entries += frame.count
        else:
            end = self._json(frame, payload)
            if end.get("entries") != entry.entries or end.get("frames") != len(entry.frames):
                raise self._bad(
                    f"map {entry.index}: its END frame counts {end.get('entries')} entries in "
                    f"{end.get('frames')} frames, the file holds {entry.entries} in {len(entry.frames)}",
                    frame.at,
                )
            entry.ended = True

    def _frame(self, pos: int) -> tuple[_Frame, bytes | None]:
        """The frame at ``pos``, checked; its payload read (and checksummed) unless it is
        a data frame (those are checksummed here too, a bounded piece at a time)."""
        self._f.seek(pos)
        head = self._f.read(FRAME.size)
        if not head:
            raise self._bad("the file ends without its closing frame (the save was interrupted?)", pos)
        if len(head) < FRAME.size:
            raise self._bad("a frame header is cut short", pos)
        tag, codec, map_, count, raw_len, stored_len, crc = FRAME.unpack(head)
        if head[_CRC_AT + 4 :] != bytes(FRAME.size - _CRC_AT - 4):  # after the checksum: reserved, zero
            raise self._bad("a frame header's reserved bytes are not zero", pos)
        label = tag.decode("ascii", "replace").strip() or "?"
        if codec not in CODECS:
            raise self._bad(f"a {label} frame has an unknown compression {codec}", pos)
        limit = _LIMITS.get(tag, 64 << 20)
        if raw_len > limit or stored_len > limit + (limit >> 4) + 1024:
            raise self._bad(f"a {label} frame claims {raw_len:,} bytes, more than such a frame may hold", pos)
        at = pos + FRAME.size
        if at + stored_len > self.size:
            raise self._bad(
                f"a {label} frame claims {stored_len:,} bytes, the file holds {max(self.size - at, 0):,} more (truncated?)",
                pos,
            )
        if codec == RAW and stored_len != raw_len:
            raise self._bad(f"an uncompressed {label} frame's lengths differ ({stored_len} and {raw_len})", pos)
        frame = _Frame(tag, codec, map_, count, raw_len, stored_len, at)
        check = zlib.crc32(head[:_CRC_AT])
        payload = None
        if tag == DATA:
            left = stored_len
            while left:
                piece = self._f.read(min(left, 1 << 20))
                check = zlib.crc32(piece, check)
                left -= len(piece)
        else:
            payload = self._f.read(stored_len)
            check = zlib.crc32(payload, check)
        if check != crc:
            raise self._bad(f"a {label} frame's checksum does not match its bytes", pos)
        return frame, payload

    def _inflate(self, frame: _Frame, payload: bytes | None) -> bytes:
        """A frame's bytes, decompressed into at most the length it declares (a
        decompression bomb stops there)."""
        if payload is None:
            self._f.seek(frame.at)
            payload = self._f.read(frame.stored_len)
            if len(payload) != frame.stored_len:
                raise self._bad("the file changed while it was read", frame.at)
        if frame.codec == RAW:
            return payload
        d = zlib.decompressobj()
        try:
            out = d.decompress(payload, frame.raw_len)
        except zlib.error as err:
            raise self._bad(f"a frame does not decompress ({err})", frame.at - FRAME.size) from None
        if len(out) != frame.raw_len or not d.eof or d.unconsumed_tail or d.unused_data:
            raise self._bad(
                f"a frame decompresses to other than the {frame.raw_len:,} bytes it declares", frame.at - FRAME.size
            )
        return out

    def _json(self, frame: _Frame, payload: bytes | None) -> dict[str, Any]:
        import json  # only when a saved file is read: not in every command's start-up

        try:
            value = json.loads(self._inflate(frame, payload))
        except (ValueError, RecursionError):
            value = None
        if not isinstance(value, dict):
            raise self._bad(f"a {frame.tag.decode().strip()} frame does not hold a JSON object", frame.at - FRAME.size)
        return value

    def data(self, entry: SavedEntry) -> Iterator[tuple[bytes, bytes, int]]:
        """A map's (keys, values, count) batches as they were saved."""
        ks = int(entry.meta["key_size"])
        for frame in entry.frames:
            raw = self._inflate(frame, None)
            yield raw[: frame.count * ks], raw[frame.count * ks :], frame.count

    def map(self, name: str | None, ref: str) -> SavedMap:
        """The map ``name`` names (its name, a pin path it came from, or its number in the
        file; None: the file's only map); ``ref`` is how the user named it."""
        found = self.find(name)
        return SavedMap(self, found, ref)

    def find(self, name: str | None) -> SavedEntry:
        top = [e for e in self.entries if "inner_of" not in e.meta]
        if name is None:
            if len(top) == 1:
                return top[0]
            shown = ", ".join(self.label(e) for e in top[:8]) + (", ..." if len(top) > 8 else "")
            raise UsageError(
                f"{quote(self.path)} holds {len(top)} maps ({shown}); name one as FILE:NAME"
                if top
                else f"{quote(self.path)} holds no map"
            )
        hits = [e for e in self.entries if name in (e.name, *e.pins)]
        if not hits:  # a map without a name: the last part of a pin it came from
            hits = [e for e in self.entries if name in (os.path.basename(p) for p in e.pins)]
        if not hits and name.isdigit() and int(name) < len(self.entries):
            hits = [self.entries[int(name)]]
        if len(hits) == 1:
            return hits[0]
        if not hits:
            known = ", ".join(self.label(e) for e in top[:8])
            raise NotFound(f"{quote(self.path)} holds no map {quote(name)}; it holds {known or 'none'}")
        raise UsageError(
            f"{quote(self.path)} holds {len(hits)} maps named {quote(name)}; name one by the pin it came "
            f"from or its number ({', '.join(str(e.index) for e in hits)})"
        )

    def label(self, e: SavedEntry) -> str:
        """How a map of this file is best named after ``FILE:``."""
        same = sum(1 for o in self.entries if o.name == e.name)
        return e.name if e.name and same == 1 else (e.pins[0] if e.pins else str(e.index))


def _entry_size(meta: dict[str, Any]) -> int:
    """Bytes of one value in a data frame: the saving host's per-CPU slots for per-CPU maps."""
    return int(meta["value_stride"]) * int(meta["ncpus"])


def _check_meta(meta: dict[str, Any], bad: Any, at: int) -> None:
    """The numbers of a map's description within what a map can have."""
    bounds = {
        "type": 1 << 16,
        "key_size": _MAX_KEY,
        "value_size": _MAX_VALUE,
        "value_stride": _MAX_VALUE + 8,
        "ncpus": _MAX_CPUS,
        "max_entries": 1 << 32,
        "flags": 1 << 32,
        "map_extra": 1 << 64,
    }
    for field, top in bounds.items():
        v = meta.get(field)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < top:
            raise bad(f"a map's {field} is {v!r}, not a number a map can have", at)
    if meta["ncpus"] < 1 or meta["value_stride"] < meta["value_size"]:
        raise bad("a map's per-CPU slots are smaller than its values", at)
    if not isinstance(meta.get("name", ""), str) or not isinstance(meta.get("pinned", []), list):
        raise bad("a map's name or pins are not text", at)


class SavedMap(ValueReads):
    """One map of a saved file, read-only, with the reading interface of bpfmap.Map:
    ``batches``, ``lookup``, ``get``, ``next_key``, ``keys``, ``items``, ``btf``, ``info``
    and the shape attributes.  Writes raise UsageError; ``saved`` holds where the map
    came from (host, kernel, time, pins).  A context manager that closes its file."""

    readonly = True

    def __init__(self, file: SavedFile, entry: SavedEntry, ref: str) -> None:
        meta = entry.meta
        self.file, self.entry, self.ref = file, entry, ref
        self.saved: dict[str, Any] = {**file.host, "pinned": entry.pins}
        self.host_names = file.names  # what the saving host called the numbers the file holds
        try:
            self.type: MapType | int = MapType(meta["type"])
        except ValueError:
            self.type = meta["type"]
        self.id = int(meta.get("id", 0) or 0)
        self.name = entry.name
        self.key_size, self.value_size = int(meta["key_size"]), int(meta["value_size"])
        self.max_entries, self.flags = int(meta["max_entries"]), MapFlag(meta["flags"])
        self.map_extra, self.frozen = int(meta["map_extra"]), bool(meta.get("frozen"))
        self.kind: TypeSpec = type_spec(self.type if isinstance(self.type, MapType) else MapType.UNSPEC)
        self.shape = ValueShape(self.value_size, self.kind.percpu, int(meta["ncpus"]))
        if self.shape.stride != int(meta["value_stride"]):
            raise file._bad(f"map {entry.index}: its per-CPU stride does not fit its value size")
        btf = meta.get("btf") or {}
        self.btf_id = int(btf.get("id", 0) or 0) if entry.btf is not None else 0
        self.btf_key_type_id = int(btf.get("key_type_id", 0) or 0)
        self.btf_value_type_id = int(btf.get("value_type_id", 0) or 0)
        self.btf_note: str | None = None
        self.walk_note: str | None = None
        self._closed = False
        self._keys: dict[bytes, tuple[int, int]] | None = None  # made by the first lookup
        self._last: tuple[int, tuple[bytes, bytes, int]] | None = None
        self._btf: Any = self._read_btf()

    def _read_btf(self) -> Any:
        """The map's saved BTF, parsed and turned into its layout now, so that a blob that
        does not parse is the file's error (exit 2), not a note and a dump in hex."""
        if self.entry.btf is None:
            return None
        from ..btf import MapBTF
        from ..btf.wire import BTF as ParsedBTF

        try:
            mb = MapBTF(ParsedBTF(self.entry.btf), self.btf_id or 1, self.btf_key_type_id, self.btf_value_type_id)
            mb.layout()
        except (ValueError, IndexError, KeyError, struct.error, RecursionError, UsageError) as err:
            raise self.file._bad(f"map {self.entry.index}: its BTF does not parse ({err})") from None
        self.btf_id = self.btf_id or 1
        return mb

    @classmethod
    def open(cls, path: str, name: str | None = None) -> SavedMap:
        """Map ``name`` (None: the only one) of the saved file at ``path``."""
        return SavedFile(path).map(name, path if name is None else f"{path}:{name}")

    def __repr__(self) -> str:
        return (
            f"<SavedMap {self.ref} type={self.type_label} key={self.key_size} value={self.value_size} "
            f"max_entries={self.max_entries} entries={self.entry.entries}>"
        )

    # -- the shape, as Map has it (percpu, ncpus, stride, type_label: ValueReads) ----------
    # (items, values, get, in and the key's size check are ValueReads' too)

    @property
    def entries(self) -> int:
        """How many entries the file holds for this map."""
        return self.entry.entries

    def info(self, pins: bool = False) -> MapInfo:
        """The map's info as it was saved (its pins: the paths it was saved from)."""
        return MapInfo(
            self.id,
            self.type,
            self.name,
            self.key_size,
            self.value_size,
            self.max_entries,
            self.flags,
            frozen=self.frozen,
            btf_id=self.btf_id,
            btf_key_type_id=self.btf_key_type_id,
            btf_value_type_id=self.btf_value_type_id,
            map_extra=self.map_extra,
            pinned=self.entry.pins,
        )

    def btf(self) -> Any:
        """The map's BTF (a bpfmap.btf.MapBTF) as saved, or None."""
        return self._btf

    # -- reading --------------------------------------------------------------------------

    def require(self, op: str, verb: str | None = None) -> None:
        """Refuse writes (a saved map is read-only) and what the type has not, as Map does."""
        if self._closed:
            raise ValueError(f"{self.ref}: already closed")
        if op not in READS:
            raise UsageError(f"{verb or op} {self.ref}: a saved map is read-only; restore it to a map to change it")
        if op not in self.kind.ops and self.type is not MapType.UNSPEC:
            raise UsageError(f"{verb or op} {self.ref}: {self.type_label} maps have no {op}")

    def batches(self, delete: bool = False, size: int | None = None) -> Iterator[tuple[bytes, bytes, int]]:
        """The saved (keys, values, count) batches, as the kernel gave them when it was
        saved (``size``: at most that many entries each)."""
        self.require("delete" if delete else "getnext", "drain" if delete else "iterate")
        raw = self.file.data(self.entry)
        return raw if size is None else _rebatch(raw, size, self.key_size, self.shape.entry)

    def keys(self) -> Iterator[bytes]:
        return (k for k, _v in self.items())

    def _find(self, key: bytes) -> tuple[int, bytes, bytes, int] | None:
        """(position in its batch, keys, values, count) of ``key``: through an index of
        the keys made on the first call (a map of up to INDEX_MAX entries), else by a scan."""
        self.check_key(key)
        ks = self.key_size
        index = self._index()
        if index is not None:
            where = index.get(key)
            if where is None:
                return None
            keys, values, count = self._frame(where[0])
            return where[1], keys, values, count
        for keys, values, count in self.file.data(self.entry):
            at = keys.find(key)
            while at >= 0:
                if at % ks == 0 if ks else True:
                    return at // ks if ks else 0, keys, values, count
                at = keys.find(key, at + 1)
        return None

    def _index(self) -> dict[bytes, tuple[int, int]] | None:
        """key -> (its data frame, its place there), the first where a key is saved twice."""
        if self._keys is None and self.entry.entries <= INDEX_MAX:
            ks = self.key_size
            index: dict[bytes, tuple[int, int]] = {}
            for n, (keys, _values, count) in enumerate(self.file.data(self.entry)):
                for i in range(count):
                    index.setdefault(keys[i * ks : (i + 1) * ks], (n, i))
            self._keys = index
        return self._keys

    def _frame(self, n: int) -> tuple[bytes, bytes, int]:
        """Data frame ``n``'s (keys, values, count), the last one read kept."""
        if self._last is None or self._last[0] != n:
            frame = self.entry.frames[n]
            raw = self.file._inflate(frame, None)
            cut = frame.count * self.key_size
            self._last = (n, (raw[:cut], raw[cut:], frame.count))
        return self._last[1]

    def lookup(self, key: bytes, lock: bool = False) -> bytes | list[bytes]:
        """The value saved at ``key`` (per-CPU: one per saved CPU); raises KeyNotFound."""
        self.require("lookup")
        found = self._find(key)
        if found is None:
            raise KeyNotFound(f"lookup {self.ref}: key not found")
        i, _keys, values, _count = found
        vs = self.shape.entry
        return self.shape.split(values[i * vs : (i + 1) * vs])

    def next_key(self, key: bytes | None = None) -> bytes:
        """The key saved after ``key``; the first one when ``key`` is None or not in the map
        (as the kernel answers for a hash); NotFound after the last."""
        self.require("getnext")
        if key is not None:
            self.check_key(key)
        index = self._index()
        if index is not None and key is not None and key in index:
            n, i = index[key]
            ks = self.key_size
            keys, _values, count = self._frame(n)
            if i + 1 < count:
                return keys[(i + 1) * ks : (i + 2) * ks]
            if n + 1 < len(self.entry.frames):  # a data frame holds at least one entry
                return self._frame(n + 1)[0][:ks]
            raise NotFound(f"getnext {self.ref}: no key after it")
        take_next = key is None or self._find(key) is None
        for k in self.keys():
            if take_next:
                return k
            take_next = k == key
        raise NotFound(f"getnext {self.ref}: {'the map is empty' if key is None else 'no key after it'}")

    def fd_values(self) -> tuple[list[tuple[bytes, bytes | None]], bool]:
        """The saved slots of a map whose values are kernel objects, as Map.fd_values."""
        self.require("dump")
        unreadable = bool(self.entry.meta.get("values_unreadable"))
        pairs = [(k, None if unreadable else v) for k, v in self.items()]
        return pairs, unreadable  # type: ignore[return-value]  # fd maps are never per-CPU

    # -- writing: refused ------------------------------------------------------------------

    def update(self, key: bytes, value: Any, mode: Any = "any", lock: bool = False) -> None:
        self.require("update")

    def delete(self, key: bytes) -> None:
        self.require("delete")

    def clear(self) -> int:
        self.require("clear")
        return 0

    def fileno(self) -> int:
        raise UsageError(f"{self.ref} is a saved map, not a live one: it has no file descriptor")

    # -- lifetime ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.file.close()

    def __enter__(self) -> SavedMap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rebatch(
    raw: Iterator[tuple[bytes, bytes, int]], size: int, ks: int, vs: int
) -> Iterator[tuple[bytes, bytes, int]]:
    for keys, values, count in raw:
        for at in range(0, count, size):
            n = min(size, count - at)
            yield keys[at * ks : (at + n) * ks], values[at * vs : (at + n) * vs], n


# -- writing ------------------------------------------------------------------------------


class Writer:
    """Writes a saved file, a frame at a time: ``host``, then per map ``begin`` (its
    description and BTF), ``batch`` as often as there are batches, ``end``; ``close``
    writes the closing frame and moves the file into place (a file written half way never
    takes the name); ``abort`` removes it.  A context manager (aborts on an exception).

    ``level``: zlib's compression level (0 stores every frame uncompressed); a frame is
    stored uncompressed whenever compression would not make it smaller."""

    def __init__(self, path: str, level: int = 1) -> None:
        self.path, self.level = path, level
        _check_target(path)
        directory = os.path.dirname(os.path.abspath(path))
        self._tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.part")
        try:
            self._f: IO[bytes] = open(self._tmp, "xb")  # noqa: SIM115 (closed by close/abort)
        except OSError as err:
            raise UsageError(f"save to {quote(path)}: {err.strerror}") from err
        self._f.write(HEADER.pack(MAGIC, MAJOR, MINOR))
        self.maps = 0
        self._map = -1
        self._entries = self._frames = 0
        self.bytes_raw = 0

    def _write(self, tag: bytes, raw: bytes, map_: int = 0, count: int = 0) -> None:
        codec, stored = RAW, raw
        if self.level and len(raw) > 64:
            packed = zlib.compress(raw, self.level)
            if len(packed) < len(raw):
                codec, stored = ZLIB, packed
        head = FRAME.pack(tag, codec, map_, count, len(raw), len(stored), 0)
        crc = zlib.crc32(stored, zlib.crc32(head[:_CRC_AT]))
        try:
            self._f.write(head[:_CRC_AT] + struct.pack("<I4x", crc))
            self._f.write(stored)
        except OSError as err:
            raise self._failed(err) from err

    def _failed(self, err: OSError) -> BpfmapError:
        """The error of a write that failed (a full disk): the file named, nothing left."""
        self.abort()
        return BpfmapError(f"save to {quote(self.path)}: cannot write it: {err.strerror or err}; nothing was written")

    def _json(self, tag: bytes, value: dict[str, Any], map_: int = 0) -> None:
        import json

        self._write(tag, json.dumps(value, separators=(",", ":"), sort_keys=True).encode(), map_)

    def host(self, facts: dict[str, Any]) -> None:
        self._json(HOST, facts)

    def names(self, table: dict[str, Any]) -> None:
        """The names the saving host gives to the numbers the file holds (display formats)."""
        self._json(NAMES, table)

    def begin(self, meta: dict[str, Any], btf: bytes | None = None) -> int:
        """Start map number ``maps``: its description (docs/disk-format.md) and BTF."""
        self._map = self.maps
        self.maps += 1
        self._entries = self._frames = 0
        self._json(MAP, meta, self._map)
        if btf is not None:
            self._write(BTF, btf, self._map)
        return self._map

    def batch(self, keys: bytes, values: bytes, count: int) -> None:
        if count:
            self._write(DATA, keys + values, self._map, count)
            self._entries += count
            self._frames += 1
            self.bytes_raw += len(keys) + len(values)

    def end(self) -> int:
        """Close the current map; returns how many entries it holds."""
        self._json(END, {"entries": self._entries, "frames": self._frames}, self._map)
        return self._entries

    def close(self) -> None:
        self._json(FIN, {"maps": self.maps})
        try:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            _check_target(self.path)  # still not a device or a link (it is replaced only if a file)
            os.replace(self._tmp, self.path)
        except OSError as err:
            raise self._failed(err) from err
        except BpfmapError:
            self.abort()
            raise

    def abort(self) -> None:
        try:
            self._f.close()
        except OSError:
            pass  # a buffer that could not be written: the file goes anyway
        try:
            os.unlink(self._tmp)
        except OSError:
            pass

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _check_target(path: str) -> None:
    """UsageError unless ``path`` is a new name or a regular file (what a saved file
    replaces when it is whole): never a device, a pipe, a directory or a symbolic link,
    and not ``-`` (standard output: the file is written whole, then moved into place)."""
    import stat

    if path == "-":
        raise UsageError(
            "save to '-': a saved file is written whole and then moved into place, so it cannot go "
            "to standard output; give a file's path"
        )
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as err:
        raise UsageError(f"save to {quote(path)}: {err.strerror}") from err
    if not stat.S_ISREG(st.st_mode):
        what = (
            "a symbolic link"
            if stat.S_ISLNK(st.st_mode)
            else "a directory"
            if stat.S_ISDIR(st.st_mode)
            else "a device, pipe or socket"
        )
        raise UsageError(
            f"save to {quote(path)}: it is {what}, not a file; a saved file replaces only a regular file: "
            f"give another path"
        )
