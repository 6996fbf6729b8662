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
    from .entries import OUTPUT_FORMATS as OUTPUT_FORMATS
    from .entries import UNREADABLE as UNREADABLE
    from .entries import DecodedBatch as DecodedBatch
    from .entries import EntryTexts as EntryTexts
    from .entries import TextCodec as TextCodec
    from .entries import columns as columns
    from .entries import entry_object as entry_object
    from .entries import flatten as flatten
    from .entries import item_writer as item_writer
    from .entries import json_dumps as json_dumps
    from .entries import write_entries as write_entries
    from .entries import write_item_batches as write_item_batches
    from .entries import write_objects as write_objects
    from .entries import write_value as write_value
    from .info import human_size as human_size
    from .info import info_lines as info_lines
    from .info import object_map_lines as object_map_lines
    from .info import write_infos as write_infos
    from .info import write_object_maps as write_object_maps
    from .terminal import cell as cell
    from .terminal import colour as colour
    from .terminal import console as console
    from .terminal import default_format as default_format
    from .terminal import inline as inline
    from .terminal import printable as printable
    from .terminal import unguarded as unguarded

__getattr__, __dir__ = reexport(__name__)
