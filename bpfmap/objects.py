"""Maps declared in compiled BPF objects (ELF), created without loading any program.

A libbpf-style object declares its maps in the ``.maps`` section as BTF-defined
structs (``__uint(type, ...)``, ``__uint(max_entries, ...)``, ``__type(key, ...)``,
``__type(value, ...)``, ``__array(values, ...)``, ``__uint(map_flags, ...)``,
``__uint(pinning, LIBBPF_PIN_BY_NAME)``).  ``read_object`` reads those definitions the
way libbpf's ``parse_btf_map_def`` does; ``create_maps`` creates them with the object's
BTF (fixed up as libbpf fixes it: section sizes and variable offsets from the ELF),
fills map-in-map slots the object initialises, and pins each map as DIR/NAME,
reusing a compatible pin as libbpf's pin-by-name does.

ELF is read with pyelftools; BTF with bpfmap.btf.  Needs Linux 5.x+ for BTF-defined maps
the way libbpf creates them."""

from __future__ import annotations

import errno
import os
import struct
from typing import Any

from .btf.wire import BTF, BTFError, Kind
from .core.spec import MapSpec
from .errors import BpfmapError, KernelError, PinExists, UsageError
from .maps import Map
from .types import MapFlag, MapType

PIN_NONE, PIN_BY_NAME = 0, 1
_PIN_NAMES = {PIN_NONE: "none", PIN_BY_NAME: "by_name"}

# libbpf creates these types without key/value BTF (bpf_object__create_map)
_NO_BTF = {
    MapType.PERF_EVENT_ARRAY,
    MapType.CGROUP_ARRAY,
    MapType.STACK_TRACE,
    MapType.ARRAY_OF_MAPS,
    MapType.HASH_OF_MAPS,
    MapType.DEVMAP,
    MapType.DEVMAP_HASH,
    MapType.CPUMAP,
    MapType.XSKMAP,
    MapType.SOCKMAP,
    MapType.SOCKHASH,
    MapType.QUEUE,
    MapType.STACK,
}


class ObjectError(UsageError):
    """The file is not a BPF object bpfmap can read, or a map definition is malformed."""


def _spec_field(name: str) -> Any:
    """A MapDef attribute that is its MapSpec's field."""
    return property(lambda self: getattr(self.spec, name), lambda self, v: setattr(self.spec, name, v))


class MapDef:
    """One map an object declares: its MapSpec (what the kernel creates, as libbpf would;
    the kernel name is the first 15 characters of ``name``), and what the object adds:
    pinning, key and value types in its BTF, the slots a map of maps fills."""

    type = _spec_field("type")
    key_size = _spec_field("key_size")
    value_size = _spec_field("value_size")
    max_entries = _spec_field("max_entries")
    flags = _spec_field("flags")
    map_extra = _spec_field("map_extra")
    numa_node = _spec_field("numa_node")

    def __init__(self, name: str) -> None:
        self.name = name
        self.spec = MapSpec(MapType.UNSPEC, 0, 0, 0, MapFlag(0), name=self.kernel_name)
        self.pinning = PIN_NONE
        self.key_type_id = self.value_type_id = 0
        self._inner: MapDef | None = None
        self.slots: dict[int, str] = {}  # map-in-map slots the object fills: index -> map name
        self.key_c: str | None = None
        self.value_c: str | None = None
        # a global-variable map (libbpf's internal maps): its ELF section, the bytes it
        # starts with, and whether libbpf freezes it after writing them
        self.section: str | None = None
        self.initial: bytes | None = None
        self.freeze = False

    @property
    def inner(self) -> MapDef | None:
        """A map of maps' inner map definition (its spec is ``spec.inner``)."""
        return self._inner

    @inner.setter
    def inner(self, d: MapDef | None) -> None:
        self._inner = d
        self.spec.inner = d.spec if d is not None else None

    @property
    def kernel_name(self) -> str:
        return self.name[:15]  # BPF_OBJ_NAME_LEN - 1, as libbpf truncates

    @property
    def pin_name(self) -> str:
        """The file name under the pin directory: libbpf's (bpftool's ``pinmaps``), which
        writes the dots of global-variable map names (``prog.bss``) as ``_``."""
        return self.name.replace(".", "_") if self.section else self.name

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "type": self.type.label if self.type else None,
            "key_size": self.key_size,
            "value_size": self.value_size,
            "max_entries": self.max_entries,
            "flags": MapFlag(self.flags).labels(),
            "map_extra": self.map_extra,
            "numa_node": self.numa_node,
            "pinning": _PIN_NAMES.get(self.pinning, str(self.pinning)),
            "key_type": self.key_c,
            "value_type": self.value_c,
            "inner": self.inner.to_dict() if self.inner else None,
            "slots": {str(k): v for k, v in sorted(self.slots.items())},
            "section": self.section,
        }


