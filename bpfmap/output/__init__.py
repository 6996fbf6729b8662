"""Writers for entries and map info: text, json, jsonl, table.  Never calls bpf.

Shapes (a contract, see README "Output"):
- entries, text: ``KEY<TAB>VALUE`` per line; per-CPU maps ``KEY<TAB>CPU0<TAB>CPU1...``
- entries, json: one array of objects; jsonl: one object per line.  An object is
  ``{"key": K, "value": V}``, per-CPU ``{"key": K, "values": [V0, V1, ...]}``.
- entries, csv: a header row of flattened field names (``key``, ``key.port``,
  ``value.hist[0].lo``, per-CPU ``values[1].packets``), then one row per entry.
- map info: see MapInfo.to_dict.

Public: the writers of ``entries`` (:func:`write_entries`, :func:`write_value`,
:class:`EntryTexts`...), of ``info`` (:func:`write_infos`, :func:`info_lines`...) and the
terminal's pieces (``terminal``: :func:`console`, :func:`colour`, :func:`cell`...), each
loaded with its module on first use; the library's dump is ``output.dump.dump`` (and
``bpfmap.dump``).
"""

from typing import TYPE_CHECKING

from .._lazy import reexport

if TYPE_CHECKING:
    from .entries import (
        OUTPUT_FORMATS,
        UNREADABLE,
        DecodedBatch,
        EntryTexts,
        TextCodec,
        columns,
        entry_object,
        flatten,
        item_writer,
        json_dumps,
        write_entries,
        write_item_batches,
        write_objects,
        write_value,
    )
    from .info import human_size, info_lines, object_map_lines, write_infos, write_object_maps
    from .terminal import cell, colour, console, default_format, inline, printable, unguarded

_LAZY = {
    "OUTPUT_FORMATS": "entries",
    "UNREADABLE": "entries",
    "DecodedBatch": "entries",
    "EntryTexts": "entries",
    "TextCodec": "entries",
    "columns": "entries",
    "entry_object": "entries",
    "flatten": "entries",
    "item_writer": "entries",
    "json_dumps": "entries",
    "write_entries": "entries",
    "write_item_batches": "entries",
    "write_objects": "entries",
    "write_value": "entries",
    "human_size": "info",
    "info_lines": "info",
    "object_map_lines": "info",
    "write_infos": "info",
    "write_object_maps": "info",
    "cell": "terminal",
    "colour": "terminal",
    "console": "terminal",
    "default_format": "terminal",
    "inline": "terminal",
    "printable": "terminal",
    "unguarded": "terminal",
}
__getattr__, __dir__ = reexport(__name__, _LAZY)

__all__ = [
    "DecodedBatch",
    "EntryTexts",
    "OUTPUT_FORMATS",
    "TextCodec",
    "UNREADABLE",
    "cell",
    "colour",
    "columns",
    "console",
    "default_format",
    "entry_object",
    "flatten",
    "human_size",
    "info_lines",
    "inline",
    "item_writer",
    "json_dumps",
    "object_map_lines",
    "printable",
    "unguarded",
    "write_entries",
    "write_infos",
    "write_item_batches",
    "write_object_maps",
    "write_objects",
    "write_value",
]
