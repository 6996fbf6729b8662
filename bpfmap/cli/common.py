"""Options and helpers shared by the verbs: parse at the edge, open maps, pick formats."""


import sys
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..layout import Layout
from ..output import FORMATS, default_format


def _parse_layout(text: str) -> Layout:
    try:
        return Layout.parse(text)
    except UsageError as err:
        raise typer.BadParameter(str(err)) from None


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
                 help="Key and value layout, e.g. u32:u64 or 'saddr=ipv4,dport=be16:u64'; '-' leaves a side "
                      "as hex; @FILE[#NAME] reads it from a file."),
]
PackedOpt = Annotated[bool, typer.Option("--packed", help="Lay out both sides of --layout with no padding.")]
HeaderOpt = Annotated[Optional[str], typer.Option("--c-header", metavar="FILE",
                                                  help="C header declaring the key and value types.")]
KeyTypeOpt = Annotated[Optional[str], typer.Option("--key-type", metavar="CTYPE",
                                                   help="C type of the key, e.g. 'struct flow_key'.")]
ValueTypeOpt = Annotated[Optional[str], typer.Option("--value-type", metavar="CTYPE",
                                                     help="C type of the value, e.g. __u64.")]
OutputOpt = Annotated[
    Optional[str],
    typer.Option("--output", "-o", parser=_parse_format, metavar="FORMAT", autocompletion=complete_format,
                 help="text, json, jsonl, csv or table (default: table on a terminal, text otherwise)."),
]


def pick_layout(layout: Layout | None, packed: bool, header: str | None, key_type: str | None,
                value_type: str | None) -> Layout | None:
    """The one layout a command uses, from --layout (and --packed) or --c-header."""
    if header is not None:
        if layout is not None:
            raise UsageError("give either --layout or --c-header, not both")
        if packed:
            raise UsageError("--packed applies to --layout; mark C structs __attribute__((packed))")
        return Layout.from_c(header, key_type, value_type)
    if key_type or value_type:
        raise UsageError("--key-type and --value-type need --c-header FILE")
    if packed:
        if layout is None:
            raise UsageError("--packed needs --layout")
        return layout.packed()
    return layout


def fmt_or_default(fmt: str | None) -> str:
    return fmt or default_format(sys.stdout)
