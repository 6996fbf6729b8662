"""Reading a compiled BPF object: the maps it declares and its BTF, fixed up as libbpf
fixes it.  Deterministic: the same file reads the same on any machine; what depends on
the machine (possible CPUs, the kernel's config) is resolved when maps are created."""

from __future__ import annotations

import difflib
import io
import os
import re
import struct
from typing import Any

from ..btf.convert import c_declaration, to_model
from ..btf.wire import BTF, BTFError, Kind
from ..core.spec import MapSpec
from ..errors import UsageError, quote
from ..host.inputs import OBJECT_LIMIT, read_bytes
from ..layout import TypeCodec
from ..types import MapFlag, MapType
from ..types import spec as type_spec
from .fixups import Damaged, fix_datasecs

PIN_NONE, PIN_BY_NAME = 0, 1
_PIN_NAMES = {PIN_NONE: "none", PIN_BY_NAME: "by_name"}


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

    def to_dict(self) -> dict[str, Any]:
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

    def type_codec(self, ctype: str) -> TypeCodec:
        """A codec for a type of the object's BTF named as in C: ``struct event``,
        ``union u``, ``enum e`` or a typedef/base name (``__u64``, ``event_t``); ``struct
        X`` also finds a typedef X of a struct, and a bare name a struct, union or enum.
        For records a program writes to ring and perf buffers: their type lives in the
        object (it is there when a map, a global or a function uses it)."""
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
    except Damaged as err:
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


def _check_layout(elf: Any, size: int) -> None:  # elf: an elftools ELFFile
    """Every section's bytes inside the file, and the tables we read of the type we read
    them as, before any is read (a damaged size would otherwise ask for gigabytes)."""
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.sections import SymbolTableSection

    n = elf.num_sections()
    if n > 65536:
        raise Damaged(f"{n} sections")
    for i in range(n):
        sec = elf.get_section(i)
        if sec["sh_type"] != "SHT_NOBITS" and sec["sh_offset"] + sec["sh_size"] > size:
            raise Damaged(
                f"section {i} ({sec.name!r}) ends at byte {sec['sh_offset'] + sec['sh_size']:,}, "
                f"past the end of the file ({size:,} bytes)"
            )
        if sec.name == ".symtab" and not isinstance(sec, SymbolTableSection):
            raise Damaged(f"section {i} (.symtab) is not a symbol table ({sec['sh_type']})")
        if isinstance(sec, RelocationSection):
            link = sec["sh_link"]
            if not (0 <= link < n and isinstance(elf.get_section(link), SymbolTableSection)):
                raise Damaged(f"relocation section {i} ({sec.name!r}) links to section {link}, not a symbol table")


def _read(path: str, elf: Any) -> BpfObject:
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
    legacy = sorted(n for n in sections if n == "maps" or n.startswith("maps/"))
    if legacy:
        raise ObjectError(
            f"object {quote(path, bare=True)}: section {quote(legacy[0])} holds legacy map definitions "
            f'(struct bpf_map_def), which libbpf >= 1.0 refuses too; declare the maps in SEC(".maps") '
            f"with __uint(type, ...), __type(key, ...), __type(value, ...) (BTF-defined maps)"
        )
    fix_datasecs(raw, btf, sections, symbols)
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

    obj_name = os.path.basename(obj_path).split(".", 1)[0]
    sfx_len = max(7, len(section))
    pfx_len = 0 if "." in section[1:] else min(15 - sfx_len, len(obj_name))
    name = (obj_name[: max(pfx_len, 0)] + section[:sfx_len])[:15]
    return re.sub(r"[^A-Za-z0-9_.]", "_", name)


def _global_maps(path: str, btf: BTF, sections: dict[str, Any]) -> list[MapDef]:
    """The one-entry arrays libbpf makes of an object's global variables (.data, .rodata,
    .bss, .data.NAME..., and .kconfig for ``__kconfig`` externs), in section order: value
    BTF the section's DATASEC, no key BTF, BPF_F_MMAPABLE when the section holds a variable
    that is not static, .rodata and .kconfig also BPF_F_RDONLY_PROG and frozen once
    written, as libbpf 1.x creates them."""
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
        found.append((1 << 30, ".kconfig", kconfig.size, bytes(kconfig.size)))  # filled at creation
    out = []
    for _order, name, size, data in sorted(found):
        d = MapDef(internal_map_name(path, name))
        d.type, d.key_size, d.value_size, d.max_entries = MapType.ARRAY, 4, size, 1
        d.freeze = name.startswith(".rodata") or name == ".kconfig"
        d.flags = MapFlag.RDONLY_PROG if d.freeze else MapFlag(0)
        d.section, d.initial = name, data
        sec_type = datasecs.get(name)
        if sec_type is not None and sec_type.size == size:
            d.value_type_id = sec_type.id
            d.value_c = c_declaration(btf, sec_type.id).rstrip()
            if _has_global_variable(btf, sec_type):
                d.flags |= MapFlag.MMAPABLE
        out.append(d)
    return out


def _has_global_variable(btf: BTF, datasec: Any) -> bool:
    """libbpf's rule (map_is_mmapable, 1.x): a global-data map is BPF_F_MMAPABLE only when
    its section's DATASEC holds a variable that is not static (a global, or an extern as
    in .kconfig); a section of static variables alone (runqlat's ``.bss``) is not."""
    for m in datasec.members:
        t = btf.type(m.type)
        if t.kind == Kind.VAR and t.linkage != 0:
            return True
    return False


def _map_relocations(elf: Any, maps_idx: int) -> list[tuple[int, str]]:
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
            d.max_entries = None  # the possible CPUs, resolved when the map is created
    if not type_spec(d.type).libbpf_btf:  # libbpf creates these without (bpf_object__create_map)
        d.key_type_id = d.value_type_id = 0
    return d
