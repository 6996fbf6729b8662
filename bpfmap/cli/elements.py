"""Verbs on elements: lookup, update, delete, dump, and push/pop/peek for queues."""

import sys
from typing import Annotated, Optional

import typer

from ..core.maps import MAX_BATCH_SIZE, Map, UpdateMode, expand, require_some
from ..errors import (
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    BpfmapError,
    KernelError,
    UsageError,
    quote,
    signal_exit,
)
from ..layout import Layout
from ..output import EntryTexts, entry_object, json_dumps, write_objects, write_value
from ..types import Access, Value
from ..view import View
from . import options as o
from . import worded
from .common import (
    NO_FILTER,
    NO_LAYOUT,
    FilterOptions,
    LayoutOptions,
    MapArg,
    OutputOpt,
    QuietOpt,
    examples,
    filter_options,
    layout_options,
    option,
    parse_layout,
    say,
)
from .options import Choices
from .verbs import (
    do_delete,
    do_lookup,
    do_pop,
    do_push,
    dump_entries,
    lookup_exists,
    single_format,
    take_one,
    update_one,
)
from .wording import n_entries

app = typer.Typer()

RECURSIVE_OUTPUTS = Choices(("text", "json", "jsonl"))  # dump --recursive's

KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="Hex bytes ('01 00 00 00') or per the layout.")]
PercpuOpt = Annotated[Optional[str], option(o.PERCPU)]
CpuOpt = Annotated[Optional[int], option(o.CPU)]
StackPidOpt = Annotated[Optional[int], option(o.PID)]
LockOpt = Annotated[bool, option(o.LOCK)]


@app.command(
    epilog=examples(
        "bpfmap lookup /sys/fs/bpf/counts 1",
        "if bpfmap lookup /sys/fs/bpf/counts 1 --exists; then echo present; fi",
    ),
)
@layout_options()
def lookup(
    map_ref: MapArg,
    key: Annotated[
        Optional[str],
        typer.Argument(
            metavar="KEY",
            help="Hex bytes ('01 00 00 00') or per the layout; optional for one-entry arrays "
            "(global-variable maps): 0.",
        ),
    ] = None,
    percpu: PercpuOpt = None,
    cpu: CpuOpt = None,
    output: OutputOpt = None,
    exists: Annotated[bool, option(o.EXISTS)] = False,
    lock: LockOpt = False,
    pid: StackPidOpt = None,
    opts: LayoutOptions = NO_LAYOUT,
) -> None:
    """Print the value at KEY (text: the value alone).  Exit 1 if KEY is absent."""
    broken = o.broken_rule({"percpu": percpu, "cpu": cpu})
    if broken is not None:
        raise UsageError(broken)
    if exists:
        if not lookup_exists(map_ref, key, opts):
            raise typer.Exit(EXIT_NOT_FOUND)
        return
    several = expand(map_ref, names=True)
    if several is not None:
        if key is None or percpu is not None or cpu is not None or lock or pid is not None:
            raise UsageError(f"lookup {map_ref}: several maps take a KEY and no --percpu, --cpu, --lock or --pid")
        from .many import lookup_many

        require_some(several, map_ref)
        lookup_many(several, key, output, opts)
        return
    do_lookup(map_ref, key, percpu, cpu, output, opts, lock=lock, pid=pid)


OptKeyArg = Annotated[Optional[str], typer.Argument(metavar="KEY", help="Hex bytes ('01 00 00 00') or per the layout.")]


