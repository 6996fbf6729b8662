"""BPF object files read without the kernel: maps declared with BTF, and what is not an object."""

from __future__ import annotations

import pytest
from helpers import one_line_error
from helpers.programs import OBJECT_MAPS, object_mutants

from bpfmap.objects import ObjectError, read_object


def test_read_object_parses_btf_defined_maps(obj):
    o = read_object(obj)
    assert [d.name for d in o.maps] == OBJECT_MAPS
    flows = o.map("flows")
    assert (flows.type.label, flows.key_size, flows.value_size, flows.max_entries, flows.pinning) == (
        "hash",
        16,
        32,
        1024,
        1,
    )
    assert "struct flow_key {" in flows.key_c and "char comm[16];" in flows.value_c
    recent = o.map("recent")
    assert recent.flags == 2 and (recent.key_size, recent.value_size) == (8, 4)  # BPF_F_NO_COMMON_LRU
    outer = o.map("outer")
    assert outer.slots == {1: "inner_a", 3: "inner_b"} and outer.value_size == 4
    assert (outer.inner.type.label, outer.inner.value_size, outer.inner.max_entries) == ("array", 8, 2)
    assert o.map("by_cpu").inner.type.label == "hash" and o.map("by_cpu").slots == {}
    assert o.map("events").max_entries == 4096 and o.map("events").key_size == 0


def test_not_an_object(tmp_path):
    for path, message in (("/bin/true", "not BPF"), (str(tmp_path / "x"), "No such file")):
        with pytest.raises(ObjectError, match=message):
            read_object(path)
    (tmp_path / "t.txt").write_text("hello")
    with pytest.raises(ObjectError, match="not an ELF"):
        read_object(str(tmp_path / "t.txt"))


def test_damaged_objects_are_bad_input_not_internal_errors(bm, obj, tmp_path):  # noqa: F811
    data = open(obj, "rb").read()
    path = tmp_path / "mutant.o"
    codes = {0: 0, 2: 0}
    for mutant in object_mutants(data, 400, seed=20261126):
        path.write_bytes(mutant)
        code, _out, err = bm("show", "--object", str(path))
        assert code in (0, 2), err
        codes[code] += 1
        if code:
            one_line_error(err)
    assert codes[0] and codes[2] > 100  # both kinds of outcome were exercised
