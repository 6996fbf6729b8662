"""Verbs that count or change many entries by a filter, or move them: count, copy,
migrate, and delete --where (library: bpfmap.entries.changes, bpfmap.entries.migrate)."""

import sys
from typing import Annotated, Optional

import typer

from ..core.maps import Map
from ..entries.changes import Deletion
from ..entries.migrate import Copy, Migration
from ..entries.migrate import migrate as run_migration
from ..errors import (
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_SYSTEM,
    EntriesDropped,
    NoRoom,
    UsageError,
    amended,
    signal_exit,
)
from ..layout import Layout, choose
from ..output import write_entries
from ..view import View
from .common import (
    NO_FILTER,
    NO_LAYOUT,
    FilterOptions,
    LayoutOptions,
    MapArg,
    QuietOpt,
    examples,
    filter_options,
    layout_options,
    parse_layout,
    say,
)
from .options import OPTION_NAMES
from .verbs import do_count
from .wording import n_entries

app = typer.Typer()


@app.command(
    epilog=examples(
        "bpfmap count /sys/fs/bpf/counts",
        "bpfmap count /sys/fs/bpf/flows --where 'packets>=3'",
    )
)
@layout_options()
@filter_options()
def count(map_ref: MapArg, opts: LayoutOptions = NO_LAYOUT, filt: FilterOptions = NO_FILTER) -> None:
    """Print how many entries the map holds, or how many --where / --older-than pick.
    Exit 1 when that is none (as grep -c)."""
    code = do_count(map_ref, opts, filt)
    if code:
        raise typer.Exit(code)


def delete_where(
    map_ref: str,
    filt: FilterOptions,
    opts: LayoutOptions,
    dry_run: bool,
    print_: bool,
    output: Optional[str],
    quiet: bool = False,
) -> None:
    """delete MAP --where ...: the matching entries, re-checked and deleted a chunk at a time;
    --print writes them as dump would; one line on stderr says what happened."""
    fmt = output or "text"
    if fmt == "table":
        raise UsageError("delete --print: -o table is drawn once every row is in; use text, jsonl, json or csv")
    with Map.open(map_ref, readonly=dry_run) as m:
        view = opts.view(m)
        deletion = Deletion(view, filt.bind(view), dry_run=dry_run)
        what = f"delete {map_ref}"
        if print_ and not dry_run:
            _write_deleted(deletion, what, fmt, quiet)
            return
        try:
            if print_:
                write_entries(deletion.run(), fmt, view.key, view.value, view.percpu, sys.stdout)
            else:
                for _batch in deletion.run():
                    pass
        except KeyboardInterrupt:
            say(f"{what}: interrupted; {_summary(deletion)}")
            raise typer.Exit(EXIT_INTERRUPTED) from None
    say(f"{what}: {_summary(deletion)}", quiet)
    if (deletion.matched if dry_run else deletion.deleted) == 0:
        raise typer.Exit(EXIT_NOT_FOUND)


def _write_deleted(deletion: Deletion, what: str, fmt: str, quiet: bool = False) -> None:
    """delete --where --print: as dump --delete, what does not reach the output goes back
    in the map (a reader that closes early is exit 0); Ctrl-C finishes the chunk in hand."""
    from ..entries.drain import DeliveryError, HeldSignals

    note = "finishing the entries in hand, then stopping; press Ctrl-C again to put them back in the map instead"
    try:
        with HeldSignals(note) as held:
            deletion.write(sys.stdout, fmt, stop=lambda: held.caught is not None)
    except DeliveryError as err:
        if not (err.reader_gone and not err.rescued):
            raise  # its message says how many were written, put back and saved
        say(f"{what}: the reader closed the output; {_summary(deletion)}")
        return
    if held.caught is not None:
        say(f"{what}: interrupted; {_summary(deletion)}; the rest left in the map")
        raise typer.Exit(signal_exit(held.caught))
    say(f"{what}: {_summary(deletion)}", quiet)
    if deletion.deleted == 0:
        raise typer.Exit(EXIT_NOT_FOUND)


