"""The watch verb: a map live, its entries, their changes and rates (library: bpfmap.live.watch)."""

import sys
import time
from typing import Annotated, Any, Optional

import typer

from ..core.maps import Map, expand, require_some
from ..errors import UsageError
from ..output import cell, console, json_dumps
from ..view import is_number
from .common import (
    NO_FILTER,
    NO_LAYOUT,
    NO_SCHEME,
    FilterOptions,
    LayoutOptions,
    MapArg,
    SchemeOptions,
    check_seconds,
    examples,
    filter_options,
    layout_options,
    say,
    scheme_options,
)
from .hist import hist_live
from .options import Choices
from .term import Keys, every

app = typer.Typer()

WATCH_OUTPUTS = Choices(
    ("live", "jsonl"), {"live": "default on a terminal", "jsonl": "default otherwise: one snapshot per line"}
)


@app.command(
    epilog=examples(
        "bpfmap watch /sys/fs/bpf/counts --interval 0.5 --count 2 --sort rate",
        "bpfmap watch /sys/fs/bpf/counts --count 3 -o jsonl | jq -c '.rows[0].rate'",
    )
)
@layout_options()
@filter_options()
@scheme_options()
def watch(
    map_ref: MapArg,
    interval: Annotated[float, typer.Option("--interval", "-i", metavar="S", help="Seconds between refreshes.")] = 1.0,
    sort: Annotated[
        str, typer.Option("--sort", metavar="BY", help="key, value or rate (value and rate: largest first).")
    ] = "key",
    top: Annotated[Optional[int], typer.Option("--top", metavar="N", help="Show only the first N entries.")] = None,
    count: Annotated[
        Optional[int],
        typer.Option("--count", "-c", metavar="N", help="Stop after N refreshes (default: until q or Ctrl-C)."),
    ] = None,
    output: Annotated[
        Optional[str],
        typer.Option(
            "--output",
            "-o",
            metavar="FORMAT",
            help=f"{WATCH_OUTPUTS.help()}.",
        ),
    ] = None,
    var: Annotated[
        Optional[str],
        typer.Option(
            "--var",
            metavar="NAME",
            help="Watch one variable of a global-variable map (.bss, .data) or one field of the "
            "values: NAME, NAME.FIELD or NAME[I].",
        ),
    ] = None,
    as_hist: Annotated[
        bool,
        typer.Option(
            "--hist",
            help="A histogram map: draw its histograms (as 'hist') with the counts added since the "
            "last refresh; with --var, the histograms a global variable holds; --linear, --step, --min "
            "and --scheme say what the slots count, as hist's.",
        ),
    ] = False,
    sch: SchemeOptions = NO_SCHEME,
    opts: LayoutOptions = NO_LAYOUT,
    filt: FilterOptions = NO_FILTER,
) -> None:
    """Watch a map live: every entry, its change since the last refresh and a per-second
    rate for each numeric field (per-CPU values summed).  q or Ctrl-C leaves.

    Off a terminal (or with -o jsonl), prints one JSON snapshot per interval:
    {"time", "interval", "entries", "rows": [{"key", "value", "delta", "rate"}]}."""
    from ..live.watch import Watcher

    check_seconds(interval, "--interval")
    if count is not None and count < 1:
        raise UsageError(f"--count {count}: give a positive number")
    fmt = output or ("live" if sys.stdout.isatty() else "jsonl")
    WATCH_OUTPUTS.check(fmt, "--output", "watch")
    scheme, step, minimum = sch.resolve()
    if sch.given() and not as_hist:
        raise UsageError("--linear, --step, --min and --scheme go with --hist")
    several = expand(map_ref, names=True)
    if several is not None:  # a directory, a glob, name:GLOB: each map's rows, one after another
        if as_hist or var is not None or filt:
            raise UsageError(f"watch {map_ref}: --hist, --var and --where take one map; {map_ref} names several")
        require_some(several, map_ref)
        _watch_many(several, opts, sort, top, interval, count, fmt)
        return
    with Map.open(map_ref, readonly=True) as m:
        m.require("watch")
        view = opts.view(m, numeric_default=True)
        if as_hist:
            if filt:
                raise UsageError("watch --hist draws every histogram; --where is for entries")
            from ..hist import BAR_WIDTH, PERCENTILES, from_view, render, subtract

            hist_live(
                lambda: from_view(view, scheme, step, minimum, slots=var, strict=var is not None),
                subtract,
                render,
                "text" if fmt == "live" else "jsonl",
                interval,
                count,
                BAR_WIDTH,
                PERCENTILES,
                False,
            )
            return
        watcher = Watcher(view, sort=sort, top=top, select=var, where=filt.bind(view, percpu=False))
        try:
            if fmt == "live":
                _watch_live(watcher, m, map_ref, interval, count)
            else:
                _watch_jsonl(watcher, interval, count)
        except KeyboardInterrupt:
            pass  # Ctrl-C is how a watch ends


