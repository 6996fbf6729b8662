"""The top verb: the host's maps, refreshed (library: bpfmap.live.top)."""

import sys
import time
from typing import Annotated, Any, Optional

import typer

from ..errors import UsageError
from ..output import json_dumps
from ..output.terminal import cell, console
from .common import check_seconds, examples
from .options import Choices
from .term import Keys, every

app = typer.Typer()

TOP_OUTPUTS = Choices(("table", "jsonl"), {"table": "a live screen, on a terminal"})


@app.command(
    epilog=examples(
        "bpfmap top --sort entries --count 2",
        "bpfmap top '/sys/fs/bpf/*' -o jsonl --count 2 --interval 0.5",
    )
)
def top(
    maps: Annotated[
        Optional[list[str]],
        typer.Argument(
            metavar="[MAP|DIR|GLOB...]", help="Only these maps (pins, directories, globs, id:N, name:GLOB)."
        ),
    ] = None,
    interval: Annotated[float, typer.Option("--interval", "-i", metavar="S", help="Seconds between refreshes.")] = 1.0,
    sort: Annotated[
        str, typer.Option("--sort", metavar="KEY", help="fill, entries, rate, memory or name (s cycles them).")
    ] = "fill",
    count: Annotated[Optional[int], typer.Option("--count", "-c", metavar="N", help="Stop after N refreshes.")] = None,
    output: Annotated[
        Optional[str],
        typer.Option("--output", "-o", metavar="FORMAT", help=f"{TOP_OUTPUTS.help()}."),
    ] = None,
) -> None:
    """Every map on the host, refreshed every --interval seconds: entries, fill, entries
    gained or lost per second, memlock, the programs and processes using it.  Maps at 90%
    fill or more stand out.  Keys: q quits, s cycles the sort, / filters by name, arrows
    scroll.  -o jsonl: one line per map per refresh, for scripts."""
    from ..live.top import SORTS, Top

    check_seconds(interval, "--interval")
    if count is not None and count < 1:
        raise UsageError(f"--count {count}: give a positive number")
    fmt = (output or ("table" if sys.stdout.isatty() else "jsonl")).strip().lower()
    TOP_OUTPUTS.check(fmt, "--output", "top")
    with Top(maps, sort) as t:
        try:
            if fmt == "jsonl":
                _jsonl(t, interval, count)
            else:
                _live(t, SORTS, interval, count)
        except KeyboardInterrupt:
            pass


def _jsonl(t, interval: float, count: Optional[int]) -> None:
    def step() -> None:
        rows = t.poll()
        stamp = {"time": t.time, "interval": t.interval}
        sys.stdout.writelines(json_dumps({**stamp, **r}) + "\n" for r in rows)
        sys.stdout.flush()

    every(interval, count, step)


def _live(t, sorts: tuple, interval: float, count: Optional[int]) -> None:
    from rich.live import Live

    con = console(sys.stdout)
    keys = Keys()
    scroll, n = 0, 0
    typing: Optional[str] = None  # the filter being typed after '/'
    try:
        with Live(console=con, auto_refresh=False, screen=True) as live:
            rows = t.read()
            while True:
                live.update(_screen(t, t.shown(rows), interval, con.size.height, scroll, typing), refresh=True)
                n += 1
                if count is not None and n >= count:
                    return
                deadline = time.monotonic() + interval
                while (left := deadline - time.monotonic()) > 0:
                    key = keys.wait(left)
                    if not key:
                        continue
                    if typing is not None:  # a filter being typed: Enter sets it, Esc drops it
                        if key in (b"\r", b"\n"):
                            t.filter, typing = typing, None
                        elif key == b"\x1b":
                            typing = None
                        elif key in (b"\x7f", b"\b"):
                            typing = typing[:-1]
                        elif key.isascii() and key.decode().isprintable():
                            typing += key.decode()
                    elif key in (b"q", b"Q"):
                        return
                    elif key == b"s":
                        t.sort = sorts[(sorts.index(t.sort) + 1) % len(sorts)]
                    elif key == b"/":
                        typing = ""
                    elif key == b"\x1b":  # an arrow: ESC [ A / B
                        seq = keys.wait(0.05) + keys.wait(0.05)
                        scroll = max(0, scroll + (1 if seq == b"[B" else -1 if seq == b"[A" else 0))
                    else:
                        continue
                    live.update(_screen(t, t.shown(rows), interval, con.size.height, scroll, typing), refresh=True)
                rows = t.read()
    finally:
        keys.close()


def _screen(t, rows: list, interval: float, height: int, scroll: int, typing: Optional[str]):
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from ..live.top import FULL
    from ..output.info import human_size

    head = Text(
        f"bpfmap top  {len(rows)} maps  sort: {t.sort}  filter: {t.filter or '-'}  every {interval:g}s  "
        f"{time.strftime('%H:%M:%S')}   q quit  s sort  / filter  arrows scroll",
        style="bold",
    )
    table = Table(show_edge=False, header_style="bold")
    for name, justify in (
        ("ID", "right"),
        ("NAME", "left"),
        ("TYPE", "left"),
        ("ENTRIES", "right"),
        ("MAX", "right"),
        ("FILL", "right"),
        ("RATE/s", "right"),
        ("MEMLOCK", "right"),
        ("PROGRAMS", "left"),
        ("PIDS", "left"),
    ):
        table.add_column(name, justify=justify, overflow="ellipsis", no_wrap=True)  # type: ignore[arg-type]
    room = max(1, height - 5)
    scroll = min(scroll, max(0, len(rows) - room))
    for r in rows[scroll : scroll + room]:
        fill = r["fill"]
        table.add_row(
            str(r["id"]),
            cell(r["name"] or (r["pinned"][0] if r["pinned"] else "-")),
            r["type"],
            _num(r["entries"]),
            f"{r['max_entries']:,}",
            f"{100 * fill:.1f}%" if fill is not None else "",
            f"{r['rate']:+,.1f}" if r["rate"] is not None else "",
            human_size(r["memlock"]),
            cell(", ".join(p["name"] or str(p["id"]) for p in r["programs"])),
            cell(", ".join(f"{p['comm']}({p['pid']})" for p in r["pids"])),
            style="bold red" if fill is not None and fill >= FULL else None,
        )
    parts: list[Any] = [head, table]
    if len(rows) > room:
        parts.append(Text(f"rows {scroll + 1}-{min(len(rows), scroll + room)} of {len(rows)}", style="dim"))
    if typing is not None:
        parts.append(Text(f"filter: {typing}_", style="bold"))
    return Group(*parts)


def _num(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else ""