def _summary(d: Deletion) -> str:
    if d.dry_run:
        return f"{n_entries(d.matched)} match; nothing deleted (--dry-run)"
    text = f"{n_entries(d.deleted)} deleted"
    if d.restored:
        text += f", {d.restored} not printed were put back in the map"
    kept = []
    if d.changed:
        kept.append(f"{d.changed} changed since they were read and no longer match: kept")
    if d.gone:
        kept.append(f"{d.gone} already gone")
    return text + (f" ({'; '.join(kept)})" if kept else "")


# -- copy and migrate ----------------------------------------------------------------------

DropOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--drop",
        metavar="FIELD",
        help="Leave the source's FIELD (value.NAME, key.NAME) behind, or cut an array to the target's length.",
    ),
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", metavar="FIELD=VALUE", help="Give a field the source lacks this value (default zero)."),
]
TruncateOpt = Annotated[
    bool, typer.Option("--truncate", help="Cut strings (char[N]) longer than the target's; else they are refused.")
]
PercpuToPlainOpt = Annotated[
    Optional[str],
    typer.Option(
        "--percpu", metavar="HOW", help="Per-CPU source, plain target: sum, max, min, avg or cpu0 of the CPUs' values."
    ),
]
AllowLossOpt = Annotated[
    bool,
    typer.Option(
        "--allow-loss",
        help="Write what fits when the target cannot hold every entry (or evicts some) and say how many were "
        "dropped; the exit is still 3 when any were.",
    ),
]
ToCpuOpt = Annotated[
    Optional[str],
    typer.Option(
        "--to-cpu", metavar="all|0", help="Plain source, per-CPU target: the value on every CPU, or on CPU 0."
    ),
]


def _sets(items: Optional[list[str]]) -> dict[str, str]:
    out = {}
    for item in items or []:
        path, eq, value = item.partition("=")
        if not eq or not path.strip():
            raise UsageError(f"--set {item}: write FIELD=VALUE (value.NAME=0)")
        out[path.strip()] = value
    return out


def _copy_options(where, drop, set_, truncate, percpu, to_cpu, allow_loss=False) -> dict:
    return dict(
        where=where,
        allow_loss=allow_loss,
        drops=set(drop or []),
        sets=_sets(set_),
        truncate=truncate,
        percpu=percpu,
        to_cpu=to_cpu,
    )


def _side_layout(layout: Optional[Layout], header: Optional[str], key_type, value_type, side: str):
    """The layout of one side of a copy or migration: --SIDE-layout, or the types
    --SIDE-key-type/--SIDE-value-type name in --c-header FILE (shared by both sides)."""
    names = OPTION_NAMES | {p: f"--{side}-{OPTION_NAMES[p][2:]}" for p in ("layout", "key_type", "value_type")}
    return choose(
        layout,
        c_header=header if key_type or value_type else None,
        key_type=key_type,
        value_type=value_type,
        names=names,
    )


