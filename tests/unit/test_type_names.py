"""Every map type the kernel's headers and BTF name is one bpfmap knows, by the same name."""

from __future__ import annotations

import os

import pytest
from helpers import kernel_map_types

from bpfmap.types import MapType

TYPES = kernel_map_types()


def test_the_kernel_lists_its_map_types():
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.skip("the kernel has no BTF (/sys/kernel/btf/vmlinux): cannot list its map types")
    assert len(TYPES) >= 30, TYPES


@pytest.mark.parametrize("name,number", TYPES, ids=[t[0] for t in TYPES])
def test_bpfmap_knows_every_kernel_map_type(name, number):
    assert MapType(number).label == name
