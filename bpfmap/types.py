"""Map types, map flags, and what each type can do.

Names are the kernel's (``BPF_MAP_TYPE_`` dropped, lower case).  The enum follows
``enum bpf_map_type`` in linux/bpf.h; the last entries are newer than the 6.1 uapi
header Debian ships, with the numbers from the kernel source.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple


class MapType(enum.IntEnum):
    UNSPEC = 0
    HASH = 1
    ARRAY = 2
    PROG_ARRAY = 3
    PERF_EVENT_ARRAY = 4
    PERCPU_HASH = 5
    PERCPU_ARRAY = 6
    STACK_TRACE = 7
    CGROUP_ARRAY = 8
    LRU_HASH = 9
    LRU_PERCPU_HASH = 10
    LPM_TRIE = 11
    ARRAY_OF_MAPS = 12
    HASH_OF_MAPS = 13
    DEVMAP = 14
    SOCKMAP = 15
    CPUMAP = 16
    XSKMAP = 17
    SOCKHASH = 18
    CGROUP_STORAGE = 19
    REUSEPORT_SOCKARRAY = 20
    PERCPU_CGROUP_STORAGE = 21
    QUEUE = 22
    STACK = 23
    SK_STORAGE = 24
    DEVMAP_HASH = 25
    STRUCT_OPS = 26
    RINGBUF = 27
    INODE_STORAGE = 28
    TASK_STORAGE = 29
    BLOOM_FILTER = 30
    USER_RINGBUF = 31
    CGRP_STORAGE = 32  # 6.2
    ARENA = 33  # 6.9

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> MapType:
        """Look a type up by name (``lru_hash``, ``lru-hash``, ``BPF_MAP_TYPE_LRU_HASH``)."""
        from .errors import UsageError, quote

        key = text.strip().upper().replace("-", "_")
        key = key.removeprefix("BPF_MAP_TYPE_")
        try:
            return cls[key]
        except KeyError:
            names = ", ".join(t.label for t in cls if t is not cls.UNSPEC)
            raise UsageError(f"unknown map type {quote(text)}; known types: {names}") from None


class MapFlag(enum.IntFlag):
    """BPF_F_* map creation flags."""

    NO_PREALLOC = 1 << 0
    NO_COMMON_LRU = 1 << 1
    NUMA_NODE = 1 << 2
    RDONLY = 1 << 3
    WRONLY = 1 << 4
    STACK_BUILD_ID = 1 << 5
    ZERO_SEED = 1 << 6
    RDONLY_PROG = 1 << 7
    WRONLY_PROG = 1 << 8
    CLONE = 1 << 9
    MMAPABLE = 1 << 10
    PRESERVE_ELEMS = 1 << 11
    INNER_MAP = 1 << 12
    LINK = 1 << 13  # 6.4
    PATH_FD = 1 << 14  # 6.5
    VTYPE_BTF_OBJ_FD = 1 << 15  # 6.9
    TOKEN_FD = 1 << 16  # 6.9
    SEGV_ON_FAULT = 1 << 17  # 6.9
    NO_USER_CONV = 1 << 18  # 6.9

    @classmethod
    def parse(cls, text: str) -> MapFlag:
        """Parse ``no_prealloc,rdonly_prog`` (also ``-`` for ``_``, or a number)."""
        from .errors import UsageError, quote

        flags = cls(0)
        for part in filter(None, (p.strip() for p in text.split(","))):
            try:
                flags |= cls(int(part, 0))
                continue
            except ValueError:
                pass
            key = part.upper().replace("-", "_").removeprefix("BPF_F_")
            try:
                flags |= cls[key]
            except KeyError:
                names = ", ".join(str(f.name).lower() for f in cls)
                raise UsageError(f"unknown map flag {quote(part)}; known flags: {names}") from None
        return flags

    def labels(self) -> list[str]:
        return [str(f.name).lower() for f in MapFlag if f in self]


class Value(enum.Enum):
    """What a map's value bytes mean to user space."""

    BYTES = "bytes"  # plain data
    MAP_ID = "map_id"  # maps of maps: written as an inner map fd, read back as its id
    PROG_ID = "prog_id"  # prog_array: written as a program fd, read back as its id
    FD = "fd"  # other fd maps (perf_event_array, sockmap, ...): write-only from user space


