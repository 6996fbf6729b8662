"""Writers for entries and map info: text, json, jsonl, table.  Never calls bpf.

Shapes (a contract, see README "Output"):
- entries, text: ``KEY<TAB>VALUE`` per line; per-CPU maps ``KEY<TAB>CPU0<TAB>CPU1...``
- entries, json: one array of objects; jsonl: one object per line.  An object is
  ``{"key": K, "value": V}``, per-CPU ``{"key": K, "values": [V0, V1, ...]}``.
- entries, csv: a header row of flattened field names (``key``, ``key.port``,
  ``value.hist[0].lo``, per-CPU ``values[1].packets``), then one row per entry.
- map info: see MapInfo.to_dict.
"""

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

__all__ = [
    "OUTPUT_FORMATS",
    "UNREADABLE",
    "DecodedBatch",
    "TextCodec",
    "EntryTexts",
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
