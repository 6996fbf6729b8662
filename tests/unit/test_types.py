import pytest

from bpfmap import MapFlag, MapType, UsageError
from bpfmap.types import SPECS, Access


@pytest.mark.parametrize(
    "text", ["lru_percpu_hash", "lru-percpu-hash", "LRU_PERCPU_HASH", "BPF_MAP_TYPE_LRU_PERCPU_HASH"]
)
def test_type_names(text):
    assert MapType.parse(text) is MapType.LRU_PERCPU_HASH


def test_unknown_type_lists_the_known_ones():
    with pytest.raises(UsageError, match="unknown map type 'hashh'.*lru_hash"):
        MapType.parse("hashh")


def test_flags_parse_names_and_numbers():
    assert MapFlag.parse("no_prealloc,rdonly-prog") == MapFlag.NO_PREALLOC | MapFlag.RDONLY_PROG
    assert MapFlag.parse("0x400") == MapFlag.MMAPABLE
    assert MapFlag.parse("") == MapFlag(0)
    with pytest.raises(UsageError, match="unknown map flag 'fast'"):
        MapFlag.parse("fast")


def test_every_spec_is_consistent():
    for mtype, s in SPECS.items():
        if s.access in (Access.QUEUE, Access.STACK, Access.BLOOM):
            assert s.key_size == 0, mtype
        if s.needs_inner_map:
            assert s.value_size == 4, mtype
        assert s.required_flags & ~s.default_flags == 0, mtype
