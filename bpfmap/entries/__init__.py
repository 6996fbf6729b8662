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
    from .bulk import Loader as Loader
    from .changes import Deletion as Deletion
    from .changes import count as count
    from .drain import DeliveryError as DeliveryError
    from .drain import DrainInterrupted as DrainInterrupted
    from .drain import Sink as Sink
    from .migrate import Copy as Copy
    from .migrate import Migration as Migration
    from .migrate import copy as copy

__getattr__, __dir__ = reexport(__name__)