class Access(enum.Enum):
    """How user space reaches the elements."""

    KEYED = "keyed"  # lookup/update/delete/iterate by key
    QUEUE = "queue"  # push/pop/peek, FIFO
    STACK = "stack"  # push/pop/peek, LIFO
    BLOOM = "bloom"  # push adds, peek tests membership
    STREAM = "stream"  # ring buffers and perf buffers: records, not entries
    OBJECT = "object"  # local storage: keyed by a kernel object's fd (task, socket, cgroup, inode)
    NONE = "none"  # struct_ops, arena: nothing by element from user space


# The verbs on elements, and which of them read or write.  Every map type lists the ones
# that work on it (TypeSpec.ops); show prints them, and Map refuses the others before
# the kernel would (test_type_table checks both against the kernel, type by type).
READS = frozenset({"lookup", "getnext", "dump", "watch", "peek", "pop", "events"})
WRITES = frozenset({"update", "delete", "clear", "push", "pop", "send"})
VERB_ORDER = (
    "lookup",
    "dump",
    "watch",
    "getnext",
    "update",
    "delete",
    "clear",
    "peek",
    "pop",
    "push",
    "events",
    "send",
)
_KEYED = ("lookup", "update", "delete", "getnext", "dump", "watch", "clear")
_ARRAY = ("lookup", "update", "getnext", "dump", "watch", "clear")  # every index always exists
_FD_READABLE = ("lookup", "update", "delete", "getnext", "dump", "clear")  # values read back as cookies
_ID_VALUES = _FD_READABLE + ("watch",)  # values read back as program or map ids
_FD_WRITE_ONLY = ("update", "delete", "getnext", "dump", "clear")  # dump: the slot count, values unreadable