class BpfObject:
    """The maps of one ELF object, and its BTF ready to load."""

    def __init__(self, path: str, maps: list[MapDef], btf_data: bytes) -> None:
        self.path, self.maps, self.btf_data = path, maps, btf_data
        self.btf_note: str | None = None  # set by create_maps when the kernel refused this BTF

    def type_codec(self, ctype: str):
        """A codec for a type of the object's BTF named as in C: ``struct event``,
        ``union u``, ``enum e`` or a typedef/base name (``__u64``, ``event_t``); ``struct
        X`` also finds a typedef X of a struct, and a bare name a struct, union or enum.
        For records a program writes to ring and perf buffers: their type lives in the
        object (it is there when a map, a global or a function uses it)."""
        import difflib

        from .btf.convert import to_model
        from .layout import TypeCodec

        words = ctype.split()
        kinds = {"struct": Kind.STRUCT, "union": Kind.UNION, "enum": Kind.ENUM}
        kind = kinds.get(words[0]) if len(words) == 2 else None
        name = words[-1] if words else ""
        btf = BTF(self.btf_data)
        types = [btf.type(i) for i in btf.ids()]
        data_kinds = (Kind.TYPEDEF, Kind.INT, Kind.FLOAT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64)
        wanted = (kind,) if kind is not None else data_kinds
        found = next((t for t in types if t.name == name and t.kind in wanted), None)
        if found is None and kind is not None:  # struct X written for a typedef X of a struct
            found = next(
                (t for t in types if t.name == name and t.kind == Kind.TYPEDEF and btf.resolve(t.id).kind == kind),
                None,
            )
        if found is None:
            names = sorted({t.name for t in types if t.name and t.kind in data_kinds})
            close = difflib.get_close_matches(name, names, n=3)
            near = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(
                f"{self.path}: no type {ctype!r} in its BTF{near} (clang keeps the types globals, maps and "
                f"functions use, not those only local variables use: name it in a map, e.g. "
                f"__type(value, {ctype}), or a global)"
            )
        return TypeCodec(to_model(btf, found.id, ctype))

    def map(self, name: str) -> MapDef:
        for d in self.maps:
            if name in (d.name, d.pin_name, d.section):
                return d
        raise UsageError(f"{self.path}: no map {name!r}; it declares {', '.join(d.name for d in self.maps)}")


