"""The typed API: ``bpfmap.open`` and ``bpfmap.create`` give a View, a dict-like map whose
keys and values are Python values (records for structs) instead of bytes.

    with bpfmap.open("/sys/fs/bpf/flows") as flows:      # layout from BTF; layout=/c_header= too
        for key, value in flows.items():
            print(key.saddr, value.packets)
        flows[("10.0.0.1", 443)] = {"packets": 1, "comm": "curl"}

Layouts are a layout string (``"u32:u64"``), a Layout, C declarations (``c_header=``,
``key_type=``, ``value_type=``) or a pair of ctypes types (``(KeyStruct, ValueStruct)``).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from .core.maps import Map
from .errors import Param, UsageError, words
from .layout import Layout, TypeCodec, choose
from .types import MapType
from .types import spec as type_spec
from .view import View

if TYPE_CHECKING:
    from .btf import BtfSpec

LayoutLike = Any  # str | Layout | tuple of ctypes types | None


def open(
    ref: str,
    layout: LayoutLike = None,
    c_header: str | None = None,
    key_type: str | None = None,
    value_type: str | None = None,
    readonly: bool = False,
    include_dirs: list[str] | None = None,
) -> View:
    """Open a map by pin, ``id:N`` or ``name:NAME`` as a typed, dict-like View (which
    closes the map when closed).  Without a layout: the map's BTF, else bytes as hex.
    ``include_dirs``: where a ``c_header``'s ``#include`` files are found too."""
    lay = as_layout(layout, c_header, key_type, value_type, include_dirs)
    m = Map.open(ref, readonly=readonly)
    try:
        return View(m, lay, owns=True)
    except BaseException:
        m.close()
        raise


def create(
    map_type: MapType | str,
    layout: LayoutLike = None,
    pin: str | None = None,
    *fields: Any,
    c_header: str | None = None,
    key_type: str | None = None,
    value_type: str | None = None,
    include_dirs: list[str] | None = None,
    mkdir: bool = False,
    mount: bool = True,
    **named: Any,
) -> View:
    """Create a map (sizes from the layout, which is attached as BTF so bpftool and a later
    ``bpfmap.open`` decode it), pin it at ``pin`` when given, and return it as a View.
    ``fields``/``named``: the MapSpec's other fields in its order (key_size, value_size,
    max_entries, flags, name) or by name (also numa_node, map_extra); sizes the layout
    gives are checked against them.  ``include_dirs``: where a ``c_header``'s ``#include``
    files are found too.  The pin is checked before the map is made, as
    :meth:`Map.create <bpfmap.core.maps.Map.create>` does: never replaced, its
    directories made with ``mkdir``, a bpffs mounted on /sys/fs/bpf with ``mount``."""
    from .core.spec import MapSpec

    mspec = MapSpec(map_type, *fields, **named)
    lay = as_layout(layout, c_header, key_type, value_type, include_dirs)
    if lay is not None:
        key_size, value_size, types = sizes_and_btf(mspec.type, lay, mspec.key_size, mspec.value_size)
        mspec = mspec.replace(key_size=key_size, value_size=value_size, btf=types)
    m = Map.create(mspec, pin=pin, mkdir=mkdir, mount=mount)
    try:
        return View(m, lay, owns=True)
    except BaseException:
        m.close()
        raise


def as_layout(
    layout: LayoutLike,
    c_header: str | None = None,
    key_type: str | None = None,
    value_type: str | None = None,
    include_dirs: list[str] | None = None,
    packed: bool = False,
) -> Layout | None:
    """A Layout from what the API takes: a layout string, a Layout, a (key, value) pair of
    ctypes types, or C declarations (``c_header`` with ``key_type``/``value_type``, its
    includes found beside it and in ``include_dirs``); ``packed``: the layout without
    padding.  Which of them is :func:`bpfmap.layout.choose`'s to say."""
    return choose(_one_layout(layout), packed, c_header, key_type, value_type, include_dirs)


def _one_layout(layout: LayoutLike) -> Layout | None:
    if layout is None or isinstance(layout, Layout):
        return layout
    if isinstance(layout, str):
        return Layout.parse(layout)
    if isinstance(layout, tuple) and len(layout) == 2:
        key, value = (ctypes_layout(t) if t is not None else "-" for t in layout)
        return Layout.parse(f"{key}:{value}")
    if isinstance(layout, type) and (hasattr(layout, "_fields_") or hasattr(layout, "_length_")):
        return Layout.parse(ctypes_layout(layout))  # one side: a queue's or stack's value
    raise UsageError(f"layout {layout!r}: give a layout string, a Layout or a (key, value) pair of ctypes types")


