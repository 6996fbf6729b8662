"""A dump's lines reach a UTF-8 stream that is not a terminal as the row writer's bytes
(output.entries.utf8_sink), with no text made and encoded again: the bytes are those the
text path writes, in every line format, and other streams still get text."""

from __future__ import annotations

import io

import pytest

from bpfmap.layout import Layout
from bpfmap.output import item_writer, write_item_batches
from bpfmap.output.entries import utf8_sink

LAYOUT = Layout.parse("id=u32,addr=ipv4:name=char[8],n=s64")


def _batch(count: int) -> tuple[bytes, bytes, int]:
    names = ["café", "a,b", 'q"q', "", "x\ty", "\u00e9t\u00e9"]
    keys = b"".join(LAYOUT.key.encode({"id": i, "addr": f"10.0.{i >> 8 & 255}.{i & 255}"}) for i in range(count))
    values = b"".join(LAYOUT.value.encode({"name": names[i % len(names)], "n": -i * 977}) for i in range(count))
    return keys, values, count


class Spy(io.TextIOWrapper):
    """A UTF-8 text stream over bytes that counts what goes through its text layer."""

    texts = 0

    def write(self, s: str) -> int:
        self.texts += len(s)
        return super().write(s)


@pytest.mark.parametrize("fmt", ["text", "jsonl", "json"])
def test_bytes_to_a_utf8_stream_are_the_texts_bytes(fmt):
    lines = item_writer(fmt, LAYOUT.key, LAYOUT.value)
    assert lines is not None
    batches = [_batch(5000), _batch(3)]  # chunks of a batch, and a second batch
    as_text = io.StringIO()
    assert write_item_batches(batches, fmt, lines, as_text) == 5003
    raw = io.BytesIO()
    spy = Spy(raw, encoding="utf-8", newline="")
    assert write_item_batches(batches, fmt, lines, spy) == 5003
    spy.flush()
    assert raw.getvalue() == as_text.getvalue().encode()
    assert spy.texts == 0  # no line went through the text layer
    other = io.BytesIO()
    latin = Spy(other, encoding="latin-1", errors="replace", newline="")
    write_item_batches(batches, fmt, lines, latin)
    latin.flush()
    assert latin.texts > 0 and other.getvalue() == as_text.getvalue().encode("latin-1", "replace")


def test_no_sink_for_text_only_streams_terminals_and_other_encodings():
    assert utf8_sink(io.StringIO()) is None
    assert utf8_sink(io.TextIOWrapper(io.BytesIO(), encoding="ascii")) is None

    class Terminal(io.TextIOWrapper):
        def isatty(self) -> bool:
            return True

    assert utf8_sink(Terminal(io.BytesIO(), encoding="utf-8")) is None
    text = io.TextIOWrapper(io.BytesIO(), encoding="UTF8")
    text.write("[")  # written before: flushed to the bytes first
    sink = utf8_sink(text)
    assert sink is text.buffer and text.buffer.getvalue() == b"["  # type: ignore[attr-defined]