def read_object(path: str) -> BpfObject:
    """Read the BTF-defined maps of the BPF object at ``path``.

    Raises ObjectError (a UsageError) for anything that is not a well-formed BPF object:
    every offset and size is checked against the file before it is read, and whatever
    else the ELF or BTF parsers trip on becomes "bad object FILE: ..."."""
    try:
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile
    except ImportError as err:  # pragma: no cover - a dependency
        raise ObjectError("reading BPF objects needs pyelftools (pip install pyelftools)") from err
    import io

    from .errors import quote
    from .inputs import OBJECT_LIMIT, read_bytes

    try:
        data = read_bytes(path, "object", OBJECT_LIMIT)
    except UsageError as err:
        raise ObjectError(str(err)) from None
    shown = quote(path, bare=True)
    try:
        elf = ELFFile(io.BytesIO(data))
        _check_layout(elf, len(data))
        return _read(path, elf)
    except ObjectError:
        raise
    except _Damaged as err:
        raise ObjectError(f"bad object {shown}: {err}") from None
    except ELFError as err:
        raise ObjectError(f"object {shown}: not an ELF file ({err})") from None
    except BTFError as err:
        raise ObjectError(f"bad object {shown}: bad BTF ({err})") from None
    except (
        ValueError,
        KeyError,
        IndexError,
        AttributeError,
        TypeError,
        struct.error,
        OverflowError,
        MemoryError,
        RecursionError,
        AssertionError,
    ) as err:
        # pyelftools' own parsing of a damaged file (construct's errors are ValueError-like or
        # plain exceptions of its own): still a bad file, never an internal error
        raise ObjectError(f"bad object {shown}: {type(err).__name__}: {quote(str(err), bare=True)}") from None
    except Exception as err:
        if type(err).__module__.split(".")[0] in ("elftools", "construct"):
            raise ObjectError(f"bad object {shown}: {type(err).__name__}: {quote(str(err), bare=True)}") from None
        raise


class _Damaged(Exception):
    pass


def _check_layout(elf, size: int) -> None:
    """Every section's bytes inside the file, and the tables we read of the type we read
    them as, before any is read (a damaged size would otherwise ask for gigabytes)."""
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.sections import SymbolTableSection

    n = elf.num_sections()
    if n > 65536:
        raise _Damaged(f"{n} sections")
    for i in range(n):
        sec = elf.get_section(i)
        if sec["sh_type"] != "SHT_NOBITS" and sec["sh_offset"] + sec["sh_size"] > size:
            raise _Damaged(
                f"section {i} ({sec.name!r}) ends at byte {sec['sh_offset'] + sec['sh_size']:,}, "
                f"past the end of the file ({size:,} bytes)"
            )
        if sec.name == ".symtab" and not isinstance(sec, SymbolTableSection):
            raise _Damaged(f"section {i} (.symtab) is not a symbol table ({sec['sh_type']})")
        if isinstance(sec, RelocationSection):
            link = sec["sh_link"]
            if not (0 <= link < n and isinstance(elf.get_section(link), SymbolTableSection)):
                raise _Damaged(f"relocation section {i} ({sec.name!r}) links to section {link}, not a symbol table")