def ctypes_layout(t: Any) -> str:
    """The layout language for a ctypes type: structures (``_fields_``; ``_pack_ = 1`` is
    ``packed``), arrays (``c_char * 16`` is ``char[16]``), integers, floats and bools; a
    BigEndianStructure's integers become be16/be32/be64.  Unions and bitfields are refused
    (a C header says those).  Duck-typed: only _sys/ imports ctypes."""
    if hasattr(t, "_fields_"):
        return ("packed " if getattr(t, "_pack_", 0) == 1 else "") + _struct_fields(t)
    return _field_type(t, False)


def _struct_fields(t: Any) -> str:
    if any(c.__name__ in ("Union", "BigEndianUnion", "LittleEndianUnion") for c in t.__mro__):
        raise UsageError(f"ctypes {t.__name__}: unions have no layout form; use a C header")
    big = any(c.__name__ == "BigEndianStructure" for c in t.__mro__)
    fields = []
    for spec in t._fields_:
        if len(spec) != 2:
            raise UsageError(f"ctypes {t.__name__}: bitfields ({spec[0]}) have no layout form; use a C header")
        name, ftype = spec
        fields.append(f"{name}={_field_type(ftype, big)}")
    return ",".join(fields)


def _field_type(ftype: Any, big: bool) -> str:
    if hasattr(ftype, "_length_"):  # an array
        if getattr(ftype._type_, "_type_", None) == "c":
            return f"char[{ftype._length_}]"
        return f"{_field_type(ftype._type_, big)}[{ftype._length_}]"
    if hasattr(ftype, "_fields_"):
        return "{" + _struct_fields(ftype) + "}"
    code = getattr(ftype, "_type_", None)
    if not isinstance(code, str) or len(code) != 1 or code not in "bBhHiIlLqQfd?c":
        raise UsageError(f"ctypes type {getattr(ftype, '__name__', ftype)} has no layout form")
    if code in "fd":
        return "f32" if code == "f" else "f64"
    if code == "?":
        return "bool"
    size = 1 if code == "c" else struct.calcsize(code)  # native sizes, as ctypes lays them out
    if size == 1:
        return "s8" if code == "b" else "u8"
    if big:
        return f"be{size * 8}"
    return f"{'s' if code.islower() else 'u'}{size * 8}"


def sizes_and_btf(
    mtype: MapType, lay: Layout, key: int | None, value: int | None, btf: bool = True
) -> tuple[int | None, int | None, BtfSpec | None]:
    """(key size, value size, BtfSpec or None) for creating a ``mtype`` map through a layout:
    the sizes from the layout (checked against ``key``/``value`` when given)."""
    from .btf import spec_for

    kind = type_spec(mtype)
    keyless = kind.key_size == 0
    key_codec = None if keyless else lay.key
    value_codec = lay.bare if keyless and lay.bare is not None else lay.value
    if kind.needs_btf and lay.bare is not None and lay.value is None:  # local storage: the value alone
        from .layout.model import SCALARS

        key_codec, value_codec = TypeCodec(SCALARS["s32"]), lay.bare
    if kind.needs_btf and key_codec is not None and key_codec.size != 4:
        raise UsageError(
            f"create {mtype.label}: the key of a {mtype.label} map is an int (the object's fd): "
            f"give the layout as s32:VALUE or just VALUE"
        )
    if keyless and lay.key is not None and lay.bare is None:
        raise UsageError(f"create {mtype.label}: {mtype.label} maps have no key; give the layout as VALUE (no ':')")
    if not keyless and lay.bare is not None and lay.value is None and not kind.needs_btf:
        raise UsageError(f"create {mtype.label}: write the layout as KEY:VALUE")
    for what, codec, given in (("key", key_codec, key), ("value", value_codec, value)):
        if codec is not None and given is not None and codec.size != given:
            raise UsageError(
                words(
                    f"create {mtype.label}: the layout's {what} is {codec.size} bytes but ",
                    Param(f"{what}_size"),
                    f" says {given}",
                )
            )
    key = key if key is not None or key_codec is None else key_codec.size
    value = value if value is not None or value_codec is None else value_codec.size
    if not btf:
        return key, value, None
    key_t = getattr(key_codec, "type", None)
    value_t = getattr(value_codec, "type", None)
    if key_t is None and value_t is None:
        return key, value, None
    return key, value, spec_for(key_t, value_t)
