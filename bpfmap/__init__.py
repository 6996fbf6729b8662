"""bpfmap: manage Linux eBPF maps from Python and the shell.

The public API: :class:`Map` (bytes in, bytes out), :class:`MapType`,
:class:`MapFlag`, :class:`Layout` (meaning for those bytes) and the exceptions in
:mod:`bpfmap.errors`.
"""

from .errors import (
    BpfmapError,
    Empty,
    IterationAborted,
    KernelError,
    KeyExists,
    KeyNotFound,
    MapFull,
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
from .maps import Map, MapInfo, Program, list_maps, possible_cpus
from .pins import ensure_bpffs, is_bpffs
from .types import MapFlag, MapType

__version__ = "0.1.0"

__all__ = [
    "Map",
    "MapInfo",
    "Program",
    "MapType",
    "MapFlag",
    "Layout",
    "list_maps",
    "possible_cpus",
    "ensure_bpffs",
    "is_bpffs",
    "BpfmapError",
    "Empty",
    "IterationAborted",
    "KernelError",
    "KeyExists",
    "KeyNotFound",
    "MapFull",
    "NoSuchObject",
    "NotBpffs",
    "NotFound",
    "PermissionDenied",
    "PinExists",
    "ReadOnly",
    "Unsupported",
    "UsageError",
    "VerifierRejected",
    "WrongObjectType",
]