def _read(path: str, elf) -> BpfObject:
    if elf["e_machine"] != "EM_BPF":
        raise ObjectError(f"object {path}: an ELF file for {elf['e_machine']}, not BPF (clang -target bpf)")
    if elf.little_endian is not (struct.pack("=H", 1) == b"\x01\x00"):
        raise ObjectError(f"object {path}: compiled for the other byte order")
    btf_sec = elf.get_section_by_name(".BTF")
    if btf_sec is None:
        raise ObjectError(f"object {path}: no .BTF section; compile with -g (BTF-defined maps need BTF)")
    raw = bytearray(btf_sec.data())
    btf = BTF(bytes(raw))
    symtab = elf.get_section_by_name(".symtab")
    symbols: dict[tuple[int, str], int] = {}  # (section index, name) -> value
    by_offset: dict[tuple[int, int], str] = {}  # (section index, value) -> name
    if symtab is not None:
        for sym in symtab.iter_symbols():
            shndx = sym["st_shndx"]
            if isinstance(shndx, int):
                symbols[(shndx, sym.name)] = sym["st_value"]
                if sym["st_info"]["type"] == "STT_OBJECT":
                    by_offset[(shndx, sym["st_value"])] = sym.name
    sections = {s.name: (i, s) for i, s in enumerate(elf.iter_sections())}
    _fix_datasecs(raw, btf, sections, symbols)
    maps: list[MapDef] = []
    if ".maps" not in sections:
        maps += _global_maps(path, BTF(bytes(raw)), sections)
        return BpfObject(path, maps, bytes(raw))
    maps_idx, _ = sections[".maps"]
    datasec = next(
        (btf.type(t) for t in btf.ids() if btf.type(t).kind == Kind.DATASEC and btf.type(t).name == ".maps"), None
    )
    if datasec is None:
        raise ObjectError(f"object {path}: a .maps section but no BTF for it (compile with -g)")
    fixed = BTF(bytes(raw))
    relocs = _map_relocations(elf, maps_idx)
    for var_info in fixed.type(datasec.id).members:
        var = fixed.type(var_info.type)
        if var.kind != Kind.VAR:
            continue
        d = _parse_def(fixed, var.name, var.type, path)
        offset = var_info.bit_offset // 8
        if d.inner is not None:
            values_off = _member_offset(fixed, var.type, "values")
            for roff, target in relocs:
                if offset + values_off <= roff < offset + var_info.bit_size:
                    d.slots[(roff - offset - values_off) // 8] = target
        maps.append(d)
    maps += _global_maps(path, fixed, sections)
    return BpfObject(path, maps, bytes(raw))


_DATA_PREFIXES = (".data", ".rodata", ".bss")


def _is_data_section(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in _DATA_PREFIXES) and not name.startswith(".rodata.str")


def internal_map_name(obj_path: str, section: str) -> str:
    """libbpf's name for the map of a global-variable section: as many characters of
    the object's name (its file name up to the first dot) as leave room for the section
    name, at least 7 of it (``minimal.rodata``, ``minimal.bss``); a section with a
    second dot (``.data.knobs``) goes alone; characters the kernel refuses become ``_``."""
    import re

    obj_name = os.path.basename(obj_path).split(".", 1)[0]
    sfx_len = max(7, len(section))
    pfx_len = 0 if "." in section[1:] else min(15 - sfx_len, len(obj_name))
    name = (obj_name[: max(pfx_len, 0)] + section[:sfx_len])[:15]
    return re.sub(r"[^A-Za-z0-9_.]", "_", name)


def _global_maps(path: str, btf: BTF, sections: dict) -> list[MapDef]:
    """The one-entry arrays libbpf makes of an object's global variables (.data, .rodata,
    .bss, .data.NAME..., and .kconfig for ``__kconfig`` externs), in section order: value
    BTF the section's DATASEC, no key BTF, BPF_F_MMAPABLE, .rodata and .kconfig also
    BPF_F_RDONLY_PROG and frozen once written, as libbpf 1.x creates them."""
    datasecs = {t.name: t for t in (btf.type(i) for i in btf.ids()) if t.kind == Kind.DATASEC}
    found: list[tuple[int, str, int, bytes]] = []  # (order, section, size, initial bytes)
    for name, (idx, sec) in sections.items():
        if not _is_data_section(name) or not sec["sh_size"]:
            continue
        nobits = sec["sh_type"] == "SHT_NOBITS"
        if not nobits and sec["sh_type"] != "SHT_PROGBITS":
            continue
        found.append((idx, name, sec["sh_size"], bytes(sec["sh_size"]) if nobits else sec.data()))
    kconfig = datasecs.get(".kconfig")
    if kconfig is not None and kconfig.size:
        found.append((1 << 30, ".kconfig", kconfig.size, _kconfig_values(path, btf, kconfig)))
    out = []
    for _order, name, size, data in sorted(found):
        d = MapDef(internal_map_name(path, name))
        d.type, d.key_size, d.value_size, d.max_entries = MapType.ARRAY, 4, size, 1
        d.freeze = name.startswith(".rodata") or name == ".kconfig"
        d.flags = MapFlag.MMAPABLE | (MapFlag.RDONLY_PROG if d.freeze else MapFlag(0))
        d.section, d.initial = name, data
        sec_type = datasecs.get(name)
        if sec_type is not None and sec_type.size == size:
            from .btf.convert import c_declaration

            d.value_type_id = sec_type.id
            d.value_c = c_declaration(btf, sec_type.id).rstrip()
        out.append(d)
    return out


def _kconfig_values(path: str, btf: BTF, sec) -> bytes:
    """The .kconfig map's bytes as libbpf fills them: LINUX_KERNEL_VERSION from uname,
    CONFIG_* from the running kernel's config (/proc/config.gz or /boot/config-RELEASE):
    bools and tristates (``enum libbpf_tristate``: n 0, y 1, m 2), integers and char
    arrays; an option the kernel does not set reads 0 (n)."""
    config = _kernel_config()
    buf = bytearray(sec.size)
    for m in sec.members:
        var = btf.type(m.type)
        if var.kind != Kind.VAR:
            continue
        off, size = m.bit_offset // 8, m.bit_size
        t = btf.resolve(var.type)
        name = var.name
        if name == "LINUX_KERNEL_VERSION":
            major, minor, patch = (list(map(int, _release_numbers())) + [0, 0, 0])[:3]
            value: int | bytes = (major << 16) + (minor << 8) + min(patch, 255)
        elif name.startswith("CONFIG_"):
            raw = config.get(name)
            if raw is None:
                continue  # an option this kernel does not set reads 0 (n), as a __weak extern does
            value = _kconfig_value(t, raw)
        else:
            continue  # other LINUX_* externs: 0, as on a kernel without them
        if isinstance(value, bytes):
            buf[off : off + size] = value[:size].ljust(size, b"\0")
        else:
            buf[off : off + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    return bytes(buf)


def _release_numbers() -> list[str]:
    import re

    return re.findall(r"\d+", os.uname().release.split("-")[0])[:3]


def _kconfig_value(t, raw: str) -> int | bytes:
    if t.kind == Kind.ARRAY:
        return raw.strip('"').encode()
    if t.kind == Kind.ENUM and t.name == "libbpf_tristate":
        return {"y": 1, "m": 2}.get(raw, 0)
    if raw in ("y", "m", "n"):
        return {"y": 1, "m": 1 if t.size == 1 else 2}.get(raw, 0)
    try:
        return int(raw, 0)
    except ValueError:
        return 0


def _kernel_config() -> dict[str, str]:
    """CONFIG_NAME -> its value text, from /proc/config.gz or /boot/config-RELEASE (empty
    when neither is there)."""
    import gzip

    text = ""
    try:
        with gzip.open("/proc/config.gz", "rt", errors="replace") as f:
            text = f.read()
    except OSError:
        try:
            with open(f"/boot/config-{os.uname().release}", errors="replace") as f:
                text = f.read()
        except OSError:
            return {}
    out = {}
    for line in text.splitlines():
        name, eq, value = line.partition("=")
        if eq and name.startswith("CONFIG_"):
            out[name] = value
    return out


def _fix_datasecs(raw: bytearray, btf: BTF, sections: dict, symbols: dict) -> None:
    """As libbpf's btf_fixup_datasec: DATASEC sizes from the ELF sections and variable
    offsets from the symbols (clang leaves them 0); the kernel refuses a 0-size DATASEC.
    Extern variables (``__kconfig``) become allocated ones laid out one after another,
    as libbpf lays out its .kconfig map; the kernel refuses extern linkage."""
    for tid in btf.ids():
        t = btf.type(tid)
        if t.kind != Kind.DATASEC:
            continue
        if t.name not in sections:
            _fix_extern_datasec(raw, btf, t)
            continue
        idx, sec = sections[t.name]
        pos = btf.offset_of(tid)
        if sec["sh_size"] > 0xFFFFFFFF:
            raise _Damaged(f"section {t.name!r} is {sec['sh_size']:,} bytes, more than BTF can describe")
        struct.pack_into("<I", raw, pos + 8, sec["sh_size"])
        for i, m in enumerate(t.members):
            var = btf.type(m.type)
            value = symbols.get((idx, var.name))
            if value is not None:
                if not 0 <= value <= sec["sh_size"]:
                    raise _Damaged(f"symbol {var.name!r} at offset {value:,}, outside its section {t.name!r}")
                struct.pack_into("<I", raw, pos + 12 + 12 * i + 4, value)


def _fix_extern_datasec(raw: bytearray, btf: BTF, sec) -> None:
    pos = btf.offset_of(sec.id)
    off = 0
    for i, m in enumerate(sec.members):
        var = btf.type(m.type)
        if var.kind != Kind.VAR:
            return  # extern functions (__ksym): left as they are; the BTF may then be refused
        size = btf.size_of(var.type)
        off = (off + min(size, 8) - 1) // min(size, 8) * min(size, 8) if size else off
        struct.pack_into("<I", raw, btf.offset_of(var.id) + 12, 1)  # BTF_VAR_GLOBAL_ALLOCATED
        struct.pack_into("<II", raw, pos + 12 + 12 * i + 4, off, size)
        off += size
    struct.pack_into("<I", raw, pos + 8, off)


def _map_relocations(elf, maps_idx: int) -> list[tuple[int, str]]:
    """(offset in .maps, symbol name) for every relocation against .maps: the map
    pointers map-in-map definitions hold in ``values``."""
    from elftools.elf.relocation import RelocationSection

    out = []
    for sec in elf.iter_sections():
        if isinstance(sec, RelocationSection) and sec["sh_info"] == maps_idx:
            symtab = elf.get_section(sec["sh_link"])
            for rel in sec.iter_relocations():
                out.append((rel["r_offset"], symtab.get_symbol(rel["r_info_sym"]).name))
    return out


def _member_offset(btf: BTF, tid: int, name: str) -> int:
    t = btf.resolve(tid)
    for m in t.members:
        if m.name == name:
            return m.bit_offset // 8
    return 0


def _uint(btf: BTF, tid: int, what: str, path: str) -> int:
    """The N of ``__uint(what, N)``: a pointer to an array of N ints."""
    ptr = btf.resolve(tid)
    if ptr.kind != Kind.PTR:
        raise ObjectError(f"object {path}: map field {what} is not __uint(...)")
    arr = btf.resolve(ptr.type)
    if arr.kind != Kind.ARRAY:
        raise ObjectError(f"object {path}: map field {what} is not __uint(...)")
    return arr.nelems


def _parse_def(btf: BTF, name: str, tid: int, path: str, inner: bool = False) -> MapDef:
    from .btf.convert import c_declaration

    st = btf.resolve(tid)
    if st.kind != Kind.STRUCT:
        raise ObjectError(f"object {path}: map {name} is not a struct definition (BTF-defined maps only)")
    d = MapDef(name)
    for m in st.members:
        if m.name == "type":
            v = _uint(btf, m.type, m.name, path)
            try:
                d.type = MapType(v)
            except ValueError:
                raise ObjectError(f"object {path}: map {name}: unknown map type {v}") from None
        elif m.name in ("max_entries", "map_flags", "numa_node", "pinning", "map_extra", "key_size", "value_size"):
            v = _uint(btf, m.type, m.name, path)
            attr = {"map_flags": "flags"}.get(m.name, m.name)
            setattr(d, attr, v)
        elif m.name in ("key", "value"):
            ptr = btf.resolve(m.type)
            if ptr.kind != Kind.PTR:
                raise ObjectError(f"object {path}: map {name}: {m.name} is not __type(...)")
            size = btf.size_of(ptr.type)
            given = getattr(d, f"{m.name}_size")
            if given and given != size:
                raise ObjectError(f"object {path}: map {name}: {m.name}_size {given} but the type is {size} bytes")
            setattr(d, f"{m.name}_size", size)
            setattr(d, f"{m.name}_type_id", ptr.type)
            setattr(d, f"{m.name}_c", c_declaration(btf, ptr.type).rstrip())
        elif m.name == "values":
            arr = btf.resolve(m.type)
            if arr.kind != Kind.ARRAY:
                raise ObjectError(f"object {path}: map {name}: values is not __array(...)")
            target = btf.resolve(arr.type)
            if target.kind == Kind.PTR:
                target = btf.resolve(target.type)
            if inner:
                raise ObjectError(f"object {path}: map {name}: maps of maps of maps are not supported")
            if target.kind == Kind.STRUCT:
                d.inner = _parse_def(btf, f"{name}.inner", target.id, path, inner=True)
            if d.value_size and d.value_size != 4:
                raise ObjectError(f"object {path}: map {name}: a map of maps has 4-byte values")
            d.value_size = 4
    if d.type is MapType.UNSPEC:
        raise ObjectError(f"object {path}: map {name} has no __uint(type, ...)")
    if d.type is MapType.PERF_EVENT_ARRAY:  # libbpf fills these in for perf buffers
        d.key_size, d.value_size = d.key_size or 4, d.value_size or 4
        if not d.max_entries:
            from .core.values import possible_cpus

            d.max_entries = possible_cpus()
    if d.type in _NO_BTF:
        d.key_type_id = d.value_type_id = 0
    return d


# -- creating -------------------------------------------------------------------------------


class Created:
    """A map created (or reused) from an object, and where it is pinned."""

    def __init__(self, d: MapDef, m: Map, path: str, reused: bool) -> None:
        self.definition, self.map, self.path, self.reused = d, m, path, reused


def create_maps(obj: BpfObject, pin_dir: str, only: list[str] | None = None) -> list[Created]:
    """Create the maps of ``obj`` (those named in ``only``, default all) and pin each at
    ``pin_dir``/NAME; an existing compatible pin is reused, an incompatible one is
    refused (PinExists, with the differences) before anything is created.  On failure,
    maps pinned by this call are unpinned again."""
    if only is not None:
        for n in only:
            obj.map(n)  # unknown names fail here
    wanted = [
        d for d in obj.maps if only is None or any(obj.map(n) is d for n in only)
    ]  # object order: inner maps first
    plan = _plan(obj, wanted, pin_dir)
    btf_fd = 0
    created: list[Created] = []
    try:
        btf_fd, generated = _load_object_btf(obj, [d for d, _p, m in plan if m is None])
        for d, path, existing in plan:
            if existing is not None:
                created.append(Created(d, existing, path, True))
                continue
            m = _create_one(d, btf_fd, obj if generated else None)
            try:
                m.pin(path)
            except BaseException:
                m.close()
                raise
            created.append(Created(d, m, path, False))
        _fill_slots(obj, created, pin_dir)
    except BaseException:
        for c in created:
            if not c.reused:
                try:
                    os.unlink(c.path)
                except OSError:
                    pass
            c.map.close()
        raise
    finally:
        if btf_fd:
            os.close(btf_fd)
    return created


def _plan(obj: BpfObject, wanted: list[MapDef], pin_dir: str) -> list[tuple[MapDef, str, Map | None]]:
    """(definition, pin path, the compatible map pinned there or None) for each map; an
    incompatible pin is PinExists, before anything is created."""
    plan: list[tuple[MapDef, str, Map | None]] = []
    try:
        for d in wanted:
            path = os.path.join(pin_dir, d.pin_name)
            existing = None
            if os.path.lexists(path):
                try:
                    existing = Map.open(path)
                except BpfmapError as err:
                    raise PinExists(
                        f"create {d.name} from {obj.path}: {path} exists and is not a map bpfmap "
                        f"can open ({err}); remove it or pin elsewhere",
                        errno.EEXIST,
                    ) from None
                diff = d.spec.compatible(existing.info(), "object")
                if diff:
                    existing.close()
                    raise PinExists(
                        f"create {d.name} from {obj.path}: {path} is pinned with an incompatible map: "
                        f"{'; '.join(diff)}; remove the pin (rm {path}) or change the object",
                        errno.EEXIST,
                    )
            plan.append((d, path, existing))
    except BaseException:
        for _d, _p, m in plan:
            if m is not None:
                m.close()
        raise
    return plan


def _load_object_btf(obj: BpfObject, new: list[MapDef]) -> tuple[int, bool]:
    """(fd of the object's BTF loaded in the kernel or 0, whether to generate BTF per map
    instead) for the maps about to be created."""
    from . import btf as btfmod

    if not any(d.key_type_id or d.value_type_id for d in new):
        return 0, False
    try:
        return btfmod.load(btfmod.BtfSpec(obj.btf_data, 0, 0)), False
    except BpfmapError as err:
        # BTF this kernel cannot take (extern functions, newer kinds): give each map BTF
        # generated from its key and value types instead, which decodes the same
        obj.btf_note = f"{err}; the maps carry BTF generated from their key and value types instead of the object's"
        return 0, True


def _create_one(d: MapDef, btf_fd: int, generate_from: BpfObject | None = None) -> Map:
    from .btf import BtfSpec, spec_for, to_model

    inner = None
    if d.inner is not None:
        inner = _create_one(d.inner, btf_fd, generate_from)  # with its own BTF, as libbpf does
    try:
        types = None
        if d.key_type_id or d.value_type_id:
            if generate_from is not None:
                btf = BTF(generate_from.btf_data)
                # the kernel takes a value-only BTF for a one-entry array only when the value is a
                # DATASEC; generated BTF describes a section as a struct, so it gets a u32 key
                from .layout.model import SCALARS

                no_key = SCALARS["u32"] if d.section else None
                types = spec_for(
                    to_model(btf, d.key_type_id, "key") if d.key_type_id else no_key,
                    to_model(btf, d.value_type_id, "value") if d.value_type_id else None,
                )
            elif btf_fd:
                types = BtfSpec(b"", d.key_type_id, d.value_type_id, fd=btf_fd)
        spec = d.spec.replace(btf=types, inner=None)
        m = Map.create(spec, inner_map=inner, btf_required=types is not None)
        if d.initial is not None:  # a global-variable map: its section's bytes, then frozen if read-only
            try:
                if any(d.initial):
                    m.update(bytes(4), d.initial)
                if d.freeze:
                    m.freeze()
            except BaseException:
                m.close()
                raise
        return m
    finally:
        if inner is not None:
            inner.close()  # the outer map keeps what it needs of the template


def _fill_slots(obj: BpfObject, created: list[Created], pin_dir: str) -> None:
    """Put the maps a map-in-map definition names in its slots (libbpf's init_slots)."""
    by_name = {c.definition.name: c.map for c in created}
    for c in created:
        if c.reused:
            continue  # a map in use keeps what its slots hold, as libbpf leaves reused maps alone
        for index, name in c.definition.slots.items():
            target = by_name.get(name)
            opened = None
            if target is None:  # not created in this call (--only): its pin, if there is one
                try:
                    opened = target = Map.open(os.path.join(pin_dir, name))
                except BpfmapError:
                    raise KernelError(
                        f"create {c.definition.name} from {obj.path}: slot {index} holds map "
                        f"{name}, which was not created (add it to --only)",
                        errno.ENOENT,
                    ) from None
            try:
                c.map.update(index.to_bytes(4, "little"), target)
            finally:
                if opened is not None:
                    opened.close()


__all__ = ["BpfObject", "Created", "MapDef", "ObjectError", "create_maps", "read_object"]
