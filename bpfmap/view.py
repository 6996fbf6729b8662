"""A Map seen through a Layout: text and Python values in, decoded entries out.

Also what the CLI does to decoded entries without touching the kernel: per-CPU
aggregation, sorting and top-N selection."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeGuard

from .core.maps import Map
from .errors import BpfmapError, KeyNotFound, Param, UsageError, quote, said, words
from .layout import Codec, Layout, TypeCodec, fields
from .layout.fields import locate as locate_field
from .layout.pick import pick
from .types import Access, MapFlag, MapType, Value

if TYPE_CHECKING:
    from .core.program import Program
    from .host.hostnames import Names
    from .layout.model import Type

AGGREGATES = ("all", "sum", "max", "min", "avg")


def _object_keys(display: str, size: int) -> Codec:
    """Keys that name live kernel objects (layout.pick asks): built by core/objrefs,
    imported only for the maps that have them."""
    from .core.objrefs import key_codec

    codec: Codec = key_codec(display, size)
    return codec


class View:
    """A map seen through a layout (hex without one): a dict-like object over typed keys
    and values, and the decoding the CLI's verbs use.

    As a mapping: ``view[key]``, ``view[key] = value``, ``del view[key]``, ``key in view``,
    ``len(view)``, ``get``, ``keys()``, ``values()``, ``items()``, ``clear()``; per-CPU
    maps answer one value per possible CPU, and ``sum(key)``/``max``/``min``/``avg``
    combine them.  Struct keys and values come out as records (hashable named tuples,
    nested ones too; ``_asdict()``, ``_replace()``); keys and values go in as records,
    tuples or lists (fields in order), dicts, ctypes instances, bytes or text as the CLI
    takes it.  A missing key raises KeyNotFound (a KeyError).  Not thread-safe: give each
    thread its own View (the kernel map itself may be shared)."""

    def __init__(self, m: Map, layout: Layout | None = None, btf: bool = True, owns: bool = False) -> None:
        """``layout`` None means: the map's BTF when it has some (and ``btf``), else hex
        (the 4-byte index keys of array-type maps as numbers).
        An explicit layout wins over BTF, even ``Layout()`` (all hex), and a side it lays
        out is shown as laid out on every map type: the type's own display (an LPM
        trie's key as CIDR, a cgroup storage key as the cgroup, stack ids and frames) is
        for a side BTF describes or no layout names.  When BTF cannot be used, ``note``
        says why and the map is shown as hex.  ``owns``: closing the View closes the map."""
        self.note: str | None = None
        self._owns = owns
        if layout is None and btf and m.btf_id and m.kind.value is Value.BYTES:
            try:
                from_btf = m.btf()
                if from_btf is not None:
                    # a key without BTF (global-variable maps: value BTF only) of an array is its index
                    self._setup(m, from_btf.layout(), from_btf=True, btf_key=bool(from_btf.key_type_id))
                    return
            except BpfmapError as err:
                self.note = f"BTF of {m.ref} not used ({err}); showing hex"
        # array indices are numbers without a layout (a layout's empty side, ``-``, is hex)
        self._setup(m, layout)

    def _setup(self, m: Map, layout: Layout | None, from_btf: bool = False, btf_key: bool = True) -> None:
        self.map = m
        self._host_names = getattr(m, "host_names", None)  # a saved map's: its saving host's names
        self._names: Names | None = None
        self._stored: tuple[Codec, Codec] | None = None  # key and value codecs before show_as
        self.formats: tuple[dict[str, str], dict[str, str]] = ({}, {})  # per side: field path -> format
        names = self.names if self._host_names is not None else None  # None: the host's, when asked
        self.key, self.value = pick(m, layout, _object_keys, from_btf=from_btf, btf_key=btf_key, names=names)

    @property
    def names(self) -> Names:
        """Who names the host's objects for display formats and stack frames: a saved
        map's saving host (its file's table), else this host (loaded when first asked)."""
        if self._names is None:
            from .host.hostnames import names_for

            self._names = names_for(self._host_names)
        return self._names

    def symbolize_for(self, pid: int | None) -> None:
        """A stack_trace map's user addresses through process ``pid``'s memory maps
        (``note`` says so when the process has exited: its frames are ``[unknown]``)."""
        if self.map.type is not MapType.STACK_TRACE or not hasattr(self.value, "pid"):
            raise UsageError(words(Param("pid"), f": {self.map.ref} is a {self.map.type_label}, not a stack_trace map"))
        self.value.pid = pid
        if pid is not None and self.names.gone(pid):
            self.note = f"process {pid} has exited (or cannot be read); its user frames are [unknown]"

    def show_as(self, formats: dict[str, str]) -> None:
        """Show some fields of the keys or values as addresses or names (``{"saddr": "ip",
        "key.ret": "errno"}``; see bpfmap.layout.formats), each on the side fields.side
        gives it; raises UsageError for a field neither side has, or both.  Filters
        (:meth:`where`) still compare what the fields hold."""
        from .layout.formats import apply

        types = self.field_types
        sided: tuple[dict[str, str], dict[str, str]] = ({}, {})
        for path, fmt in formats.items():
            side, rest = fields.side(path, *types, words(Param("as"), f" {path}={fmt}"))
            if rest is None:
                raise UsageError(
                    words(Param("as"), f" {path}={fmt}: name a field of the {path} (FIELD or FIELD.SUBFIELD)")
                )
            sided[side][rest] = fmt
        key, left = apply(self.key, sided[0], "key", self.names)
        value, left_v = apply(self.value, sided[1], "value", self.names)
        if left or left_v:
            raise UsageError(
                words(
                    Param("as"),
                    f" {', '.join([*left, *left_v])}: no such field in the key or value of {self.map.ref} "
                    "(name a field as FIELD or FIELD.SUBFIELD)",
                )
            )
        if self._stored is None:
            self._stored = (self.key, self.value)
        self.formats = ({**self.formats[0], **sided[0]}, {**self.formats[1], **sided[1]})
        self.key, self.value = key, value  # type: ignore[assignment]

    def where(self, conditions: list[str] | None = None, age: Any = None, percpu: bool | None = None) -> Any:
        """A filters.Where of ``conditions`` (and a filters.Age) bound to the types the
        map's keys and values hold, whatever --as shows; it is called on entries decoded by
        :meth:`stored_batch`, and its ``~`` tests on the same entries as
        :meth:`decode_batch` shows them (:meth:`passing`, :meth:`passes` give it both;
        ``percpu``: whether values are still per-CPU lists when it sees them; default: the
        map's)."""
        from .filters import Where

        return Where(
            conditions,
            *self.field_types,
            age,
            self.percpu if percpu is None else percpu,
            self.formats,
            self.names,
        )

    @property
    def field_types(self) -> tuple[Type | None, Type | None]:
        """The types the map's keys and values hold (whatever --as shows; None where a side
        has no layout): what field paths are looked up in."""
        key, value = self._stored or (self.key, self.value)
        return getattr(key, "type", None), getattr(value, "type", None)

    @property
    def percpu(self) -> bool:
        return self.map.percpu

    def parse_key(self, text: str) -> bytes:
        try:
            return self.key.parse(text)
        except UsageError as err:
            raise UsageError(words(f"key {quote(text)}: ", said(err))) from None

    def parse_value(self, text: str) -> bytes:
        """A value from its text, or the JSON a one-element read writes (``peek``/``pop -o
        json``: ``{"value": V}``), so what a read printed can be written back."""
        try:
            return self.value.parse(text)
        except UsageError as err:
            wrapped = _wrapped_value(text)
            if wrapped is None:
                raise UsageError(words(f"value {quote(text)}: ", said(err))) from None
        try:
            return self.value.encode(wrapped)
        except UsageError as err:  # what is wrong with V
            raise UsageError(words(f"value {quote(text)}: ", said(err))) from None

    def encode_value(self, value: Any) -> bytes:
        try:
            return self.value.encode(value)
        except UsageError as err:
            raise UsageError(words(f"value {quote(repr(value), bare=True)}: ", said(err))) from None

    def open_value_ref(self, text: str) -> Map | Program:
        """For maps of maps and prog_array: open the map or program a value refers to."""
        if self.map.kind.value is Value.MAP_ID:
            return Map.open(text)
        from .core.program import Program

        return Program.open(text)

    def decode_value(self, raw: bytes | list[bytes]) -> Any:
        if isinstance(raw, list):
            return [self.value.decode(v) for v in raw]
        return self.value.decode(raw)

    def entries(self, delete: bool = False) -> Iterator[tuple[Any, Any]]:
        """Decoded (key, value) pairs as JSON-ready values (structs as dicts), decoded batch
        by batch; raises at once (not on first next) if the map cannot be iterated.
        ``delete`` drains the map as it goes."""
        return itertools.chain.from_iterable(self.entry_batches(delete))

    # -- the mapping --------------------------------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        with self.element_key(key, "lookup") as raw:
            return record(self.decode_value(self.map.lookup(raw)))

    def __setitem__(self, key: Any, value: Any) -> None:
        self.update(key, value)

    def __delitem__(self, key: Any) -> None:
        with self.element_key(key, "delete") as raw:
            self.map.delete(raw)

    def __contains__(self, key: object) -> bool:
        with self.element_key(key, "lookup") as raw:
            return self.map.get(raw) is not None

    def __len__(self) -> int:
        """How many entries: counted by reading the map batch by batch (the kernel keeps no
        count), so O(entries); an array always has max_entries."""
        return sum(count for _k, _v, count in self.map.batches())

    def __iter__(self) -> Iterator[Any]:
        return self.keys()

    def get(self, key: Any, default: Any = None) -> Any:
        with self.element_key(key, "lookup") as raw_key:
            raw = self.map.get(raw_key)
        return default if raw is None else record(self.decode_value(raw))  # type: ignore[arg-type]

    @contextlib.contextmanager
    def element_key(self, key: Any = None, verb: str = "lookup") -> Iterator[bytes]:
        """``key`` as the map takes it, for one call.  Maps keyed by kernel objects (task,
        inode, sk and cgroup local storage) take a reference, ``pid:N``, ``file:PATH``,
        ``sock:PID:FD``, ``cgroup:PATH``, opened for the call and closed after (NotFound
        when the object does not exist); a cgroup_storage map takes ``cgroup:PATH[,TYPE]``
        too; other keys go through :meth:`key_bytes`.  ``key`` None: the one key (0) of a
        global-variable map (a one-entry array such as .data or .bss), else UsageError.
        A ``verb`` (lookup, update, delete) the map's type has not is refused first."""
        m = self.map
        text = self.default_key(key, verb)
        m.require(verb)
        if isinstance(text, str) and m.kind.key_display == "cgroup_storage" and text.startswith("cgroup:"):
            from .core.objrefs import cgroup_storage_key

            yield cgroup_storage_key(text, m.key_size)
            return
        if not isinstance(text, str) or m.kind.access is not Access.OBJECT or m.kind.object is None:
            yield self.key_bytes(text)
            return
        from .core.objrefs import open_ref

        with open_ref(text, m.kind.object) as ref:
            yield ref.key

    def default_key(self, key: Any, verb: str = "lookup") -> Any:
        """``key`` as given, or ``"0"`` for a global-variable map (a one-entry array with
        4-byte keys), the only map where it may be left out (None)."""
        if key is not None:
            return key
        m = self.map
        if m.kind.indexed and m.max_entries == 1 and m.key_size == 4:
            return "0"
        raise UsageError(
            f"{verb} {m.ref}: missing KEY; only a global-variable map (a one-entry array such as .data or .bss) "
            f"goes without one, and this is a {m.type_label} of {m.max_entries} entries"
        )

    def update(self, key: Any, value: Any, mode: str = "any", cpu: int | None = None, lock: bool = False) -> None:
        """Write one entry (``mode``: any, noexist, exist; ``lock``: under the value's
        bpf_spin_lock).  ``key`` as :meth:`element_key` takes it (a kernel object's
        reference too).  ``value`` as :meth:`value_bytes` takes it; for maps of maps and
        program arrays a Map, a Program, an fd or a reference (``/sys/fs/bpf/m``, ``id:N``,
        ``name:NAME``); for maps whose values are kernel objects (sockmap, ...) a
        reference such as ``sock:PID:FD``.  ``cpu``: on a per-CPU map, set that CPU's slot
        only, the others keeping what they held when read (a read-modify-write: a program's
        write to another slot between the read and the write is lost); the entry is made
        (others zero) where it is missing, unless ``mode`` is exist."""
        m = self.map
        with self.element_key(key, "update") as raw_key:
            if m.kind.value is Value.FD and m.kind.object is not None and isinstance(value, str):
                from .core.objrefs import open_ref

                with open_ref(value, m.kind.object, "value") as ref:
                    m.update(raw_key, ref.fd, mode)  # type: ignore[arg-type]
                return
            if m.kind.value in (Value.MAP_ID, Value.PROG_ID) and isinstance(value, str):
                with self.open_value_ref(value) as target:
                    m.update(raw_key, target, mode)  # type: ignore[arg-type]
                return
            if cpu is None:
                m.update(raw_key, self.value_bytes(value), mode, lock=lock)  # type: ignore[arg-type]
                return
            if not m.percpu:
                raise UsageError(words(Param("cpu"), f": {m.type_label} is not a per-CPU map"))
            slot = self.value_bytes(value)
            check_cpu(cpu, m.ncpus)
            try:
                current = m.lookup(raw_key)
            except KeyNotFound:
                if mode == "exist":
                    raise
                current = [bytes(m.value_size)] * m.ncpus
            assert isinstance(current, list)
            current[cpu] = slot
            m.update(raw_key, current, "exist" if mode == "exist" else "any")

    def keys(self) -> Iterator[Any]:
        return (k for k, _v in self.items())

    def values(self) -> Iterator[Any]:
        return (v for _k, v in self.items())

    def items(self) -> Iterator[tuple[Any, Any]]:
        """(key, value) pairs as records, batch by batch (a batch read ahead in a thread)."""
        return ((record(k), record(v)) for k, v in self.entries())

    def clear(self) -> int:
        """Remove every entry (arrays: zero every value); returns how many there were."""
        return self.map.clear()

    def sum(self, key: Any) -> Any:
        """A per-CPU value's numbers summed across CPUs (field by field in structs)."""
        return self._combined(key, "sum")

    def max(self, key: Any) -> Any:
        return self._combined(key, "max")

    def min(self, key: Any) -> Any:
        return self._combined(key, "min")

    def avg(self, key: Any) -> Any:
        return self._combined(key, "avg")

    def reducer(self, how: str | None = None, cpu: int | None = None) -> tuple[Any, bool]:
        """(a function reducing a per-CPU value list as asked, or None; whether values stay
        per-CPU): ``how`` sum, max, min, avg (``all``/None: every CPU's), or one ``cpu``'s.
        On other maps a known ``how`` is the identity (scripts need not branch on the type)."""
        if not self.percpu:
            if cpu is not None:
                raise UsageError(words(Param("cpu"), f": {self.map.type_label} is not a per-CPU map"))
            if how is not None:
                aggregate([0], how)  # an unknown HOW still fails; a known one is the identity here
            return None, False
        if how is not None and cpu is not None:
            raise UsageError(words("give ", Param("percpu"), " or ", Param("cpu"), ", not both"))
        if cpu is not None:
            check_cpu(cpu, self.map.ncpus)
            return (lambda vals: vals[cpu]), False
        if how in (None, "all"):
            return None, True
        aggregate([0], how)  # an unknown HOW fails here, before the map is read
        return (lambda vals: aggregate(vals, how)), False

    def _combined(self, key: Any, how: str) -> Any:
        value = self.decode_value(self.map.lookup(self.key_bytes(key)))
        return record(aggregate(value, how) if self.percpu else value)

    def key_bytes(self, key: Any) -> bytes:
        """A key as the kernel takes it, from a record, tuple, list, dict, ctypes instance,
        bytes or text."""
        return _to_bytes(self.key, key, self.parse_key)

    def value_bytes(self, value: Any) -> Any:
        """A value as Map.update takes it; per-CPU maps take one value (for every CPU) or a
        list with one per possible CPU."""
        if self.map.kind.value in (Value.MAP_ID, Value.PROG_ID) and not isinstance(value, (bytes, str)):
            return value  # a Map, a Program or an fd
        if self.percpu and isinstance(value, list) and len(value) == self.map.ncpus:
            return [_to_bytes(self.value, v, self.parse_value) for v in value]
        return _to_bytes(self.value, value, self.parse_value)

    def set_fields(self, key: Any, fields: dict[str, Any], text: bool = False) -> None:
        """Change some fields of the value at ``key`` and leave its other bytes alone: a
        global variable of a .data/.bss map (``{"packets": 0}``), a struct field
        (``limits.max_len``) or an array element (``hists[1][3]``).  ``text``: values are
        text as typed on the command line.

        A mmapable array (what libbpf makes of global variables) is written in place
        through shared memory, as a libbpf skeleton writes it: a program updating other
        variables meanwhile loses nothing.  Any other map is read, changed and written
        back (BPF_EXIST), so a concurrent change to the same value's other bytes is lost.
        A frozen map (.rodata and .kconfig after load) raises ReadOnly."""
        if self.percpu:
            raise UsageError(f"{self.map.ref}: per-CPU values are set whole (update KEY VALUE), not by field")
        t = getattr(self.value, "type", None)
        if t is None:
            raise UsageError(f"{self.map.ref}: setting fields needs a layout or BTF for the value")
        patches = []
        for name, v in fields.items():
            offset, ft = locate_field(t, name)
            codec = TypeCodec(ft)
            try:
                data = codec.parse(v) if text and isinstance(v, str) else codec.encode(v)
            except UsageError as err:
                raise UsageError(words(f"{name}: ", said(err))) from None
            patches.append((offset, data))
        raw_key = self.key_bytes(key)
        if self._write_in_place(raw_key, patches):
            return
        current = bytearray(self.map.lookup(raw_key))  # type: ignore[arg-type]  # not per-CPU
        for offset, data in patches:
            current[offset : offset + len(data)] = data
        self.map.update(raw_key, bytes(current), "exist")

    def _write_in_place(self, raw_key: bytes, patches: list[tuple[int, bytes]]) -> bool:
        """Write ``patches`` into an mmapable array's value through shared memory; False
        when the map is not one (or cannot be mapped writable: then the syscall path says why)."""
        m = self.map
        if m.type is not MapType.ARRAY or not m.flags & MapFlag.MMAPABLE or m.readonly:
            return False
        index = int.from_bytes(raw_key, "little")
        if index >= m.max_entries:
            return False
        import mmap

        stride = (m.value_size + 7) // 8 * 8
        length = (stride * m.max_entries + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
        try:
            mem = mmap.mmap(m.fileno(), length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError:
            return False  # frozen: the update below reports it
        with mem:
            for offset, data in patches:
                at = index * stride + offset
                mem[at : at + len(data)] = data
        return True

    def close(self) -> None:
        """Close the map when this View owns it (bpfmap.open, bpfmap.create)."""
        if self._owns:
            self.map.close()

    def __enter__(self) -> View:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def entry_batches(self, delete: bool = False) -> Iterator[list[tuple[Any, Any]]]:
        """Lists of decoded (key, value) pairs, one per kernel batch."""
        return (list(zip(k, v)) for k, v in self.column_batches(delete))

    def column_batches(self, delete: bool = False, size: int | None = None) -> Iterator[tuple[list[Any], list[Any]]]:
        """(keys, values) lists, decoded, one pair per kernel batch (of at most ``size``
        elements when given).  Reading runs a batch ahead in a thread, except when
        draining (a batch read ahead would be deleted before anyone saw it, were the
        reader to stop; to drain without losing entries, see bpfmap.entries.drain).  Exhaust
        or ``close()`` the iterator before closing the map: closing it stops and joins
        that thread."""
        raw = self._batches(delete, size)
        if not delete:
            from .core.threads import prefetch

            raw = prefetch(raw)
        return self._decode_batches(raw)

    def raw_batches(self, size: int | None = None) -> Generator[tuple[bytes, bytes, int], None, None]:
        """The map's raw (keys, values, count) batches, read a batch ahead in a thread;
        ``close()`` the iterator before closing the map, as column_batches."""
        from .core.threads import prefetch

        return prefetch(self._batches(False, size))  # type: ignore[return-value]  # a generator

    def _batches(self, delete: bool, size: int | None) -> Iterator[tuple[bytes, bytes, int]]:
        """The map's raw batches; local storage's by trying every task or cgroup (objrefs.walk_objects)."""
        m = self.map
        if m.kind.access is Access.OBJECT and not delete:
            m.require("dump")
            if m.kind.object == "sock":  # sockets: through the kernel's sk_storage iterator
                from .core.skiter import walk_sockets

                return walk_sockets(m, size or 256)
            from .core.objrefs import walk_objects

            return walk_objects(m, size or 256)
        return m.batches(delete=delete, size=size)

    def decode_batch(self, keys: bytes, values: bytes, count: int) -> tuple[list[Any], list[Any]]:
        """One raw batch (see Map.batches) as lists of decoded keys and values."""
        return self.key.decode_many(keys, count), self._values_many(values, count)

    def stored_batch(self, keys: bytes, values: bytes, count: int) -> tuple[list[Any], list[Any]]:
        """A raw batch decoded as what its fields hold, not as --as shows them (what a
        filter from :meth:`where` compares); the same lists as :meth:`decode_batch` gives
        when nothing is shown otherwise."""
        if self._stored is None:
            return self.decode_batch(keys, values, count)
        key, value = self._stored
        return key.decode_many(keys, count), self._values_many(values, count, value)

    def stored_entry(self, key: bytes, value: bytes | list[bytes]) -> tuple[Any, Any]:
        """One raw entry decoded as :meth:`stored_batch` decodes a batch."""
        kc, vc = self._stored or (self.key, self.value)
        return kc.decode(key), [vc.decode(v) for v in value] if isinstance(value, list) else vc.decode(value)

    def passes(self, where: Any, key: bytes, value: bytes | list[bytes]) -> bool:
        """Whether ``where`` (from :meth:`where`) passes one raw entry (a per-CPU value: a
        list of each CPU's bytes), as :meth:`passing` tests a batch's."""
        k, v = self.stored_entry(key, value)
        return bool(self._kept(where, [k], [v], lambda: ([self.key.decode(key)], [self.decode_value(value)])))

    def passing(
        self, where: Any, keys: bytes, values: bytes, count: int, reduce: Any = None
    ) -> tuple[list[int], list[Any], list[Any]]:
        """(indices, decoded keys, decoded values) of the entries of a raw batch that
        ``where`` (from :meth:`where`) passes, values reduced by ``reduce`` (a per-CPU
        reducer, see :meth:`reducer`) before the test and in the result."""
        dk, dv = self.decode_batch(keys, values, count)
        if reduce is not None:
            dv = list(map(reduce, dv))
        if not where:
            return list(range(count)), dk, dv
        sk, sv = dk, dv
        if self._stored is not None:
            sk, sv = self.stored_batch(keys, values, count)
            if reduce is not None:
                sv = list(map(reduce, sv))
        keep = self._kept(where, sk, sv, lambda: (dk, dv))
        if len(keep) == count:
            return keep, dk, dv
        return keep, [dk[i] for i in keep], [dv[i] for i in keep]

    def stored_passing(
        self, where: Any, keys: bytes, values: bytes, count: int
    ) -> tuple[list[int], list[Any], list[Any]]:
        """(indices of the entries of a raw batch that ``where`` passes, every entry's key and
        value as :meth:`stored_batch` decodes them): for jobs on what the fields hold (a
        copy converts it), filtered as :meth:`passing` filters."""
        sk, sv = self.stored_batch(keys, values, count)
        if not where:
            return list(range(count)), sk, sv
        return self._kept(where, sk, sv, lambda: self.decode_batch(keys, values, count)), sk, sv

    def _kept(
        self, where: Any, keys: list[Any], values: list[Any], shown: Callable[[], tuple[list[Any], list[Any]]]
    ) -> list[int]:
        """The indices of the entries ``where`` passes: ``keys`` and ``values`` decoded as
        what the fields hold, ``shown()`` the same as the output shows them (asked for only
        where a ``~`` test looks in a text display formats change)."""
        if self._stored is None or not where.reads_shown:
            return [i for i in range(len(keys)) if where(keys[i], values[i])]
        dk, dv = shown()
        return [i for i in range(len(keys)) if where(keys[i], values[i], (dk[i], dv[i]))]

    def _decode_batches(self, raw: Iterable[tuple[bytes, bytes, int]]) -> Iterator[tuple[list[Any], list[Any]]]:
        decode = self.decode_batch
        for keys, values, count in raw:
            yield decode(keys, values, count)

    def _values_many(self, values: bytes, count: int, codec: Codec | None = None) -> list[Any]:
        m = self.map
        codec = codec or self.value
        if not m.percpu:
            return codec.decode_many(values, count)
        n = m.ncpus
        flat = codec.decode_many(m.shape.slots(values, count), count * n)
        return [flat[i * n : (i + 1) * n] for i in range(count)]


# -- records --------------------------------------------------------------------------------

_RECORDS: dict[tuple[str, ...], type] = {}


def _record_class(fields: tuple[str, ...]) -> type:
    cls = _RECORDS.get(fields)
    if cls is None:
        from collections import namedtuple

        cls = _RECORDS[fields] = namedtuple("Record", fields, rename=True)
    return cls


def record(value: Any) -> Any:
    """A decoded value as the typed API gives it: structs (dicts) as records, arrays as
    tuples, nested too, so that keys hash; scalars as they are; a per-CPU list stays a list."""
    if isinstance(value, dict):
        return _record_class(tuple(value))(*(_frozen(v) for v in value.values()))
    if isinstance(value, list):
        return [record(v) for v in value]  # per-CPU slots
    return value


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return record(value)
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def plain(value: Any) -> Any:
    """A record (or tuple of them) back as the codecs take it: dicts and lists."""
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    return value


def _to_bytes(codec: Codec, value: Any, parse: Callable[[str], bytes]) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if hasattr(value, "_b_base_") or hasattr(value, "_objects"):  # a ctypes instance
        return bytes(memoryview(value))
    if isinstance(value, str):
        return parse(value)
    try:
        return codec.encode(plain(value))
    except UsageError as err:
        raise UsageError(words(f"{quote(repr(value), bare=True)}: ", said(err))) from None


# -- per-CPU --------------------------------------------------------------------------------


def aggregate(values: list[Any], how: str) -> Any:
    """Combine per-CPU values: numbers by ``how`` (sum/max/min/avg), field by field in
    structs and arrays; anything else (strings, addresses) is taken from CPU 0."""
    if how == "all":
        return values
    if how not in AGGREGATES:
        raise UsageError(words(Param("percpu"), f" {how}: choose one of {', '.join(AGGREGATES)}"))
    return _combine(values, how)


def is_number(x: Any) -> TypeGuard[int | float]:
    """An int or float decoded from a map (bools, which are ints to Python, are not)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _combine(values: list[Any], how: str) -> Any:
    first = values[0]
    if isinstance(first, dict):
        return {k: _combine([v[k] for v in values], how) for k in first}
    if isinstance(first, list):
        return [_combine([v[i] for v in values], how) for i in range(len(first))]
    if not is_number(first):
        return first
    if how == "sum":
        return sum(values)
    if how == "max":
        return max(values)
    if how == "min":
        return min(values)
    return sum(values) / len(values)


def check_cpu(cpu: int, ncpus: int) -> int:
    """``cpu`` if it is a possible CPU, else a UsageError."""
    if not 0 <= cpu < ncpus:
        raise UsageError(words(Param("cpu"), f" {cpu}: this machine has CPUs 0..{ncpus - 1} (possible)"))
    return cpu


# -- sorting ---------------------------------------------------------------------------------


def field_getter(
    field: str, sample: tuple[Any, Any], types: tuple[Any, Any] | None = None, percpu: bool = False
) -> Callable[[tuple[Any, Any]], tuple[Any, ...]]:
    """A function (key, value) -> sort key for ``field``: ``key``, ``value``, ``key.port``,
    ``value.packets``, ``value.hist[2]`` or a bare field path, on the side
    fields.side gives it (looked up in ``types``, the key's and value's, else in
    ``sample``, an entry).  ``percpu``: values are lists of one per CPU, summed as
    ``--percpu sum`` sums them."""
    side, rest = fields.side(field, *(types or sample), words(Param("sort"), f" {field}"))
    get = fields.getter(rest) if rest is not None else None
    if side == fields.VALUE and percpu:
        return lambda entry: sort_key(get(aggregate(entry[1], "sum")) if get else aggregate(entry[1], "sum"))
    if get is None:
        return lambda entry: sort_key(entry[side])
    return lambda entry: sort_key(get(entry[side]))


def numeric_layout(m: Map) -> Layout | None:
    """For a map with neither a layout nor BTF whose key and value are 4 or 8 bytes: read
    them as unsigned integers (a counter's shape, what watch, hist and export assume);
    None otherwise (hex, or the map's BTF)."""
    if m.btf_id:
        return None
    sizes = {4: "u32", 8: "u64"}
    if m.value_size in sizes and (m.key_size in sizes or m.key_size == 0):
        key = sizes.get(m.key_size, "")
        return Layout.parse(f"{key}:{sizes[m.value_size]}" if key else sizes[m.value_size])
    return None


def sort_key(v: Any) -> tuple[Any, ...]:
    """Numbers before strings, so mixed types never raise; an array of numbers sorts by
    its sum."""
    if isinstance(v, list) and v and all(isinstance(x, (int, float)) for x in v):
        v = sum(v)
    if is_number(v):
        return (0, v, "")
    return (1, 0, str(v))


def sort_entries(
    entries: Iterable[tuple[Any, Any]],
    field: str,
    reverse: bool = False,
    top: int | None = None,
    types: tuple[Any, Any] | None = None,
    percpu: bool = False,
) -> Iterator[tuple[Any, Any]]:
    """Entries ordered by ``field`` (ascending; ``reverse`` descending; ``types`` and
    ``percpu`` as :func:`field_getter` takes them).  With ``top``, the ``top`` largest
    (the smallest with ``reverse``), largest first, holding only ``top`` entries in
    memory."""
    it = iter(entries)
    try:
        first = next(it)
    except StopIteration:
        return iter(())
    getter = field_getter(field, first, types, percpu)
    stream = itertools.chain([first], it)
    if top is not None:
        if top < 1:
            raise UsageError(words(Param("top"), " must be at least 1"))
        import heapq  # --top only

        pick = heapq.nsmallest if reverse else heapq.nlargest
        return iter(pick(top, stream, key=getter))
    return iter(sorted(stream, key=getter, reverse=reverse))


def _wrapped_value(text: str) -> Any:
    """V of a JSON object ``{"value": V}`` (and nothing else), else None."""
    if not text.lstrip().startswith("{"):
        return None
    import json

    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj["value"] if isinstance(obj, dict) and list(obj) == ["value"] else None