@app.command(
    epilog=examples(
        "bpfmap copy /sys/fs/bpf/counts /sys/fs/bpf/copy",
        "bpfmap copy /sys/fs/bpf/flows /sys/fs/bpf/flows2 --where 'packets>=3' --set bytes=1500",
    )
)
@filter_options()
def copy(
    src: Annotated[str, typer.Argument(metavar="SRC", help="The map to copy from.")],
    dst: Annotated[str, typer.Argument(metavar="DST", help="The map to copy into.")],
    from_layout: Annotated[
        Optional[Layout],
        typer.Option(
            "--from-layout", parser=parse_layout, metavar="KEY:VALUE", help="SRC's layout (default: its BTF)."
        ),
    ] = None,
    to_layout: Annotated[
        Optional[Layout],
        typer.Option("--to-layout", parser=parse_layout, metavar="KEY:VALUE", help="DST's layout (default: its BTF)."),
    ] = None,
    c_header: Annotated[
        Optional[str], typer.Option("--c-header", metavar="FILE", help="C declarations the --*-type options name.")
    ] = None,
    from_key_type: Annotated[Optional[str], typer.Option("--from-key-type", metavar="TYPE")] = None,
    from_value_type: Annotated[Optional[str], typer.Option("--from-value-type", metavar="TYPE")] = None,
    to_key_type: Annotated[Optional[str], typer.Option("--to-key-type", metavar="TYPE")] = None,
    to_value_type: Annotated[Optional[str], typer.Option("--to-value-type", metavar="TYPE")] = None,
    drop: DropOpt = None,
    set_: SetOpt = None,
    truncate: TruncateOpt = False,
    percpu: PercpuToPlainOpt = None,
    to_cpu: ToCpuOpt = None,
    allow_loss: AllowLossOpt = False,
    quiet: QuietOpt = False,
    filt: FilterOptions = NO_FILTER,
) -> None:
    """Copy every entry of SRC (or those --where picks) into DST, whose layout may differ:
    fields matched by name, integers widened (a narrowing checked for every value before
    anything is written), missing fields zero or --set.  Entries DST cannot hold (an
    array's index range, a full map) are refused before anything is written; after
    writing, DST's keys are read back and the count said is what DST holds.  Exit 1 when
    nothing was copied, 3 when entries were dropped (an LRU map evicts; --allow-loss)."""
    src_layout = _side_layout(from_layout, c_header, from_key_type, from_value_type, "from")
    dst_layout = _side_layout(to_layout, c_header, to_key_type, to_value_type, "to")
    what = f"copy {src} -> {dst}"
    with Map.open(src, readonly=True) as sm, Map.open(dst) as dm:
        sv = View(sm, src_layout)
        options = _copy_options(filt.bind(sv), drop, set_, truncate, percpu, to_cpu, allow_loss)
        job = Copy(sv, View(dm, dst_layout), **options)
        try:
            keys, values, n = job.read()
        except KeyboardInterrupt:
            say(f"{what}: interrupted while reading; nothing written")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        try:
            held = job.write(keys, values, n)
        except NoRoom as err:
            raise amended(err, "; --allow-loss writes what fits and says how many were left out") from None
        except KeyboardInterrupt:
            say(f"{what}: interrupted; {job.written} of {n} entries went in")
            raise typer.Exit(EXIT_INTERRUPTED) from None
    say(f"{what}: {n_entries(held)} copied{_dropped(job)}", quiet)
    if job.dropped:  # a loss the user allowed is still a loss: scripts see it
        raise typer.Exit(EXIT_SYSTEM)
    if held == 0:
        raise typer.Exit(EXIT_NOT_FOUND)


def _dropped(job: Copy) -> str:
    """What a copy allowed to lose lost, or nothing."""
    parts = [
        text
        for n, text in (
            (job.left_out, "did not fit and were left out"),
            (job.lost, "were evicted after they were written"),
            (job.evicted, f"that {job.target} held before were evicted"),
        )
        if n
        for text in [f"{n} {text}"]
    ]
    return f"; {job.dropped} dropped (--allow-loss): {', '.join(parts)}" if parts else ""


