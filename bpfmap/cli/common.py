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


def complete_map(incomplete: str) -> list[str]:
    """Pinned maps under the mounted bpffs instances, and id:/name: refs."""
    from ..maps import list_maps

    try:
        infos = list(list_maps(pins=True))
    except Exception:  # completion must never fail loudly
        return []
    refs = [p for i in infos for p in i.pinned] + [f"id:{i.id}" for i in infos] + \
        [f"name:{i.name}" for i in infos if i.name]
    return [r for r in refs if r.startswith(incomplete)]


def complete_format(incomplete: str) -> list[str]:
    return [f for f in FORMATS if f.startswith(incomplete)]


def complete_type(incomplete: str) -> list[str]:
    from ..types import MapType

    return [t.label for t in MapType if t is not MapType.UNSPEC and t.label.startswith(incomplete)]


MapArg = Annotated[str, typer.Argument(metavar="MAP", help="Pinned path, id:N or name:NAME.", show_default=False,
                                       autocompletion=complete_map)]
LayoutOpt = Annotated[
    Optional[Layout],
    typer.Option("--layout", "-l", parser=_parse_layout, metavar="KEY:VALUE",
                 help="Key and value layout, e.g. u32:u64 or 'u32,u16,u16:u64'; '-' leaves a side as hex."),
]
OutputOpt = Annotated[
    Optional[str],
    typer.Option("--output", "-o", parser=_parse_format, metavar="FORMAT", autocompletion=complete_format,
                 help="text, json, jsonl or table (default: table on a terminal, text otherwise)."),
]


def fmt_or_default(fmt: str | None) -> str:
    return fmt or default_format(sys.stdout)
