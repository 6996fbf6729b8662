"""Writers: the batch %-format fast paths print exactly what the per-entry path prints."""

from __future__ import annotations

import io
import json

import pytest
from helpers import examples
from helpers.layouts import value_for
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfmap.layout import HexCodec, Layout
from bpfmap.output import EntryTexts, columns, write_entries
from bpfmap.output.entries import _line_function

FLAT = [
    "u32:u64",
    "s8:f64",
    "a=u32,b=be16,c=ipv4,d=mac,e=hex[3]:n=u64,s=char[8]",
    "k=u16:e=bool,f=f32",
    "ipv6:char[4]",
    "x=u8,y={a=u8}:u8",
    "q=u32[2]:u8",
]


@pytest.mark.parametrize("layout", FLAT)
@pytest.mark.parametrize("fmt", ["text", "jsonl", "json"])
@settings(max_examples=examples(20), deadline=None)
@given(data=st.data())
def test_fast_and_plain_paths_agree(layout, fmt, data):
    lay = Layout.parse(layout)
    entries = [(value_for(lay.key.type, data.draw), value_for(lay.value.type, data.draw)) for _ in range(7)]
    entries = [(lay.key.decode(lay.key.encode(k)), lay.value.decode(lay.value.encode(v))) for k, v in entries]
    fast = io.StringIO()
    write_entries(columns(entries, 3), fmt, lay.key, lay.value, False, fast)
    line = _line_function("jsonl" if fmt == "json" else fmt, lay.key, lay.value, False)
    plain_lines = [line(e) for e in entries]
    if fmt == "json":
        assert json.loads(fast.getvalue()) == [json.loads(x) for x in plain_lines]
        assert fast.getvalue() == "[\n  " + ",\n  ".join(x.rstrip("\n") for x in plain_lines) + "\n]\n"
    else:
        assert fast.getvalue() == "".join(plain_lines)
    if fmt == "jsonl":
        for text in fast.getvalue().splitlines():
            json.loads(text)


def test_hex_and_empty():
    out = io.StringIO()
    assert write_entries(iter([]), "json", HexCodec(4), HexCodec(4), False, out) == 0
    assert out.getvalue() == "[]\n"
    out = io.StringIO()
    write_entries(iter([(["01 00"], ["ff"])]), "jsonl", HexCodec(2), HexCodec(1), False, out)
    assert json.loads(out.getvalue()) == {"key": "01 00", "value": "ff"}


def test_non_finite_floats_are_strict_json_and_load_back():
    lay = Layout.parse("u32:a=f64,b=f32")
    entries = [(1, {"a": float("nan"), "b": float("inf")}), (2, {"a": float("-inf"), "b": 1.5})]
    out = io.StringIO()
    write_entries(columns(entries), "jsonl", lay.key, lay.value, False, out)
    rows = [
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
        for line in out.getvalue().splitlines()
    ]
    assert rows[0]["value"] == {"a": "NaN", "b": "Infinity"} and rows[1]["value"]["a"] == "-Infinity"
    raw = lay.value.encode(rows[0]["value"])  # the strings read back as the same floats
    back = lay.value.decode(raw)
    assert back["a"] != back["a"] and back["b"] == float("inf")


@pytest.mark.parametrize("fmt", ["text", "jsonl", "json", "csv"])
@pytest.mark.parametrize(
    "layout, percpu", [("u32:u64", False), ("a=u32,s=char[4]:b=u64,c=ipv4", False), ("-:-", False), ("u32:u64", True)]
)
def test_entry_texts_are_the_bytes_write_entries_writes(fmt, layout, percpu):
    """A drain writes entry by entry (EntryTexts) what a dump writes batch by batch."""
    lay = Layout.parse(layout)
    kc = lay.key or HexCodec(4)
    vc = lay.value or HexCodec(8)
    raw_k = [
        (i * 7).to_bytes(4, "little") if layout == "u32:u64" else bytes([i, 0, 0, 0]) * (1 if kc.size == 4 else 2)
        for i in range(5)
    ]
    keys = [kc.decode(k[: kc.size].ljust(kc.size, b"x")) for k in raw_k]
    one = [vc.decode(bytes([i]) * vc.size) for i in range(5)]
    values = [[v, v] for v in one] if percpu else one
    for batches in ([], [(keys[:2], values[:2])], [(keys[:2], values[:2]), ([], []), (keys[2:], values[2:])]):
        out = io.StringIO()
        write_entries(batches, fmt, kc, vc, percpu, out)
        texts = EntryTexts(fmt, kc, vc, percpu)
        assert "".join("".join(texts.batch(k, v)) for k, v in batches) + texts.end() == out.getvalue()


def test_a_streamed_table_draws_what_rich_draws():
    """The streamed table's lines, drawn with the widths rich chooses, are rich's lines,
    on random cells (printable text without wide characters)."""
    import io

    from hypothesis import given, settings
    from hypothesis import strategies as st
    from rich.console import Console
    from rich.table import Table

    from bpfmap.output.table import footer, header, lines

    text = st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0x2FF, blacklist_categories=("Cc", "Mn")), max_size=12
    )

    @settings(max_examples=examples(150), deadline=None)
    @given(st.integers(1, 5).flatmap(lambda n: st.tuples(
        st.lists(st.from_regex(r"[a-z][a-z.]{0,8}", fullmatch=True), min_size=n, max_size=n),
        st.lists(st.lists(text, min_size=n, max_size=n), min_size=1, max_size=8),
    )))  # fmt: skip
    def check(case):
        names, rows = case
        t = Table(show_edge=False, header_style="bold")
        for n in names:
            t.add_column(n, overflow="fold")
        for r in rows:
            t.add_row(*r)
        buf = io.StringIO()
        con = Console(file=buf, width=400, markup=False, highlight=False, no_color=True)
        con.print(t)
        con.print(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}", style="dim")
        widths = [max(len(names[i]), *(len(r[i]) for r in rows)) for i in range(len(names))]
        assert header(names, widths, False) + lines(rows, widths) + footer(len(rows), False) == buf.getvalue()

    check()


def test_a_streamed_table_folds_what_does_not_fit_and_fits_the_console():
    from bpfmap.output.table import fit, lines

    assert lines([["abcdefghij", "x"]], [4, 1]) == " abcd │ x \n efgh │   \n ij   │   \n"
    widths = fit([30, 10, 50], 60)
    assert sum(widths) + 3 * 3 - 1 <= 60 and widths[1] == 10