@app.command(
    epilog=examples(
        "bpfmap migrate /sys/fs/bpf/counts --max-entries 4096 --keep-old /sys/fs/bpf/counts_v1",
        "bpfmap migrate /sys/fs/bpf/flows --layout u32:packets=u64,bytes=u64,ts=u64",
    )
)
@layout_options()
@filter_options()
def migrate(
    pin: Annotated[str, typer.Argument(metavar="PIN", help="The pinned map to replace.")],
    max_entries: Annotated[Optional[int], typer.Option("--max-entries", metavar="N", help="The new size.")] = None,
    map_type: Annotated[
        Optional[str], typer.Option("--type", metavar="TYPE", help="The new type (hash -> lru_hash, ...).")
    ] = None,
    flags: Annotated[
        Optional[str], typer.Option("--flags", metavar="FLAGS", help="The new flags (no_prealloc,...).")
    ] = None,
    old_layout: Annotated[
        Optional[Layout],
        typer.Option(
            "--old-layout", parser=parse_layout, metavar="KEY:VALUE", help="The old map's layout (default: its BTF)."
        ),
    ] = None,
    from_object: Annotated[
        Optional[str],
        typer.Option(
            "--from-object", metavar="OBJ", help="Make the new map as the BPF object OBJ declares --map NAME."
        ),
    ] = None,
    map_name: Annotated[
        Optional[str], typer.Option("--map", metavar="NAME", help="--from-object: the map's name.")
    ] = None,
    keep_old: Annotated[
        Optional[str],
        typer.Option("--keep-old", metavar="PATH", help="Where the old map stays pinned (default: PIN_old)."),
    ] = None,
    drop: DropOpt = None,
    set_: SetOpt = None,
    truncate: TruncateOpt = False,
    percpu: PercpuToPlainOpt = None,
    to_cpu: ToCpuOpt = None,
    allow_loss: AllowLossOpt = False,
    quiet: QuietOpt = False,
    opts: LayoutOptions = NO_LAYOUT,
    filt: FilterOptions = NO_FILTER,
) -> None:
    """Replace the map pinned at PIN by one of a new shape holding the same entries
    (converted as 'copy' does), swapped in with one rename: every later open of PIN gets
    the new map, and no moment has none.  The old map stays pinned at --keep-old.
    A new map too small for the entries is refused before the swap unless --allow-loss.
    What writers that opened PIN before the swap changed meanwhile is carried over in one
    pass after it.  Programs and processes that hold the old map keep using it: reload
    them after.  Exit 3 when entries were dropped (--allow-loss) or changes made meanwhile
    could not be carried."""
    layout = opts.pick()
    progress: dict = {}
    try:
        result = run_migration(
            pin,
            max_entries=max_entries,
            map_type=map_type,
            flags=flags,
            layout=layout,
            from_object=from_object,
            map_name=map_name,
            keep_old=keep_old,
            old_layout=old_layout,
            where=filt.bind,
            show_as=opts.formats(),
            copy_options=_copy_options(None, drop, set_, truncate, percpu, to_cpu, allow_loss),
            on_copy=lambda job: progress.setdefault("copy", job),
            on_stage=lambda name: progress.__setitem__("stage", name),
        )
    except NoRoom as err:
        raise amended(err, "; --allow-loss migrates what fits and says how many were left out") from None
    except EntriesDropped as err:
        raise amended(err, "; --allow-loss swaps it in anyway") from None
    except KeyboardInterrupt:
        if progress.get("stage") == "swapped":
            say(
                f"migrate {pin}: interrupted after the swap: {pin} is the new map; changes written to the old map "
                f"while it ran may not all have been carried over: the old map is at {keep_old or pin + '_old'}"
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
        job = progress.get("copy")
        went = f"{job.written} entries had gone into the new map, which is dropped; " if job is not None else ""
        say(f"migrate {pin}: interrupted before the swap; {went}{pin} is the old map still")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if result.btf_note:
        say(f"note: {result.btf_note}", quiet)
    say(_migrated(result), quiet)
    if result.failed or result.dropped:
        raise typer.Exit(EXIT_SYSTEM)


def _migrated(result: Migration) -> str:
    old, new, pin = result.old, result.new, result.pin
    changes = [
        f"{name} {getattr(old, attr)} -> {getattr(new, attr)}"
        for name, attr in (
            ("type", "type_name"),
            ("key", "key_size"),
            ("value", "value_size"),
            ("max_entries", "max_entries"),
            ("flags", "flags"),
        )
        if getattr(old, attr) != getattr(new, attr)
    ]
    text = (
        f"migrate {pin}: {n_entries(result.entries)} moved into map id {new.id}"
        f"{' (' + ', '.join(changes) + ')' if changes else ''}"
        f"{f', {result.dropped} dropped (--allow-loss)' if result.dropped else ''}, now pinned at {pin}; "
        f"the old map (id {old.id}) is at {result.kept}"
    )
    meanwhile = [
        f"{n} {what}"
        for n, what in (
            (result.carried, "carried over"),
            (result.newer, "not carried: the new map had a newer write"),
            (result.failed, f"could not be carried: they are only in {result.kept}"),
        )
        if n
    ]
    if meanwhile:
        text += f". Changes written through the old map while it ran: {'; '.join(meanwhile)}"
    return text + f". Programs and processes holding the old map keep using it: reload them so they open {pin} again"