@app.command(
    epilog=examples(
        "bpfmap update /sys/fs/bpf/counts 3 100 --noexist",
        "bpfmap dump /sys/fs/bpf/counts -o jsonl | bpfmap update /sys/fs/bpf/copy --from -",
    ),
)
@layout_options()
def update(
    map_ref: MapArg,
    key: OptKeyArg = None,
    values: Annotated[
        Optional[list[str]],
        typer.Argument(
            metavar="VALUE...",
            help="The value; per-CPU maps take one (for every CPU) or one per CPU; maps of maps "
            "a MAP, prog_array a program pin or id:N.",
        ),
    ] = None,
    noexist: Annotated[bool, option(o.NOEXIST)] = False,
    exist: Annotated[bool, option(o.EXIST)] = False,
    percpu_values: Annotated[Optional[str], option(o.PERCPU_VALUES)] = None,
    cpu: CpuOpt = None,
    from_: Annotated[Optional[str], option(o.FROM)] = None,
    input_format: Annotated[str, option(o.INPUT_FORMAT)] = "auto",
    keep_going: Annotated[bool, option(o.KEEP_GOING)] = False,
    var: Annotated[Optional[list[str]], option(o.VAR)] = None,
    lock: LockOpt = False,
    quiet: QuietOpt = False,
    opts: LayoutOptions = NO_LAYOUT,
) -> None:
    """Write VALUE at KEY (create or replace), load many entries with --from FILE, or set
    variables of a global-variable map with --var NAME=VALUE."""
    values = values or []
    if var:
        if values or from_ is not None or percpu_values is not None or cpu is not None or noexist:
            raise UsageError("update --var takes no VALUE, --from, --percpu-values, --cpu or --noexist")
        assignments = {}
        for item in var:
            name, eq, text = item.partition("=")
            if not eq or not name.strip():
                raise UsageError(f"--var {quote(item)}: write NAME=VALUE")
            assignments[name.strip()] = text
        with Map.open(map_ref) as m:
            view = opts.view(m)
            view.set_fields(view.default_key(key, "update"), assignments, text=True)
        return
    if noexist and exist:
        raise UsageError("update: --noexist and --exist exclude each other")
    mode: UpdateMode = "noexist" if noexist else "exist" if exist else "any"
    if from_ is not None:
        if key is not None or values or percpu_values is not None or cpu is not None:
            raise UsageError("update --from FILE takes no KEY, VALUE, --percpu-values or --cpu")
        with Map.open(map_ref) as m:
            _bulk_load(m, opts.view(m), from_, input_format, mode, keep_going, quiet)
        return
    if key is None:
        raise UsageError(f"update {map_ref}: missing KEY and VALUE (or --from FILE)")
    if lock and (cpu is not None or var):
        raise UsageError("update --lock writes a whole value; it takes no --cpu or --var")
    with Map.open(map_ref) as m:
        update_one(m, opts.view(m), key, values, percpu_values, cpu, mode, lock=lock)


def _bulk_load(m: Map, view: View, path: str, fmt: str, mode: str, keep_going: bool, quiet: bool) -> None:
    from ..entries.bulk import INPUT_FORMATS, Loader
    from ..host.inputs import LoadError, open_input
    from .term import Progress, ReadCounter

    if fmt not in INPUT_FORMATS:
        raise UsageError(f"--input-format {fmt}: choose one of {', '.join(INPUT_FORMATS)}")
    loader = Loader(view, mode, keep_going)
    where = f"update {m.ref} --from {path}"
    stream = open_input(path, where)
    progress = Progress(f"load {path}", _file_size(stream), unit="bytes", enabled=not quiet)
    try:
        loader.load_stream(ReadCounter(stream, progress), fmt, path)
    except KeyboardInterrupt:
        written = loader.abort()
        say(f"{where}: interrupted; {n_entries(written)} written")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except LoadError as err:
        raise UsageError(f"{where}: {worded(err)}") from None
    except BpfmapError:
        # the map refused (MapFull, ...), or lost entries (an LRU map): the error already
        # says how many went in; the lines skipped before it are said first
        try:
            loader.finish()  # joins the writer thread
        except BpfmapError:
            pass
        for line, msg in loader.bad:
            say(f"{where}: line {line}: {worded(msg)} (skipped)")
        raise
    except OSError as err:  # reading the input failed (EIO, ...): say so with what went in
        written = loader.abort()
        raise KernelError(
            f"{where}: reading the input failed ({err.strerror or err}); {n_entries(written)} written", err.errno or 0
        ) from None
    finally:
        progress.close()
        if stream is not sys.stdin:
            stream.close()
    for line, msg in loader.bad:
        say(f"{where}: line {line}: {worded(msg)} (skipped)")
    say(
        f"{where}: {n_entries(loader.written)} written"
        + (f", {len(loader.bad)} bad line{'s' * (len(loader.bad) != 1)} skipped" if loader.bad else ""),
        quiet and not loader.bad,
    )
    if loader.bad:
        raise typer.Exit(EXIT_USAGE)


