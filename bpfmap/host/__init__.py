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
    from .hostnames import Collector as Collector
    from .hostnames import Names as Names
    from .hostnames import names_for as names_for
    from .inputs import BoundedLines as BoundedLines
    from .inputs import LoadError as LoadError
    from .inputs import read_bytes as read_bytes
    from .inputs import read_text as read_text
    from .symbols import KernelSymbols as KernelSymbols
    from .symbols import ProcessSymbols as ProcessSymbols
    from .symbols import frame_text as frame_text

__getattr__, __dir__ = reexport(__name__)
