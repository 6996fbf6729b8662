"""Which codecs a map gets: the one place that reads a map type's displays
(types.TypeSpec) against a layout.

A side the user lays out is shown as laid out, on every map type; the type's own
display (array indices as numbers, an LPM trie's key as CIDR, a cgroup storage key as
the cgroup, stack ids and frames, map and program ids, the objects local storage is
keyed by) is for a side that no layout names, or that the map's BTF describes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ..errors import UsageError
from ..types import Access, MapFlag, TypeSpec, Value
from . import Codec, HexCodec, IdCodec, IndexCodec, Layout, TypeCodec, cidr_key
from .model import SCALARS

if TYPE_CHECKING:
    from ..host.hostnames import Names

# Builds the key codec of a display that needs the live system (core/objrefs.key_codec):
# the kind of object local storage is keyed by ("pid", "sock", ...), or "cgroup_storage".
ObjectKeys = Callable[[str, int], Codec]

_IDS = {Value.MAP_ID: "map", Value.PROG_ID: "program"}


class Shape(Protocol):
    """What the choice reads of a map (a Map or a saved one has it)."""

    @property
    def ref(self) -> str: ...
    @property
    def type_label(self) -> str: ...
    @property
    def kind(self) -> TypeSpec: ...
    @property
    def key_size(self) -> int: ...
    @property
    def value_size(self) -> int: ...
    @property
    def flags(self) -> int: ...


def pick(
    m: Shape,
    layout: Layout | None,
    object_keys: ObjectKeys,
    from_btf: bool = False,
    btf_key: bool = True,
    names: Names | None = None,
) -> tuple[Codec, Codec]:
    """The key and value codecs of map ``m`` seen through ``layout`` (None: none given, so
    hex, with 4-byte array indices as numbers); ``from_btf``: the layout is the map's BTF,
    which has a key type when ``btf_key``.  Raises UsageError for a layout whose sizes do
    not fit the map's.  ``names``: who names the host's objects in frames (a saved map's
    saving host; None: this one)."""
    kind, key_size, value_size, ref = m.kind, m.key_size, m.value_size, m.ref
    index_keys = kind.indexed and key_size == 4 and (not btf_key if from_btf else layout is None)
    layout = layout or Layout()
    if kind.access is Access.OBJECT:  # local storage: keys are objects, shown as dump finds them
        laid_out = layout.value if layout.value is not None else layout.bare
        return object_keys(kind.object or "", key_size), _fit(laid_out, value_size, "value", ref)
    keyless = key_size == 0
    if layout.bare is not None and not keyless and layout.key is None and layout.value is None:
        raise UsageError(f"layout for {ref}: {m.type_label} maps have keys; write the layout as KEY:VALUE")
    own_key = layout.key is None or from_btf  # the type's display of keys, unless the user laid them out
    key: Codec
    if index_keys or (kind.key_display == "stack_id" and layout.key is None and key_size == 4):
        key = IndexCodec()
    else:
        key = _fit(layout.key, key_size, "key", ref)
    if kind.key_display == "cidr" and own_key:  # prefix and address: CIDR in and out
        key = cidr_key(key, key_size) or key
    elif kind.key_display == "cgroup_storage" and own_key:  # the cgroup's path and attach type
        key = object_keys("cgroup_storage", key_size)
    value: Codec
    if keyless and layout.bare is not None:
        value = _fit(layout.bare, value_size, "value", ref)
    elif kind.value in _IDS:
        value = IdCodec(_IDS[kind.value])
    elif kind.value_display == "cookie" and layout.value is None and value_size == 8:
        value = TypeCodec(SCALARS["u64"])  # a socket, read back as its cookie: a number in every verb
    elif kind.value_display == "frames" and (layout.value is None or from_btf) and not value_size % 8:
        from .stack import StackCodec  # frames, symbolized

        if names is None:
            from ..host.hostnames import LIVE

            names = LIVE
        value = StackCodec(value_size, MapFlag.STACK_BUILD_ID in MapFlag(m.flags), names=names)
    else:
        value = _fit(layout.value, value_size, "value", ref)
    return key, value


def _fit(codec: Codec | None, size: int, what: str, ref: str) -> Codec:
    """``codec`` checked against the map's ``size`` of that side; hex when there is none."""
    if codec is None:
        return HexCodec(size)
    try:
        codec.check_size(size, what)
    except UsageError as err:
        raise UsageError(f"layout for {ref}: {err}") from None
    return codec
