"""What bpfmap reads about the host it runs on: names of the objects programs record as
numbers (``hostnames``: :func:`names_for`, :class:`Names`, :class:`Collector`),
instruction addresses to symbols (``symbols``: :class:`KernelSymbols`,
:class:`ProcessSymbols`, :func:`frame_text`), and the files and streams users name as
input, read with bounds (``inputs``: :func:`read_text`, :func:`read_bytes`,
:class:`BoundedLines`, :class:`LoadError`).  The lowest floor above ``errors``: display
formats and object references read it, it reads neither.  Each name loads its module on
first use."""

from typing import TYPE_CHECKING

from .._lazy import reexport

if TYPE_CHECKING:
    from .hostnames import Collector, Names, names_for
    from .inputs import BoundedLines, LoadError, read_bytes, read_text
    from .symbols import KernelSymbols, ProcessSymbols, frame_text

_LAZY = {
    "Collector": "hostnames",
    "Names": "hostnames",
    "names_for": "hostnames",
    "BoundedLines": "inputs",
    "LoadError": "inputs",
    "read_bytes": "inputs",
    "read_text": "inputs",
    "KernelSymbols": "symbols",
    "ProcessSymbols": "symbols",
    "frame_text": "symbols",
}
__getattr__, __dir__ = reexport(__name__, _LAZY)

__all__ = [
    "BoundedLines",
    "Collector",
    "KernelSymbols",
    "LoadError",
    "Names",
    "ProcessSymbols",
    "frame_text",
    "names_for",
    "read_bytes",
    "read_text",
]