class TypeSpec:
    """What a map type can do and the defaults ``create`` uses for it.

    ``key_size``/``value_size`` are the sizes the kernel requires (None: the user
    chooses).  ``default_max_entries`` None means one per possible CPU.  ``ops``: the
    element verbs that work on it from user space; ``needs_btf``: the kernel refuses to
    create it without BTF for its key and value (local storage)."""

    __slots__ = (
        "access",
        "percpu",
        "value",
        "key_size",
        "value_size",
        "default_value_size",
        "default_max_entries",
        "default_flags",
        "required_flags",
        "needs_inner_map",
        "batch",
        "deletable",
        "indexed",
        "ops",
        "needs_btf",
        "object",
        "default_key_size",
        "evicts",
        "disk",
        "takes",
        "fills",
        "key_display",
        "value_display",
        "libbpf_btf",
        "extra",
        "ring",
    )

    def __init__(
        self,
        access: Access = Access.KEYED,
        percpu: bool = False,
        value: Value = Value.BYTES,
        key_size: int | None = None,
        value_size: int | None = None,
        default_value_size: int | None = None,
        default_max_entries: int | None = 1024,
        default_flags: MapFlag = MapFlag(0),  # noqa: B008 (immutable)
        required_flags: MapFlag = MapFlag(0),  # noqa: B008 (immutable)
        needs_inner_map: bool = False,
        batch: bool = False,
        deletable: bool = True,
        indexed: bool = False,
        ops: tuple[str, ...] = _KEYED,
        needs_btf: bool = False,
        object: str | None = None,
        default_key_size: int | None = None,
        evicts: bool = False,
        disk: str = "restore",
        takes: bool = False,
        fills: bool = False,
        key_display: str | None = None,
        value_display: str | None = None,
        libbpf_btf: bool = True,
        extra: str | None = None,
        ring: bool = False,
    ) -> None:
        self.access, self.percpu, self.value = access, percpu, value
        self.key_size, self.value_size, self.default_value_size = key_size, value_size, default_value_size
        self.default_max_entries, self.default_flags, self.required_flags = (
            default_max_entries,
            default_flags,
            required_flags,
        )
        self.needs_inner_map, self.batch, self.deletable = needs_inner_map, batch, deletable
        # keys are 4-byte indices: read and written as numbers without a layout, and the
        # key walk goes from one index to the next, never back to the first
        self.indexed = indexed
        self.ops = frozenset(ops)
        self.needs_btf = needs_btf
        self.default_key_size = default_key_size
        self.object = object  # the kind of kernel object a key (local storage) or value (fd maps) refers to
        # a full map drops its least recently used entries to make room, and may do so
        # before max_entries (per-CPU free lists): how much room it has cannot be known
        self.evicts = evicts
        # what a saved file can hold of it: "restore" (saved and restored), "read" (saved,
        # read back, never restored), else why it cannot be saved (DISK_REFUSALS)
        self.disk = disk
        self.takes = takes  # BPF_MAP_LOOKUP_AND_DELETE_ELEM hands an entry over as it goes (Linux 5.14+)
        self.fills = fills  # programs add and remove entries up to max_entries: how full it is means something
        # the type's own display of a side no layout names (layout/pick.py reads them):
        # keys as "cidr" (prefix and address), "cgroup_storage" (the cgroup's path and
        # attach type), "stack_id" (a number); values as "frames" (symbolized), "cookie" (a socket read back as its cookie)
        self.key_display, self.value_display = key_display, value_display
        self.libbpf_btf = libbpf_btf  # libbpf gives it the key and value BTF of its definition
        self.extra = extra  # what map_extra holds for it ("hashes", "address"); None: it takes none
        self.ring = ring  # max_entries is the ring's size in bytes: a power of two, at least a page

    def operations(self, flags: MapFlag = MapFlag(0), frozen: bool = False) -> list[str]:  # noqa: B008
        """The bpfmap verbs that work on a map of this type (with these flags, frozen or
        not) from user space: what ``show`` lists, in a fixed order."""
        writable = not frozen and MapFlag.RDONLY not in flags
        readable = MapFlag.WRONLY not in flags
        ops = [
            op
            for op in VERB_ORDER
            if op in self.ops and (readable or op not in READS) and (writable or op not in WRITES)
        ]
        return ops or ["none from user space (programs use it)"]


class RefForm(NamedTuple):
    """A way to name a kernel object on the command line: ``pid:N``."""

    form: str  # as help and messages write it
    says: str  # what it names, where the form does not say it
    example: str
    object: bool = True  # a kernel object (opened as an fd for one call), not a map

    @property
    def described(self) -> str:
        """``pid:N (a process or thread id)``."""
        return f"{self.form} ({self.says})" if self.says else self.form


# Every reference form, stated here only: kernel objects (TypeSpec.object names one;
# core/objrefs opens them) and maps (core/maps opens them).
REF_FORMS = {
    "pid": RefForm("pid:N", "a process or thread id", "pid:1"),
    "cgroup": RefForm("cgroup:PATH", "a cgroup2 directory", "cgroup:/"),
    "file": RefForm("file:PATH", "", "file:/etc/hostname"),
    "sock": RefForm("sock:PID:FD", "the socket process PID holds as FD", "sock:1234:3"),
    "id": RefForm("id:N", "a map's id", "id:1", object=False),
    "name": RefForm("name:NAME", "a map's name", "name:counts", object=False),
}


