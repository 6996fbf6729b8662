"""Hostile keys, values and layouts through the CLI: documented exit codes, never an internal error."""

from __future__ import annotations

import pytest
from helpers import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfmap import Map

# Every layout fits the 16-byte keys and 24-byte values, so the input itself is what is tested.
LAYOUTS = [
    "a=ipv4,b=be16,c=u8,_[9]:n=u64,s=char[16]",
    "-:-",
    "k=u16,_[14]:h={lo=u32,hi=u32}[3]",
    "e=ipv6:m=mac,_[2],f=f32,b=bool,x=hex[3],_[8]",
    "u64,u64:u64,s64,u64",
]


@pytest.fixture(scope="module")
def fuzz_map(bpffs):
    import os
    import uuid

    path = os.path.join(bpffs, "fz" + uuid.uuid4().hex[:8])
    m = Map.create("hash", 16, 24, max_entries=64)
    m.pin(path)
    yield path, m
    m.close()
    os.unlink(path)


text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "-1",
            "0x",
            "{}",
            "[]",
            "1,2,3",
            '{"a": 1}',
            "10.0.0.1,1,2",
            "[1,[2]]",
            "--x",
            "\x00",
            "nan",
            "10.0.0.1,80,6",
            '{"a": "10.0.0.1", "b": 80, "c": 6}',
            "1,abc",
            "fe80::1",
            "aa:bb:cc:dd:ee:ff,1.5,true,01 02 03",
            '[{"lo": 1, "hi": 2}, {"lo": 3, "hi": 4}, {"lo": 5, "hi": 6}]',
            "1,-1,2",
            "inf,1,1",
            "1e400",
            '{"n": 1, "s": 5}',
            "00 " * 16,
            "00 " * 24,
            "1," * 5,
        ]
    ),
)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=st.sampled_from(LAYOUTS), key=text, value=text, verb=st.sampled_from(["update", "lookup", "delete"]))
def test_no_internal_errors(bm, fuzz_map, layout, key, value, verb):
    path, _m = fuzz_map
    args = [verb, path, key] + ([value] if verb == "update" else []) + ["-l", layout]
    code, out, err = bm(*args)
    assert code in (0, 1, 2, 3), (args, code, err)
    assert "internal error" not in err and "Traceback" not in err, (args, err)
    if code:
        assert err.startswith("bpfmap: ") and err.count("\n") == 1, (args, err)
