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
    from .create import Created, create_map, create_maps
    from .elf import BpfObject, MapDef, ObjectError, internal_map_name, read_object

_LAZY = {
    "Created": "create",
    "create_map": "create",
    "create_maps": "create",
    "BpfObject": "elf",
    "MapDef": "elf",
    "ObjectError": "elf",
    "internal_map_name": "elf",
    "read_object": "elf",
}
__getattr__, __dir__ = reexport(__name__, _LAZY)

__all__ = [
    "BpfObject",
    "Created",
    "MapDef",
    "ObjectError",
    "create_map",
    "create_maps",
    "internal_map_name",
    "read_object",
]