def _file_size(stream) -> int | None:
    """The size of a regular file (a progress bar's total); None for pipes."""
    import os
    import stat

    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


@app.command(
    epilog=examples(
        "bpfmap delete /sys/fs/bpf/counts 2 --print -o json",
        "bpfmap delete /sys/fs/bpf/flows --older-than 30s --time-field ts --print",
    ),
)
@layout_options()
@filter_options()
def delete(
    map_ref: MapArg,
    key: OptKeyArg = None,
    all_: Annotated[bool, option(o.ALL)] = False,
    print_: Annotated[bool, option(o.PRINT)] = False,
    dry_run: Annotated[bool, option(o.DRY_RUN)] = False,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
    opts: LayoutOptions = NO_LAYOUT,
    filt: FilterOptions = NO_FILTER,
) -> None:
    """Delete KEY (exit 1 if it is absent), every entry with --all, or those --where /
    --older-than pick (each re-checked just before it goes; exit 1 when none)."""
    if output is not None and not print_:
        raise UsageError("delete: --output goes with --print")
    if filt:
        if key is not None or all_:
            raise UsageError("delete: give KEY, --all or --where, one of them")
        from .changes import delete_where

        delete_where(map_ref, filt, opts, dry_run, print_, output, quiet)
        return
    if dry_run:
        raise UsageError("delete --dry-run goes with --where or --older-than")
    if all_:
        if key is not None:
            raise UsageError("delete: give KEY or --all, not both")
        if print_:
            raise UsageError("delete --all --print: to see every entry as it goes, use 'bpfmap dump MAP --delete'")
        clear(map_ref, quiet)
        return
    if key is None:
        raise UsageError(f"delete {map_ref}: missing KEY (or --all)")
    if print_:
        take_one(map_ref, key, output, opts)
        return
    do_delete(map_ref, key, opts)


@app.command(
    epilog=examples(
        "bpfmap clear /sys/fs/bpf/copy",
    )
)
def clear(map_ref: MapArg, quiet: QuietOpt = False) -> None:
    """Delete every entry, batch by batch (arrays: zero every value).  Says how many on stderr."""
    with Map.open(map_ref) as m:
        n = m.clear()
    say(f"clear {map_ref}: {n_entries(n)} removed", quiet)


@app.command(
    epilog=examples(
        "bpfmap dump /sys/fs/bpf/counts -o jsonl",
        "bpfmap dump /sys/fs/bpf/pcpu --percpu sum --sort value --top 10",
    )
)
@layout_options()
@filter_options()
def dump(
    map_ref: MapArg,
    percpu: PercpuOpt = None,
    cpu: CpuOpt = None,
    sort: Annotated[Optional[str], option(o.SORT)] = None,
    reverse: Annotated[bool, option(o.REVERSE)] = False,
    top: Annotated[Optional[int], option(o.TOP)] = None,
    delete: Annotated[bool, option(o.DELETE)] = False,
    batch_size: Annotated[Optional[int], option(o.BATCH_SIZE, min=1, max=MAX_BATCH_SIZE)] = None,
    recursive: Annotated[bool, option(o.RECURSIVE)] = False,
    inner_layout: Annotated[Optional[Layout], option(o.INNER_LAYOUT, parser=parse_layout)] = None,
    output: OutputOpt = None,
    pid: StackPidOpt = None,
    opts: LayoutOptions = NO_LAYOUT,
    filt: FilterOptions = NO_FILTER,
) -> None:
    """Print every entry (text: KEY<TAB>VALUE per line), or those --where picks."""
    if filt and (delete or recursive):
        raise UsageError(
            "dump --where/--older-than takes no --delete or --recursive; to delete what matches, "
            "use 'bpfmap delete MAP --where ... --print'"
        )
    broken = o.broken_rule({"top": top, "sort": sort, "percpu": percpu, "cpu": cpu})
    if broken is not None:
        raise UsageError(broken)
    if delete and sort is not None:
        raise UsageError(
            "dump --delete writes entries as it drains them and cannot --sort or --top; "
            "sort the output (| sort) or dump, then clear"
        )
    if delete and output == "table":
        raise UsageError("dump --delete: a table is drawn only once every entry is in; use -o text, json, jsonl or csv")
    if inner_layout is not None and not recursive:
        raise UsageError("--inner-layout goes with --recursive")
    several = expand(map_ref, names=True)
    if several is not None:  # a directory, a glob, name:GLOB: each map under its own header
        if delete or recursive or pid is not None:
            raise UsageError(f"dump {map_ref}: --delete, --recursive and --pid take one map; {map_ref} names several")
        from .many import dump_many

        require_some(several, map_ref)
        options = dict(percpu=percpu, cpu=cpu, sort=sort, reverse=reverse, top=top, batch_size=batch_size)
        dump_many(several, output, opts, filt, **options)
        return
    with Map.open(map_ref, readonly=not delete) as m:
        view = opts.view(m)
        if pid is not None:
            view.symbolize_for(pid)
            if view.note:
                say(f"note: {view.note}")
        if recursive:
            if delete or sort is not None or percpu is not None or cpu is not None:
                raise UsageError("dump --recursive takes no --delete, --sort, --top, --percpu or --cpu")
            _dump_recursive(view, inner_layout, output or "text")
            return
        if delete:
            reduce, still_percpu = view.reducer(percpu, cpu)
            _drain(m, view, reduce, still_percpu, output or "text", batch_size)
            return
        dump_entries(
            view,
            map_ref,
            output,
            filt,
            percpu=percpu,
            cpu=cpu,
            sort=sort,
            reverse=reverse,
            top=top,
            batch_size=batch_size,
        )


