"""bpfmap: manage Linux eBPF maps from Python and the shell.

The public API: :class:`Map` (bytes in, bytes out) made from a :class:`MapSpec` or
opened by pin, id or name; :class:`MapInfo`, :func:`list_maps`; :class:`Program`;
:class:`MapType`, :class:`MapFlag`; :class:`Layout` and :class:`View` (meaning for
those bytes); and every exception, all derived from :class:`BpfmapError`.  The heavier
parts (BPF objects, event streams, drains, bulk loads, the assembler) load when first
used, so ``import bpfmap`` stays cheap.  Every verb of the command line is one call here:
``count``, ``Deletion`` (delete --where), ``copy``, ``migrate``, ``dump``, ``save``,
``restore``, ``diff``, ``Watcher`` (watch), ``Top``, ``histograms`` (hist), ``Joiner``
(stacks), ``UserRingBuffer`` (send), ``reader`` (events), ``drain``, ``Loader``
(update --from), and the View's element verbs (``update`` with ``cpu=``, references
such as ``pid:N`` as keys).
"""

from __future__ import annotations

from ._lazy import JOINS, TYPE_CHECKING, reexport

if TYPE_CHECKING:
    from typing import Any

    from .core.maps import Map, MapInfo, list_maps, possible_cpus
    from .core.pins import ensure_bpffs, is_bpffs
    from .errors import (
        BpfmapError,
        Empty,
        EntriesDropped,
        InvalidArgument,
        IterationAborted,
        KernelError,
        KeyExists,
        KeyNotFound,
        MapFull,
        NoRoom,
        NoSuchObject,
        NotBpffs,
        NotFound,
        PermissionDenied,
        PinExists,
        ReadOnly,
        Unsupported,
        UsageError,
        VerifierRejected,
        WrongObjectType,
    )
    from .layout import Layout
    from .types import MapFlag, MapType

__version__ = "0.2.0"


def _view(m: Map, *layout: Any) -> Any:
    """Map.view's body: ``m`` seen through the layout its arguments give (api.as_layout's:
    a layout, or a C header and its key and value types; none: the map's BTF, else hex)."""
    from .api import as_layout
    from .view import View

    return View(m, as_layout(*layout))


# The package, the top layer, joins Map to View (Map.view calls this): maps.py never imports view.py.
JOINS["view"] = _view


# name -> module, imported on first use (module __getattr__, PEP 562)
_LAZY = {
    "Map": "core.maps",
    "MapInfo": "core.maps",
    "list_maps": "core.maps",
    "possible_cpus": "core.maps",
    "ensure_bpffs": "core.pins",
    "is_bpffs": "core.pins",
    "Layout": "layout",
    "MapFlag": "types",
    "MapType": "types",
    "BpfmapError": "errors",
    "Empty": "errors",
    "EntriesDropped": "errors",
    "InvalidArgument": "errors",
    "IterationAborted": "errors",
    "KernelError": "errors",
    "KeyExists": "errors",
    "KeyNotFound": "errors",
    "MapFull": "errors",
    "NoRoom": "errors",
    "NoSuchObject": "errors",
    "NotBpffs": "errors",
    "NotFound": "errors",
    "PermissionDenied": "errors",
    "PinExists": "errors",
    "ReadOnly": "errors",
    "Unsupported": "errors",
    "UsageError": "errors",
    "VerifierRejected": "errors",
    "WrongObjectType": "errors",
    "open": "api",
    "create": "api",
    "dump": "output.dump",
    "save": "entries.save",
    "restore": "entries.restore",
    "diff": "entries.diff",
    "count": "entries.changes",
    "Deletion": "entries.changes",
    "copy": "entries.migrate",
    "Copy": "entries.migrate",
    "migrate": "entries.migrate",
    "Migration": "entries.migrate",
    "Watcher": "live.watch",
    "Watchers": "live.watch",
    "Top": "live.top",
    "histograms": "hist",
    "Histogram": "hist",
    "Joiner": "live.stacks",
    "UserRingBuffer": "streams.userring",
    "SavedMap": "core.saved",
    "SavedFileError": "core.saved",
    "MapSpec": "core.spec",
    "Program": "core.program",
    "View": "view",
    "BpfObject": "objects",
    "MapDef": "objects",
    "ObjectError": "objects",
    "read_object": "objects",
    "create_maps": "objects",
    "reader": "streams.events",
    "DeliveryError": "entries.drain",
    "DrainInterrupted": "entries.drain",
    "drain": "entries.drain",
    "LoadError": "host.inputs",
    "Loader": "entries.bulk",
    "AsmError": "core.asm",
    "assemble": "core.asm",
    "ConfigError": "export",
    "SlotError": "hist.extract",
}


# every name here loads lazily: the command line's one-entry verbs import this package,
# and the library's modules would cost them more than their own work
__getattr__, __dir__ = reexport(__name__, _LAZY)


__all__ = [
    "open",
    "create",
    "dump",
    "save",
    "restore",
    "diff",
    "count",
    "Deletion",
    "copy",
    "Copy",
    "migrate",
    "Migration",
    "Watcher",
    "Watchers",
    "Top",
    "histograms",
    "Histogram",
    "Joiner",
    "UserRingBuffer",
    "SavedMap",
    "SavedFileError",
    "Map",
    "MapSpec",
    "MapInfo",
    "Program",
    "MapType",
    "MapFlag",
    "Layout",
    "View",
    "list_maps",
    "possible_cpus",
    "ensure_bpffs",
    "is_bpffs",
    "BpfObject",
    "MapDef",
    "read_object",
    "create_maps",
    "reader",
    "drain",
    "Loader",
    "assemble",
    # errors
    "BpfmapError",
    "UsageError",
    "NotFound",
    "KeyNotFound",
    "Empty",
    "KernelError",
    "PermissionDenied",
    "NoSuchObject",
    "NotBpffs",
    "WrongObjectType",
    "Unsupported",
    "InvalidArgument",
    "MapFull",
    "KeyExists",
    "PinExists",
    "ReadOnly",
    "IterationAborted",
    "VerifierRejected",
    "NoRoom",
    "EntriesDropped",
    "ObjectError",
    "ConfigError",
    "SlotError",
    "LoadError",
    "DeliveryError",
    "DrainInterrupted",
    "AsmError",
]
