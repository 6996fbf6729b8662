"""One grammar for field paths (bpfmap.layout.fields), and every option that names a field
reading it: no other module parses paths."""

from __future__ import annotations

import os
import re

import pytest
from helpers import REPO

from bpfmap.errors import UsageError
from bpfmap.layout import Layout, fields

ROOT = os.path.join(REPO, "bpfmap")


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("comm", [("comm", "")]),
        ("a.b", [("a", ""), ("b", "")]),
        ("hists[2]", [("hists", ""), ("", "2")]),
        ("a[1].b[20].c", [("a", ""), ("", "1"), ("b", ""), ("", "20"), ("c", "")]),
        ("[3]", [("", "3")]),
        ("_x9", [("_x9", "")]),
    ],
)
def test_paths_parse(path, steps):
    assert list(fields.parts(path)) == steps
    assert fields.keys(path) == [n if n else int(i) for n, i in steps]


@pytest.mark.parametrize("path", ["", ".a", "a.", "a..b", "a[", "a[x]", "a[-1]", "a b", "9a", "a.[1]", "a[1]b", "é"])
def test_other_text_is_not_a_path(path):
    with pytest.raises(UsageError, match="NAME, NAME.FIELD or NAME\\[INDEX\\]"):
        fields.parts(path)


def test_values_and_types_walk_the_same_path():
    lay = Layout.parse("k=u32:n=u64,hist=u32[4],inner={a=u16,b=u8[3]}")
    t = lay.value.type
    value = {"n": 1, "hist": [5, 6, 7, 8], "inner": {"a": 9, "b": [1, 2, 3]}}
    for path, want in (("n", 1), ("hist[2]", 7), ("inner.a", 9), ("inner.b[1]", 2)):
        assert fields.select(value, path) == want
        assert fields.getter(path)(value) == want
        offset, ft = fields.locate(t, path)
        assert ft.size in (2, 1, 4, 8) and offset < t.size
    assert fields.locate(t, "inner.b[1]")[0] == fields.locate(t, "inner.b")[0] + 1
    with pytest.raises(UsageError, match="no field x"):
        fields.select(value, "inner.x")
    with pytest.raises(UsageError, match="past the end"):
        fields.locate(t, "hist[4]")
    with pytest.raises(KeyError):
        fields.getter("nope.x")(value)
    with pytest.raises(UsageError, match="not an array element"):
        fields.names("hist[1]")


def test_no_other_module_parses_field_paths():
    """The regular expressions of a path (a name, then .name or [index]) live in fields.py."""
    pattern = re.compile(r"\\\[\(\\d\+\)\\\]|\\\[\(\[0-9\]\+\)\\\]")  # \[(\d+)\] or \[([0-9]+)\]
    found = []
    for root, _dirs, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py") and f != "fields.py":
                text = open(os.path.join(root, f)).read()
                if pattern.search(text):
                    found.append(f)
    assert found == []