# Why a map of a type cannot be saved (TypeSpec.disk names one of these).
DISK_REFUSALS = {
    "drains": "reading its elements takes them out of the map",
    "bloom": "a bloom filter cannot give its elements back",
    "stream": "it carries a stream of records, not entries",
    "objects": "its entries are keyed by live kernel objects (tasks, sockets, cgroups, inodes)",
    "fds": "its values are kernel objects user space cannot read",
    "none": "user space cannot reach its elements",
}
_FD_ARRAY: dict[str, Any] = dict(key_size=4, value_size=4, indexed=True)
# socket/inode/task/cgroup local storage: keyed by an fd, no entries of their own to make
_LOCAL_STORAGE: dict[str, Any] = dict(
    default_max_entries=0,
    access=Access.OBJECT,
    key_size=4,
    required_flags=MapFlag.NO_PREALLOC,
    default_flags=MapFlag.NO_PREALLOC,
    needs_btf=True,
    disk="objects",
)
_LOCAL_OPS = ("lookup", "update", "delete", "dump", "watch")
_QUEUE_OPS = ("peek", "pop", "push")
# a socket's value reads back as its cookie (8-byte values; 4-byte ones read nothing)
_SOCKETS: dict[str, Any] = dict(
    value=Value.FD, default_value_size=8, object="sock", ops=_FD_READABLE, disk="read", value_display="cookie"
)
# key: struct bpf_cgroup_storage_key {u64 cgroup_inode_id; u32 attach_type;}; entries
# exist while a program using the map is attached to a cgroup (saved files keep what is read)
_CGROUP_STORAGE: dict[str, Any] = dict(
    default_max_entries=0,
    default_key_size=16,
    ops=("lookup", "update", "getnext", "dump", "watch"),
    object="cgroup",
    disk="read",
    key_display="cgroup_storage",
)
# a ring buffer, the kernel's (the program writes) or the user's (the program reads):
# max_entries is its size in bytes (a power of 2, whole pages)
_RING: dict[str, Any] = dict(
    access=Access.STREAM, key_size=0, value_size=0, default_max_entries=1 << 16, disk="stream", ring=True
)

