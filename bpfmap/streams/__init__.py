"""Event streams: ring buffers and perf event arrays read (``events``: :func:`reader`,
:class:`Record`, :class:`Packed`, :class:`RecordDecoder`), and the producer side of a user
ring buffer (``userring``: :class:`UserRingBuffer`).  Each name loads its module on first
use."""

from typing import TYPE_CHECKING

from .._lazy import reexport

if TYPE_CHECKING:
    from .events import Packed, Record, RecordDecoder, reader
    from .userring import UserRingBuffer

_LAZY = {
    "Packed": "events",
    "Record": "events",
    "RecordDecoder": "events",
    "reader": "events",
    "UserRingBuffer": "userring",
}
__getattr__, __dir__ = reexport(__name__, _LAZY)

__all__ = ["Packed", "Record", "RecordDecoder", "UserRingBuffer", "reader"]
