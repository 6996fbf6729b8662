"""Verbs on maps as a whole: create, show, list, pin, freeze."""

import sys
from typing import Annotated, Optional

import typer

from ..api import sizes_and_btf
from ..core.maps import Map, expand, list_maps, require_some
from ..core.pins import DEFAULT_BPFFS, PinIndex
from ..core.spec import MapSpec
from ..errors import BpfmapError, UsageError
from ..output import write_infos, write_object_maps
from ..types import MapFlag, MapType
from .common import (
    NO_LAYOUT,
    LayoutOptions,
    MapArg,
    OutputOpt,
    QuietOpt,
    check_seconds,
    complete_map,
    complete_type,
    examples,
    fmt_or_default,
    layout_options,
    say,
)
from .options import Choices

app = typer.Typer()

BTF_MODES = Choices(("auto", "required", "none"), {"auto": "attach BTF, or say why not"})


@app.command(
    epilog=examples(
        "bpfmap create hash --key 4 --value 8 --max-entries 65536 --pin /sys/fs/bpf/demo/counts --mkdir",
        "bpfmap create lru_hash --layout 'saddr=ipv4,dport=be16:packets=u64' --name flows --pin /sys/fs/bpf/demo/flows",
    )
)
@layout_options()
def create(
    map_type: Annotated[
        Optional[str],
        typer.Argument(
            metavar="TYPE", help="hash, array, lru_hash, queue, ... ('-' or '_').", autocompletion=complete_type
        ),
    ] = None,
    pin: Annotated[Optional[str], typer.Option("--pin", "-p", help="Where to pin the map (required).")] = None,
    key: Annotated[Optional[int], typer.Option("--key", "-k", help="Key size in bytes.")] = None,
    value: Annotated[Optional[int], typer.Option("--value", "-v", help="Value size in bytes.")] = None,
    max_entries: Annotated[
        Optional[int], typer.Option("--max-entries", "-n", help="Capacity (default 1024; bytes for ringbuf).")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Map name, up to 15 characters.")] = "",
    flags: Annotated[
        Optional[str], typer.Option("--flags", help="Comma-separated: no_prealloc, rdonly_prog, ...")
    ] = None,
    inner_map: Annotated[
        Optional[str], typer.Option("--inner-map", metavar="MAP", help="Template for array_of_maps / hash_of_maps.")
    ] = None,
    numa_node: Annotated[Optional[int], typer.Option("--numa-node", help="Allocate on this NUMA node.")] = None,
    hashes: Annotated[int, typer.Option("--hashes", help="Bloom filter: number of hash functions (0 = 5).")] = 0,
    map_extra: Annotated[
        Optional[str],
        typer.Option(
            "--map-extra",
            metavar="N",
            help="map_extra as the kernel takes it (arena: the user address it is mapped at, "
            "page-aligned, 0x...; bloom filter: as --hashes).",
        ),
    ] = None,
    mkdir: Annotated[bool, typer.Option("--mkdir", help="Create missing directories of the pin path.")] = False,
    no_mount: Annotated[bool, typer.Option("--no-mount", help=f"Never mount a bpffs on {DEFAULT_BPFFS}.")] = False,
    btf: Annotated[
        str,
        typer.Option("--btf", metavar="MODE", help=f"With a layout: {BTF_MODES.help()}."),
    ] = "auto",
    output: OutputOpt = None,
    quiet: QuietOpt = False,
    from_object: Annotated[
        Optional[str],
        typer.Option(
            "--from-object",
            metavar="OBJ",
            help="Create the maps a compiled BPF object (.o) declares in .maps, with "
            "their BTF, pinned as DIR/NAME (--pin-dir); no program is loaded.",
        ),
    ] = None,
    pin_dir: Annotated[
        Optional[str], typer.Option("--pin-dir", metavar="DIR", help="--from-object: the directory to pin the maps in.")
    ] = None,
    only: Annotated[
        Optional[str], typer.Option("--only", metavar="NAME,...", help="--from-object: just these maps.")
    ] = None,
    opts: LayoutOptions = NO_LAYOUT,
) -> None:
    """Create a map and pin it.  Prints the new map's info (nothing with --quiet).

    With --from-object OBJ --pin-dir DIR, creates every map the object declares as
    libbpf would (BTF, map-in-map inner maps and initial slots), pinned at DIR/NAME; a
    compatible map already pinned there is reused, an incompatible one is an error that
    lists the differences (and nothing is created).

    With --layout or --c-header the sizes come from the layout and the map carries BTF
    for its key and value types, so bpftool and a later 'bpfmap dump' decode it."""
    if from_object is not None:
        given = {
            "TYPE": map_type,
            "--pin": pin,
            "--key": key,
            "--value": value,
            "--max-entries": max_entries,
            "--flags": flags,
            "--inner-map": inner_map,
            "--layout": opts.layout,
            "--c-header": opts.c_header,
            "--map-extra": map_extra,
        }
        stray = [k for k, v in given.items() if v is not None] + (["--name"] if name else [])
        if stray:
            raise UsageError(f"create --from-object takes its maps from the object; drop {', '.join(stray)}")
        _create_from_object(from_object, pin_dir, only, mkdir, no_mount, output, quiet)
        return
    if pin_dir is not None or only is not None:
        raise UsageError("--pin-dir and --only go with --from-object OBJ")
    if map_type is None:
        raise UsageError("create: missing TYPE (hash, array, ...) or --from-object OBJ")
    mtype = MapType.parse(map_type)
    if not pin:
        raise UsageError(
            f"create {mtype.label}: --pin PATH is required: a map lives only as long as a file "
            f"descriptor or a pin, and this command's descriptors close when it exits"
        )
    BTF_MODES.check(btf, "--btf")
    extra = hashes
    if map_extra is not None:
        if hashes:
            raise UsageError("create: give --hashes or --map-extra, not both")
        try:
            extra = int(map_extra, 0)
        except ValueError:
            raise UsageError(f"--map-extra {map_extra}: give a number (decimal or 0x...)") from None
        if not 0 <= extra < 1 << 64:
            raise UsageError(f"--map-extra {map_extra}: out of range (0 .. 2^64-1)")
    lay = opts.pick()
    types = None
    if lay is not None:
        key, value, types = sizes_and_btf(mtype, lay, key, value, btf != "none")
    spec = MapSpec(
        mtype,
        key,
        value,
        max_entries,
        MapFlag.parse(flags) if flags is not None else None,
        name=name,
        numa_node=numa_node,
        map_extra=extra,
        btf=types,
    ).resolved()  # a bad combination fails here, before any pin is checked or mounted
    m = Map.create(
        spec, inner_map=inner_map or None, btf_required=btf == "required", pin=pin, mkdir=mkdir, mount=not no_mount
    )
    with m:
        if m.btf_note:
            say(f"note: {m.btf_note}", quiet)
        info = m.info()
    if not quiet:
        write_infos([info.to_dict()], fmt_or_default(output), sys.stdout, single=True)


def _create_from_object(
    obj_path: str,
    pin_dir: Optional[str],
    only: Optional[str],
    mkdir: bool,
    no_mount: bool,
    output: Optional[str],
    quiet: bool,
) -> None:
    from ..objects import create_maps, read_object

    if not pin_dir:
        raise UsageError(f"create --from-object {obj_path}: --pin-dir DIR is required (maps are pinned as DIR/NAME)")
    obj = read_object(obj_path)
    names = [n.strip() for n in only.split(",") if n.strip()] if only is not None else None
    created = create_maps(obj, pin_dir, names, mkdir=mkdir, mount=not no_mount)
    if obj.btf_note:
        say(f"note: {obj.btf_note}", quiet)
    infos = []
    try:
        for c in created:
            if c.reused:
                say(f"note: {c.path}: reused the map pinned there (compatible with {c.definition.name})", quiet)
            info = c.map.info()
            info.pinned = [c.path]
            infos.append(info.to_dict())
    finally:
        for c in created:
            c.map.close()
    if not quiet:
        write_infos(infos, fmt_or_default(output), sys.stdout)


@app.command(
    epilog=examples(
        "bpfmap show /sys/fs/bpf/counts",
        "bpfmap show name:counts -o json",
    )
)
def show(
    map_ref: Annotated[
        Optional[str],
        typer.Argument(
            metavar="MAP", help="Pinned path, id:N or name:NAME.", show_default=False, autocompletion=complete_map
        ),
    ] = None,
    output: OutputOpt = None,
    object_: Annotated[
        Optional[str],
        typer.Option(
            "--object", metavar="OBJ", help="List the maps a compiled BPF object declares, with their C types."
        ),
    ] = None,
) -> None:
    """Show one map: id, type, name, sizes, flags, memlock, BTF id and pins (without MAP,
    every map, as 'list'; with --object OBJ, the maps an object declares)."""
    if object_ is not None:
        if map_ref is not None:
            raise UsageError("give MAP or --object OBJ, not both")
        from ..objects import read_object

        write_object_maps([d.to_dict() for d in read_object(object_).maps], fmt_or_default(output), sys.stdout)
        return
    if map_ref is None:  # as bpftool map show
        list_(output)
        return
    found = PinIndex()  # the pins, found once for every map the command shows
    several = expand(map_ref, names=True, pins=found)
    if several is not None:  # a directory, a glob, name:GLOB: each map, as list shows them
        from ..core import owners

        require_some(several, map_ref)
        pids, progs = owners.holders(), owners.users()
        infos = []
        for ref in several:
            with Map.open(ref, readonly=True) as m:
                info = m.info(pins=found).to_dict()
                _add_owners(info, m, None, pids, progs)
                infos.append(info)
        write_infos(infos, fmt_or_default(output), sys.stdout)
        return
    from ..core import owners

    with Map.open(map_ref, readonly=True) as m:
        mi = m.info(pins=found)
        info = mi.to_dict()
        saved = getattr(m, "saved", None)  # a saved map: no process or program holds it here
        _add_owners(info, m, None, {} if saved else owners.holders({mi.id}), {} if saved else owners.users())
        if saved:
            info["saved"] = saved
        info["key_type"] = info["value_type"] = None
        info["operations"] = m.kind.operations(MapFlag(mi.flags), mi.frozen or bool(saved))
        try:
            mb = m.btf()
            if mb is not None:
                info["key_type"], info["value_type"] = mb.key_c(), mb.value_c()
        except BpfmapError as err:
            say(f"note: BTF of {map_ref} not shown ({err})")
    write_infos([info], fmt_or_default(output), sys.stdout, single=True)


@app.command(
    name="list",
    epilog=examples(
        "bpfmap list",
        "bpfmap list -o jsonl | jq -r .pinned[]",
    ),
)
def list_(
    output: OutputOpt = None,
    no_count: Annotated[bool, typer.Option("--no-count", help="Do not count each map's entries.")] = False,
    budget: Annotated[
        float,
        typer.Option("--count-budget", metavar="S", help="Seconds to count one map's entries (more: '>N')."),
    ] = 0.25,
) -> None:
    """List every map in the system, with the paths it is pinned at, how many entries each
    holds (within --count-budget seconds a map), and the processes and programs using it."""
    from ..core import owners

    check_seconds(budget, "--count-budget")
    pids, progs = owners.holders(), owners.users()

    def infos():
        for i in list_maps(pins=True):
            info = i.to_dict()
            if no_count:
                _add_owners(info, None, None, pids, progs)
            else:
                try:
                    with Map.open(f"id:{i.id}", readonly=True) as m:
                        _add_owners(info, m, budget, pids, progs)
                except BpfmapError:
                    _add_owners(info, None, None, pids, progs)  # gone since it was listed, or not ours
            yield info

    write_infos(infos(), fmt_or_default(output), sys.stdout)


def _add_owners(info: dict, m: Optional[Map], budget: Optional[float], pids: dict, progs: dict) -> None:
    """entries, entries_exact, fill, pids and programs of a map's info (JSON shape in
    docs/contract.md); no count without ``m``."""
    from ..core import owners

    entries, exact = owners.count(m, budget) if m is not None else (None, True)
    info["entries"], info["entries_exact"] = entries, exact
    info["fill"] = owners.fill(m, entries) if m is not None and exact else None
    info["pids"] = pids.get(info["id"], [])
    info["programs"] = progs.get(info["id"], [])


@app.command(
    epilog=examples(
        "bpfmap pin name:counts /sys/fs/bpf/counts-again",
    )
)
def pin(
    map_ref: MapArg,
    path: Annotated[str, typer.Argument(help="New pin path on a bpffs.")],
    mkdir: Annotated[bool, typer.Option("--mkdir", help="Create missing directories.")] = False,
) -> None:
    """Pin an existing map (by id, name or another pin) at a new path; never replaces a pin."""
    with Map.open(map_ref, readonly=True) as m:
        m.pin(path, mkdir=mkdir)


@app.command(
    epilog=examples(
        "bpfmap freeze /sys/fs/bpf/config",
    )
)
def freeze(map_ref: MapArg) -> None:
    """Make a map read-only for user space, for good (programs can still write unless rdonly_prog)."""
    with Map.open(map_ref) as m:
        m.freeze()