SPECS: dict[MapType, TypeSpec] = {
    MapType.HASH: TypeSpec(batch=True, takes=True, fills=True),
    MapType.ARRAY: TypeSpec(key_size=4, batch=True, deletable=False, indexed=True, ops=_ARRAY),
    MapType.PROG_ARRAY: TypeSpec(value=Value.PROG_ID, ops=_ID_VALUES, disk="read", **_FD_ARRAY),
    # max_entries None: one slot per possible CPU.
    MapType.PERF_EVENT_ARRAY: TypeSpec(
        access=Access.STREAM,
        value=Value.FD,
        default_max_entries=None,
        ops=("events",),
        disk="stream",
        libbpf_btf=False,
        **_FD_ARRAY,
    ),
    MapType.PERCPU_HASH: TypeSpec(percpu=True, batch=True, takes=True, fills=True),
    MapType.PERCPU_ARRAY: TypeSpec(percpu=True, key_size=4, batch=True, deletable=False, indexed=True, ops=_ARRAY),
    # 127 frames of 8 bytes: PERF_MAX_STACK_DEPTH, what libbpf-tools' profilers use
    MapType.STACK_TRACE: TypeSpec(
        key_size=4,
        default_value_size=127 * 8,
        ops=("lookup", "delete", "getnext", "dump", "watch", "clear"),
        disk="read",  # only programs write it (bpf_get_stackid)
        fills=True,
        key_display="stack_id",
        value_display="frames",
        libbpf_btf=False,
    ),
    MapType.CGROUP_ARRAY: TypeSpec(
        value=Value.FD, object="cgroup", ops=_FD_WRITE_ONLY, disk="fds", libbpf_btf=False, **_FD_ARRAY
    ),
    MapType.LRU_HASH: TypeSpec(batch=True, evicts=True, takes=True, fills=True),
    MapType.LRU_PERCPU_HASH: TypeSpec(percpu=True, batch=True, evicts=True, takes=True, fills=True),
    MapType.LPM_TRIE: TypeSpec(
        default_flags=MapFlag.NO_PREALLOC, required_flags=MapFlag.NO_PREALLOC, fills=True, key_display="cidr"
    ),
    MapType.ARRAY_OF_MAPS: TypeSpec(
        value=Value.MAP_ID, needs_inner_map=True, batch=True, ops=_ID_VALUES, libbpf_btf=False, **_FD_ARRAY
    ),
    MapType.HASH_OF_MAPS: TypeSpec(
        value=Value.MAP_ID,
        needs_inner_map=True,
        batch=True,
        value_size=4,
        ops=_ID_VALUES,
        fills=True,
        libbpf_btf=False,
    ),
    MapType.DEVMAP: TypeSpec(
        key_size=4, default_value_size=4, indexed=True, ops=_ARRAY[:1] + _KEYED[1:], disk="read", libbpf_btf=False
    ),
    MapType.SOCKMAP: TypeSpec(key_size=4, indexed=True, libbpf_btf=False, **_SOCKETS),
    # max_entries None: one per possible CPU (the kernel caps a cpumap at NR_CPUS)
    MapType.CPUMAP: TypeSpec(
        key_size=4, default_value_size=4, indexed=True, default_max_entries=None, disk="read", libbpf_btf=False
    ),
    MapType.XSKMAP: TypeSpec(
        value=Value.FD, object="sock", ops=_FD_WRITE_ONLY, disk="fds", libbpf_btf=False, **_FD_ARRAY
    ),
    MapType.SOCKHASH: TypeSpec(fills=True, libbpf_btf=False, **_SOCKETS),
    MapType.CGROUP_STORAGE: TypeSpec(**_CGROUP_STORAGE),
    MapType.REUSEPORT_SOCKARRAY: TypeSpec(key_size=4, indexed=True, **_SOCKETS),
    MapType.PERCPU_CGROUP_STORAGE: TypeSpec(percpu=True, **_CGROUP_STORAGE),
    MapType.QUEUE: TypeSpec(access=Access.QUEUE, key_size=0, ops=_QUEUE_OPS, disk="drains", libbpf_btf=False),
    MapType.STACK: TypeSpec(access=Access.STACK, key_size=0, ops=_QUEUE_OPS, disk="drains", libbpf_btf=False),
    MapType.SK_STORAGE: TypeSpec(object="sock", ops=_LOCAL_OPS, **_LOCAL_STORAGE),
    MapType.DEVMAP_HASH: TypeSpec(key_size=4, default_value_size=4, disk="read", fills=True, libbpf_btf=False),
    MapType.STRUCT_OPS: TypeSpec(access=Access.NONE, key_size=4, ops=(), disk="none"),
    MapType.RINGBUF: TypeSpec(ops=("events",), **_RING),
    # inode storage cannot be enumerated: no dump
    MapType.INODE_STORAGE: TypeSpec(object="file", ops=("lookup", "update", "delete"), **_LOCAL_STORAGE),
    MapType.TASK_STORAGE: TypeSpec(object="pid", ops=_LOCAL_OPS, **_LOCAL_STORAGE),
    MapType.BLOOM_FILTER: TypeSpec(access=Access.BLOOM, key_size=0, ops=("peek", "push"), disk="bloom", extra="hashes"),
    MapType.USER_RINGBUF: TypeSpec(ops=("send",), **_RING),
    MapType.CGRP_STORAGE: TypeSpec(object="cgroup", ops=_LOCAL_OPS, **_LOCAL_STORAGE),
    # max_entries: pages; map_extra: the user address it is mapped at (0: any)
    MapType.ARENA: TypeSpec(
        access=Access.NONE,
        key_size=0,
        value_size=0,
        default_max_entries=1,
        required_flags=MapFlag.MMAPABLE,
        default_flags=MapFlag.MMAPABLE,
        ops=(),
        disk="none",
        extra="address",
    ),
}

_BY_NUMBER: dict[int, TypeSpec] = {int(t): s for t, s in SPECS.items()}


def spec(map_type: MapType | int) -> TypeSpec:
    """The TypeSpec of a map type (or its number); unknown (newer) types are treated as
    plain keyed maps."""
    found = SPECS.get(map_type) if isinstance(map_type, MapType) else _BY_NUMBER.get(map_type)
    return found or TypeSpec()


def map_type_label(value: int) -> str:
    try:
        return MapType(value).label
    except ValueError:
        return f"type_{value}"
