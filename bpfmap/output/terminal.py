"""Output for people at a terminal: colour, the rich console, and text made safe to show
(no map or BTF data drives the terminal)."""

from __future__ import annotations

import os
import re
import sys
from typing import IO, TYPE_CHECKING, Any

from .._lazy import lazy_pattern

if TYPE_CHECKING:
    from rich.console import Console


# What a terminal would act on rather than show: C0 controls (ESC starts colour, cursor
# and OSC sequences; CR rewrites a line), DEL, C1 controls (0x9b is a one-byte CSI) and
# the Unicode controls that reorder text.  A stream keeps its tabs and newlines; a table
# cell keeps nothing.
# compiled on first use: a dump to a file or a pipe needs neither (start-up)
_unsafe_in_stream = lazy_pattern("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_unsafe_in_cell = lazy_pattern("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escaped(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def printable(text: str) -> str:
    """``text`` for a terminal: every character it would act on (escape sequences,
    carriage returns, bidi overrides) shown as ``\\xNN``/``\\uNNNN``; tabs and newlines kept."""
    return _unsafe_in_stream().sub(_escaped, text) if _unsafe_in_stream().search(text) else text


def cell(text: str) -> str:
    """``text`` for one cell of a table on a terminal: as printable(), tabs and
    newlines escaped too (map and BTF data drawn by rich, which passes them through)."""
    return _unsafe_in_cell().sub(_escaped, text) if _unsafe_in_cell().search(text) else text


def cells(texts: list[str]) -> list[str]:
    """``cell`` of each text; one search over them all when none needs it (the usual case)."""
    if _unsafe_in_cell().search(" ".join(texts)) is None:
        return texts
    return list(map(cell, texts))


def inline(text: str, stream: IO[str]) -> str:
    """``text`` from a file name or the kernel (a pin path, a process name) inside one line
    of ``stream``: on a terminal as cell() makes it (a newline in it starts no line that
    looks like output); elsewhere as it is."""
    return cell(text) if _terminal(stream) else text


def unguarded(stream: IO[str]) -> IO[str]:
    """The stream under the CLI's terminal guard (which shows every control character it
    is given), for text bpfmap made safe itself: its own escape sequences (bold, screen
    clears) around cells made with cell()."""
    return getattr(stream, "unescaped", stream)


def _terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def colour(stream: IO[str]) -> bool:
    """Colour on ``stream``: a terminal, NO_COLOR unset (https://no-color.org), TERM not dumb."""
    return _terminal(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def console(stream: IO[str] | None = None, **kwargs: Any) -> Console:
    """A rich Console with no markup (map and BTF data may hold brackets) that colours
    only when ``colour()`` says so."""
    from rich.console import Console

    stream = stream or sys.stdout
    stream = unguarded(stream)  # rich draws its own escapes; its cells are made with cell()
    return Console(
        file=stream, markup=False, highlight=False, no_color=not colour(stream), force_terminal=None, **kwargs
    )


def default_format(stream: IO[str] | None = None) -> str:
    """``table`` on a terminal, ``text`` for pipes and files."""
    stream = stream or sys.stdout
    return "table" if stream.isatty() else "text"