def _dump_recursive(view: View, inner_layout: Layout | None, fmt: str) -> None:
    """dump --recursive: each slot of a map of maps, then its inner map's entries, decoded
    by the inner map's BTF or --inner-layout.  text: the slot line, then each inner entry
    on a line starting with a tab; json/jsonl: {"key", "value": id, "inner": [entries]}."""
    m = view.map
    if m.kind.value is not Value.MAP_ID:
        raise UsageError(f"dump --recursive {m.ref}: {m.type_label} maps hold data; it is for maps of maps")
    RECURSIVE_OUTPUTS.check(fmt, "--output", "dump --recursive")

    def slots():
        for key, inner_id in view.entries():
            with Map.open(f"id:{inner_id}", readonly=True) as inner:
                iv = View(inner, inner_layout)
                entries = list(iv.entries())
            yield key, inner_id, iv, entries

    if fmt == "text":
        for key, inner_id, iv, entries in slots():
            texts = EntryTexts("text", iv.key, iv.value, iv.percpu).batch(
                [k for k, _ in entries], [v for _, v in entries]
            )
            sys.stdout.write(f"{view.key.format(key)}\t{inner_id}\n" + "".join("\t" + t for t in texts))
        return
    write_objects(
        (
            {"key": key, "value": inner_id, "inner": [entry_object(k, v, iv.percpu) for k, v in entries]}
            for key, inner_id, iv, entries in slots()
        ),
        fmt,
        sys.stdout,
    )


def _drain(m: Map, view: View, reduce, still_percpu: bool, fmt: str, batch_size: int | None) -> None:
    """dump --delete: nothing drained is dropped (see bpfmap.entries.drain).  Ctrl-C finishes the
    batch in hand, then exits 130 (SIGTERM 143) with the count; a reader that goes away
    (| head) is exit 0, with the entries it did not take put back."""
    from ..entries.drain import DeliveryError, HeldSignals, Sink, drain
    from .term import Progress

    texts = EntryTexts(fmt, view.key, view.value, still_percpu)

    def entry_texts(keys: bytes, values: bytes, count: int) -> list[str]:
        k, v = view.decode_batch(keys, values, count)
        return texts.batch(k, list(map(reduce, v)) if reduce is not None else v)

    progress = Progress(f"dump {m.ref}", None, enabled=not sys.stdout.isatty())
    note = "finishing the batch in hand, then stopping; press Ctrl-C again to put it back in the map instead"
    try:
        with HeldSignals(note) as held:
            n = drain(
                m,
                entry_texts,
                Sink(sys.stdout),
                texts.end,
                batch_size,
                stop=lambda: held.caught is not None,
                progress=progress.advance,
            )
    except DeliveryError as err:
        if err.reader_gone and not err.rescued:
            say(str(err))
            return
        raise
    finally:
        progress.close()
    if held.caught is not None:
        say(f"dump --delete {m.ref}: interrupted; {n} entries drained and written, the rest left in the map")
        raise typer.Exit(signal_exit(held.caught))


