"""Options and helpers shared by the verbs: parse at the edge, open maps, pick formats."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from ..layout import Layout
from ..output import FORMATS, default_format


def _parse_layout(text: str) -> Layout:
    return Layout.parse(text)


def _parse_format(text: str) -> str:
    fmt = text.strip().lower()
    if fmt not in FORMATS:
        raise typer.BadParameter(f"{text!r}: choose one of {', '.join(FORMATS)}")
    return fmt


MapArg = Annotated[str, typer.Argument(metavar="MAP", help="Pinned path, id:N or name:NAME.", show_default=False)]
LayoutOpt = Annotated[
    Optional[Layout],
    typer.Option("--layout", "-l", parser=_parse_layout, metavar="KEY:VALUE",
                 help="Key and value layout, e.g. u32:u64 or 'u32,u16,u16:u64'; '-' leaves a side as hex."),
]
OutputOpt = Annotated[
    Optional[str],
    typer.Option("--output", "-o", parser=_parse_format, metavar="FORMAT",
                 help="text, json, jsonl or table (default: table on a terminal, text otherwise)."),
]


def fmt_or_default(fmt: str | None) -> str:
    return fmt or default_format(sys.stdout)
