"""layout/pick.pick, the one choice of a map's codecs, without the kernel: the type's own
display for a side no layout names (or the map's BTF describes), the user's layout for a
side it lays out, on every type that has a display of its own."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bpfmap.errors import UsageError
from bpfmap.layout import CidrCodec, HexCodec, IdCodec, IndexCodec, Layout, TypeCodec
from bpfmap.layout.pick import pick
from bpfmap.layout.stack import StackCodec
from bpfmap.types import MapType, TypeSpec, spec


@dataclass
class FakeMap:
    type: MapType
    key_size: int
    value_size: int
    flags: int = 0
    ref: str = "/sys/fs/bpf/m"
    kind: TypeSpec = field(init=False)

    def __post_init__(self) -> None:
        self.kind = spec(self.type)

    @property
    def type_label(self) -> str:
        return self.type.label


class Built:
    def __init__(self, display: str, size: int) -> None:
        self.display, self.size = display, size


def _keys(display: str, size: int) -> Built:
    return Built(display, size)


def test_an_lpm_trie_key_is_cidr_unless_laid_out():
    m = FakeMap(MapType.LPM_TRIE, 8, 4)
    assert isinstance(pick(m, None, _keys)[0], CidrCodec)
    laid_out = Layout.parse("prefix=u32,addr=u32:u32")
    key, _ = pick(m, laid_out, _keys)
    assert key is laid_out.key  # the user's layout wins over the CIDR display
    btf = Layout.parse("prefixlen=u32,data=u8[4]:u32")  # the same as the map's BTF: the display
    assert isinstance(pick(m, btf, _keys, from_btf=True)[0], CidrCodec)


def test_a_cgroup_storage_key_is_the_cgroup_unless_laid_out():
    for t in (MapType.CGROUP_STORAGE, MapType.PERCPU_CGROUP_STORAGE):
        m = FakeMap(t, 16, 8)
        key, _ = pick(m, None, _keys)
        assert isinstance(key, Built) and (key.display, key.size) == ("cgroup_storage", 16)
        laid_out = Layout.parse("id=u64,attach=u32,pad=u32:u64")
        assert pick(m, laid_out, _keys)[0] is laid_out.key


def test_stack_ids_and_frames_unless_laid_out():
    m = FakeMap(MapType.STACK_TRACE, 4, 127 * 8)
    key, value = pick(m, None, _keys)
    assert isinstance(key, IndexCodec) and isinstance(value, StackCodec)
    laid_out = Layout.parse(f"u32:u64[{127}]")
    key, value = pick(m, laid_out, _keys)
    assert key is laid_out.key and value is laid_out.value


def test_indices_ids_and_objects():
    assert isinstance(pick(FakeMap(MapType.ARRAY, 4, 8), None, _keys)[0], IndexCodec)
    assert isinstance(pick(FakeMap(MapType.DEVMAP, 4, 4), None, _keys)[0], IndexCodec)
    assert isinstance(pick(FakeMap(MapType.ARRAY, 4, 8), Layout(), _keys)[0], HexCodec)  # a layout: hex
    # BTF of the value only (global-variable maps): the key is still the index
    value_only = Layout.parse("-:u64")
    assert isinstance(
        pick(FakeMap(MapType.ARRAY, 4, 8), value_only, _keys, from_btf=True, btf_key=False)[0], IndexCodec
    )
    assert isinstance(pick(FakeMap(MapType.ARRAY_OF_MAPS, 4, 4), None, _keys)[1], IdCodec)
    key, value = pick(FakeMap(MapType.TASK_STORAGE, 4, 8), Layout.parse("u64"), _keys)
    assert isinstance(key, Built) and key.display == "pid" and isinstance(value, TypeCodec)


def test_a_layout_that_does_not_fit_names_the_map():
    with pytest.raises(UsageError, match="layout for /sys/fs/bpf/m: "):
        pick(FakeMap(MapType.HASH, 4, 8), Layout.parse("u64:u64"), _keys)
    with pytest.raises(UsageError, match="hash maps have keys; write the layout as KEY:VALUE"):
        pick(FakeMap(MapType.HASH, 4, 8), Layout.parse("u64"), _keys)
