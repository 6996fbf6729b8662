"""Maps declared in compiled BPF objects (ELF), created without loading any program.

A libbpf-style object declares its maps in the ``.maps`` section as BTF-defined
structs (``__uint(type, ...)``, ``__uint(max_entries, ...)``, ``__type(key, ...)``,
``__type(value, ...)``, ``__array(values, ...)``, ``__uint(map_flags, ...)``,
``__uint(pinning, LIBBPF_PIN_BY_NAME)``).  ``read_object`` reads those definitions the
way libbpf's ``parse_btf_map_def`` does; ``create_maps`` creates them with the object's
BTF (fixed up as libbpf fixes it: section sizes and variable offsets from the ELF),
fills map-in-map slots the object initialises, and pins each map as DIR/NAME,
reusing a compatible pin as libbpf's pin-by-name does.

ELF is read with pyelftools; BTF with bpfmap.btf.  Needs Linux 5.x+ for BTF-defined maps
the way libbpf creates them.  Each name loads its module on first use (``elf`` needs
pyelftools)."""

from typing import TYPE_CHECKING

from .._lazy import reexport

if TYPE_CHECKING:
    from .create import Created as Created
    from .create import create_map as create_map
    from .create import create_maps as create_maps
    from .elf import BpfObject as BpfObject
    from .elf import MapDef as MapDef
    from .elf import ObjectError as ObjectError
    from .elf import internal_map_name as internal_map_name
    from .elf import read_object as read_object

__getattr__, __dir__ = reexport(__name__)
