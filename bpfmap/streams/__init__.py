"""Event streams: ring buffers and perf event arrays read (``events``: :func:`reader`,
:class:`Record`, :class:`Packed`, :class:`RecordDecoder`), and the producer side of a user
ring buffer (``userring``: :class:`UserRingBuffer`).  Each name loads its module on first
use."""

from typing import TYPE_CHECKING

from .._lazy import reexport

if TYPE_CHECKING:
    from .events import Packed as Packed
    from .events import Record as Record
    from .events import RecordDecoder as RecordDecoder
    from .events import reader as reader
    from .userring import UserRingBuffer as UserRingBuffer

__getattr__, __dir__ = reexport(__name__)
