""" "A layout or a C header" is decided once (bpfmap.layout.choose): the library's calls
take include directories as the command line's -I does, and every caller words the same
rules in its own names."""

from __future__ import annotations

import pytest

import bpfmap
from bpfmap.api import as_layout
from bpfmap.layout import Layout, layout_fault


@pytest.fixture
def header(tmp_path):
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "flow.h").write_text("struct flow { unsigned int addr; unsigned short port; };\n")
    h = tmp_path / "types.h"
    h.write_text("#include <flow.h>\nstruct stats { unsigned long long packets; };\n")
    return str(h), str(inc)


def test_python_callers_give_include_directories(header):
    h, inc = header
    lay = as_layout(None, c_header=h, key_type="struct flow", value_type="struct stats", include_dirs=[inc])
    assert lay is not None and (lay.key.size, lay.value.size) == (8, 8)


def test_the_rules_are_the_same_for_every_caller_in_its_own_words(header):
    h, inc = header
    with pytest.raises(bpfmap.UsageError, match="^give either layout or c_header, not both$"):
        as_layout("u32:u64", c_header=h, key_type="struct flow")
    with pytest.raises(bpfmap.UsageError, match="^include_dirs goes with c_header$"):
        as_layout("u32:u64", include_dirs=[inc])
    with pytest.raises(bpfmap.UsageError, match="^c_header: name the types with key_type and/or value_type$"):
        as_layout(None, c_header=h)
    names = {"key_type": "--key-type", "value_type": "--value-type", "c_header": "--c-header FILE"}
    assert layout_fault(False, key_type=True, names=names) == "--key-type and --value-type need --c-header FILE"


def test_packed_is_the_layout_without_padding():
    lay = as_layout("u8:u64", packed=False)
    packed = as_layout("{a=u8,b=u64}:u8", packed=True)
    assert isinstance(lay, Layout) and packed is not None and packed.key.size == 9
