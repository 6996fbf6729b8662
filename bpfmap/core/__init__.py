"""The bytes core: maps and programs reached through file descriptors, one concern per module.

- ``fd``: owning a file descriptor (:class:`FdOwner`).
- ``values``: how values sit in kernel buffers (per-CPU slots and their stride:
  :class:`ValueShape`, :func:`possible_cpus`): the only place that knows it.
- ``spec``: :class:`MapSpec`, the description of a map, its checks and its creation.
- ``info``: what the kernel says about maps (:class:`MapInfo`), listing
  (:func:`list_maps`), ids and names.
- ``batch``: batch operations over any object with a map's shape (:class:`MapCore`), with
  the per-element fallback, and the key walk.
- ``threads``: the read-ahead thread of dumps and the writer thread of bulk loads.
- ``program``: loaded programs (:class:`Program`).
- ``owners``: entries counted, fill, the processes holding a map and the programs using it.
- ``columns``: fixed-size records copied between buffers a column at a time.
- ``pins``: bpffs mounts and pins (:class:`PinIndex`, :func:`is_bpffs`, :func:`ensure_bpffs`).
- ``maps``: :class:`Map`, which puts them together, and :func:`shared_opens`.
- ``savedref`` and ``saved``: which references name a saved file, and the read-only map
  backed by one (:class:`SavedMap`, :class:`SavedFileError`).
- ``objrefs``: kernel objects by reference (:class:`ObjectRef`, :func:`open_ref`).
- ``skiter``: the sockets of an sk_storage map (:func:`walk_sockets`).
- ``asm``: the assembler (:func:`assemble`, :class:`AsmError`).

Each name loads its module on first use.
"""

from typing import TYPE_CHECKING

from .._lazy import reexport

if TYPE_CHECKING:
    from .asm import AsmError as AsmError
    from .asm import assemble as assemble
    from .batch import MapCore as MapCore
    from .fd import FdOwner as FdOwner
    from .info import MapInfo as MapInfo
    from .info import list_maps as list_maps
    from .maps import Map as Map
    from .maps import shared_opens as shared_opens
    from .objrefs import ObjectRef as ObjectRef
    from .objrefs import open_ref as open_ref
    from .pins import PinIndex as PinIndex
    from .pins import ensure_bpffs as ensure_bpffs
    from .pins import is_bpffs as is_bpffs
    from .program import Program as Program
    from .saved import SavedFileError as SavedFileError
    from .saved import SavedMap as SavedMap
    from .skiter import walk_sockets as walk_sockets
    from .spec import MapSpec as MapSpec
    from .values import ValueShape as ValueShape
    from .values import possible_cpus as possible_cpus

__getattr__, __dir__ = reexport(__name__)
