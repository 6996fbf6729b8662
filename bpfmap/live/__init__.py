"""Views of a live system, refreshed: a map's entries and their rates (``watch``:
:class:`Watcher`, :class:`Watchers` for many maps), the host's maps (``top``:
:class:`Top`), profilers' stacks joined with their stack maps (``stacks``:
:class:`Joiner`).  Each name loads its module on first use."""

from typing import TYPE_CHECKING

from .._lazy import reexport

if TYPE_CHECKING:
    from .stacks import Joiner as Joiner
    from .top import Top as Top
    from .watch import Watcher as Watcher
    from .watch import Watchers as Watchers

__getattr__, __dir__ = reexport(__name__)
