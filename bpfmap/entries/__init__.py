"""Jobs on many entries at once: bulk loads (``bulk``: :class:`Loader`), lossless drains
(``drain``: ``drain.drain``, :class:`Sink`, :class:`DeliveryError`,
:class:`DrainInterrupted`), counts and filtered deletes (``changes``: :func:`count`,
:class:`Deletion`), copies and migrations (``migrate``: :func:`copy`, :class:`Copy`,
``migrate.migrate``, :class:`Migration`), maps saved to a file, restored and compared
(``save.save``, ``restore.restore``, ``diff.diff``).  The functions named as their module
is are reached through their module here (and as ``bpfmap.save``... at the top); every
other name loads its module on first use."""

from typing import TYPE_CHECKING

from .._lazy import reexport

if TYPE_CHECKING:
    from .bulk import Loader
    from .changes import Deletion, count
    from .drain import DeliveryError, DrainInterrupted, Sink
    from .migrate import Copy, Migration, copy

_LAZY = {
    "Loader": "bulk",
    "Deletion": "changes",
    "count": "changes",
    "DeliveryError": "drain",
    "DrainInterrupted": "drain",
    "Sink": "drain",
    "Copy": "migrate",
    "Migration": "migrate",
    "copy": "migrate",
}
__getattr__, __dir__ = reexport(__name__, _LAZY)

__all__ = ["Copy", "Deletion", "DeliveryError", "DrainInterrupted", "Loader", "Migration", "Sink", "copy", "count"]