@app.command(
    epilog=examples(
        "bpfmap getnext /sys/fs/bpf/counts",
        'bpfmap getnext /sys/fs/bpf/counts "$(bpfmap getnext /sys/fs/bpf/counts)" -o json',
    ),
)
@layout_options()
def getnext(
    map_ref: MapArg,
    key: OptKeyArg = None,
    output: OutputOpt = None,
    opts: LayoutOptions = NO_LAYOUT,
) -> None:
    """Print the key after KEY (without KEY: the first key), as bpftool map getnext.  Exit 1
    at the end.  json: {"key": KEY or null, "next_key": NEXT}."""
    several = expand(map_ref, names=True)
    if several is not None:
        from .many import getnext_many

        require_some(several, map_ref)
        getnext_many(several, key, output, opts)
        return
    with Map.open(map_ref, readonly=True) as m:
        view = opts.view(m)
        raw = view.parse_key(key) if key is not None else None
        nxt = view.key.decode(m.next_key(raw))
        fmt = single_format(output)
        if fmt == "text":
            sys.stdout.write(view.key.format(nxt) + "\n")
        else:
            obj = {"key": view.key.decode(raw) if raw is not None else None, "next_key": nxt}
            sys.stdout.write(json_dumps(obj, indent=2 if fmt == "json" else None) + "\n")


@app.command(
    epilog=examples(
        "bpfmap push /sys/fs/bpf/jobs 7 --layout u32",
    ),
)
@layout_options(keys=False)
def push(
    map_ref: MapArg,
    value: Annotated[str, typer.Argument(metavar="VALUE")],
    overwrite: Annotated[bool, option(o.OVERWRITE)] = False,
    opts: LayoutOptions = NO_LAYOUT,
) -> None:
    """Push VALUE onto a queue or stack, or add it to a bloom filter."""
    do_push(map_ref, value, opts, overwrite)


@app.command(
    epilog=examples(
        "bpfmap pop /sys/fs/bpf/jobs --layout u32",
    )
)
@layout_options(keys=False)
def pop(
    map_ref: MapArg,
    output: OutputOpt = None,
    opts: LayoutOptions = NO_LAYOUT,
) -> None:
    """Remove and print the next element of a queue (oldest) or stack (newest).  Exit 1 if empty."""
    do_pop(map_ref, output, opts)


@app.command(
    epilog=examples(
        "bpfmap peek /sys/fs/bpf/jobs --layout u32 -o json",
    ),
)
@layout_options(keys=False)
def peek(
    map_ref: MapArg,
    value: Annotated[Optional[str], typer.Argument(metavar="[VALUE]", help="Bloom filter: the value to test.")] = None,
    output: OutputOpt = None,
    opts: LayoutOptions = NO_LAYOUT,
) -> None:
    """Print the next element of a queue or stack without removing it (exit 1 if empty).

    For a bloom filter, test VALUE: exit 0 if it may be in the set, 1 if it is not."""
    import json

    with Map.open(map_ref, readonly=True) as m:
        m.require("peek")
        view = opts.view(m)
        if m.kind.access is Access.BLOOM:
            if value is None:
                raise UsageError(f"peek {map_ref}: a bloom filter needs the VALUE to test")
            raw = view.parse_value(value)
            present = m.peek(raw)
            fmt = single_format(output)
            if fmt == "text":
                sys.stdout.write(("maybe present" if present else "absent") + "\n")
            else:
                sys.stdout.write(json.dumps({"value": view.value.decode(raw), "present": present}) + "\n")
            if not present:
                raise typer.Exit(EXIT_NOT_FOUND)
            return
        got = m.peek(view.parse_value(value) if value is not None else None)
        write_value(
            None, view.value.decode(got), single_format(output), view.value.format, False, sys.stdout, with_key=False
        )