def _watch_many(
    refs: list, opts, sort: str, top: Optional[int], interval: float, count: Optional[int], fmt: str
) -> None:
    """Several maps: each snapshot as a JSON line with "map" first, or on a terminal every
    map's screen one under another (the height shared out), every interval."""
    from ..live.watch import Watchers

    def note(text: str) -> None:
        say(f"note: {text}")

    with Watchers(refs, lambda m: opts.view(m, numeric_default=True), note, sort=sort, top=top) as watchers:
        if fmt == "live":
            _watch_live_many(watchers, interval, count)
            return

        def step() -> None:
            for ref, _m, snap in watchers.poll():
                sys.stdout.write(json_dumps({"map": ref, **snap.to_dict()}) + "\n")
            sys.stdout.flush()

        try:
            every(interval, count, step)
        except KeyboardInterrupt:
            pass


def _watch_live_many(watchers, interval: float, count: Optional[int]) -> None:
    from rich.console import Group
    from rich.live import Live

    con = console(sys.stdout)
    keys = Keys()
    try:
        with Live(console=con, auto_refresh=False, vertical_overflow="ellipsis") as live:

            def step() -> None:
                share = max(7, con.size.height // max(1, len(watchers.watched)))
                screens = [_screen(snap, m, ref, interval, share) for ref, m, snap in watchers.poll(_room(share))]
                live.update(Group(*screens), refresh=True)

            every(interval, count, step, keys)
    except KeyboardInterrupt:
        pass
    finally:
        keys.close()


def _watch_jsonl(watcher, interval: float, count: Optional[int]) -> None:
    def step() -> None:
        sys.stdout.write(json_dumps(watcher.poll().to_dict()) + "\n")
        sys.stdout.flush()

    every(interval, count, step)


def _watch_live(watcher, m: Map, ref: str, interval: float, count: Optional[int]) -> None:
    from rich.live import Live

    con = console(sys.stdout)
    keys = Keys()
    try:
        with Live(console=con, auto_refresh=False, vertical_overflow="ellipsis") as live:
            every(
                interval,
                count,
                lambda: live.update(
                    _screen(watcher.poll(_room(con.size.height)), m, ref, interval, con.size.height), refresh=True
                ),
                keys,
            )
    finally:
        keys.close()


def _fmt_delta(d: Any) -> str:
    if not is_number(d):
        return ""
    return f"{d:+,}" if isinstance(d, int) else f"{d:+,.3g}"


def _fmt_rate(r: Any) -> str:
    if not is_number(r):
        return ""
    return f"{r:,.1f}/s"


def _room(height: int) -> int:
    """Rows of entries a screen ``height`` lines high has room for (the head, the table's
    header and rule, the "more" line: a poll works out only those)."""
    return max(1, height - 6)


def _screen(snap, m: Map, ref: str, interval: float, height: int):
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from ..layout import format_text

    head = Text(
        f"{cell(ref)}  {m.type_label} id {m.id}  {snap.entries} entries  every {interval:g}s  "
        f"{time.strftime('%H:%M:%S', time.localtime(snap.time))}   q: quit",
        style="bold",
    )
    table = Table(show_edge=False, header_style="bold")
    rows = snap.rows
    room = _room(height)
    if not rows:
        return Group(head, Text("(no entries)"))
    first = rows[0]
    key_names = list(first.key) if isinstance(first.key, dict) else ["key"]
    val_names = list(first.value) if isinstance(first.value, dict) else ["value"]

    def fields(obj: Any, names: list[str]) -> list[Any]:
        """A struct's top-level fields in column order; a plain value is its one column."""
        return [obj.get(n) for n in names] if isinstance(obj, dict) else [obj]

    numeric = [is_number(v) for v in fields(first.value, val_names)]
    for n in key_names:
        table.add_column(cell(n), overflow="fold")
    for n, is_num in zip(val_names, numeric):
        table.add_column(cell(n), justify="right" if is_num else "left", overflow="fold")
        if is_num:
            table.add_column("Δ" if n == "value" else f"Δ{n}", justify="right", style="cyan")
            table.add_column("/s" if n == "value" else f"{n}/s", justify="right", style="green")
    for row in rows[:room]:
        cells = [cell(format_text(k)) for k in fields(row.key, key_names)]
        deltas = fields(row.delta, val_names) if row.delta is not None else [None] * len(val_names)
        rates = fields(row.rate, val_names) if row.rate is not None else [None] * len(val_names)
        for v, d, r, is_num in zip(fields(row.value, val_names), deltas, rates, numeric):
            cells.append(cell(format_text(v)))
            if is_num:
                cells += [_fmt_delta(d), _fmt_rate(r)]
        table.add_row(*cells)
    parts: list[Any] = [head, table]
    if snap.available > room:
        parts.append(Text(f"... {snap.available - room} more (--top N, --sort rate)", style="dim"))
    return Group(*parts)
