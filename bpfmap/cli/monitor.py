"""Verbs that look at a live system: watch (entries, changes, rates) and hist (bar charts
of histogram maps)."""

import os
import sys
import time
from typing import Annotated, Any, Optional

import typer

from ..errors import Empty, UsageError
from ..maps import Map
from ..output import json_dumps
from ..types import MapType
from ..view import is_number
from .common import (
    NO_LAYOUT,
    HeaderOpt,
    LayoutOptions,
    MapArg,
    QuietOpt,
    ValueTypeOpt,
    check_seconds,
    examples,
    layout_options,
    say,
)

app = typer.Typer()


# -- watch ----------------------------------------------------------------------------------


@app.command(
    epilog=examples(
        "bpfmap watch /sys/fs/bpf/counts --interval 0.5 --count 2 --sort rate",
        "bpfmap watch /sys/fs/bpf/counts --count 3 -o jsonl | jq -c '.rows[0].rate'",
    )
)
@layout_options()
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
            help="live (default on a terminal) or jsonl (default otherwise: one snapshot per line).",
        ),
    ] = None,
    opts: LayoutOptions = NO_LAYOUT,
) -> None:
    """Watch a map live: every entry, its change since the last refresh and a per-second
    rate for each numeric field (per-CPU values summed).  q or Ctrl-C leaves.

    Off a terminal (or with -o jsonl), prints one JSON snapshot per interval:
    {"time", "interval", "entries", "rows": [{"key", "value", "delta", "rate"}]}."""
    from ..watch import Watcher

    check_seconds(interval, "--interval")
    if count is not None and count < 1:
        raise UsageError(f"--count {count}: give a positive number")
    fmt = output or ("live" if sys.stdout.isatty() else "jsonl")
    if fmt not in ("live", "jsonl"):
        raise UsageError(f"--output {output}: watch writes live or jsonl")
    with Map.open(map_ref, readonly=True) as m:
        view = opts.view(m, numeric_default=True)
        watcher = Watcher(view, sort=sort, top=top)
        try:
            if fmt == "live":
                _watch_live(watcher, m, map_ref, interval, count)
            else:
                _watch_jsonl(watcher, interval, count)
        except KeyboardInterrupt:
            pass  # Ctrl-C is how a watch ends


def _watch_jsonl(watcher, interval: float, count: Optional[int]) -> None:
    n = 0
    deadline = time.monotonic()
    while True:
        snap = watcher.poll()
        sys.stdout.write(json_dumps(snap.to_dict()) + "\n")
        sys.stdout.flush()
        n += 1
        if count is not None and n >= count:
            return
        deadline += interval
        time.sleep(max(0.0, deadline - time.monotonic()))


class _Keys:
    """Single key presses from a terminal stdin (cbreak mode, restored on exit)."""

    def __init__(self) -> None:
        self.fd: Optional[int] = None
        self._saved: Any = None
        try:
            if sys.stdin.isatty():
                import termios
                import tty

                self.fd = sys.stdin.fileno()
                self._saved = termios.tcgetattr(self.fd)
                tty.setcbreak(self.fd)
        except (OSError, ValueError, AttributeError):
            self.fd = None

    def wait(self, seconds: float) -> bytes:
        """Sleep ``seconds``, or less if a key is pressed; returns the key (b"" if none)."""
        import select

        if self.fd is None:
            time.sleep(max(0.0, seconds))
            return b""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, seconds))
        return os.read(self.fd, 1) if ready else b""

    def close(self) -> None:
        if self.fd is not None and self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)


def _watch_live(watcher, m: Map, ref: str, interval: float, count: Optional[int]) -> None:
    from rich.live import Live

    from ..output import console

    con = console(sys.stdout)
    keys = _Keys()
    try:
        with Live(console=con, auto_refresh=False, vertical_overflow="ellipsis") as live:
            n = 0
            while True:
                snap = watcher.poll()
                live.update(_screen(snap, m, ref, interval, con.size.height), refresh=True)
                n += 1
                if count is not None and n >= count:
                    return
                deadline = time.monotonic() + interval
                while (left := deadline - time.monotonic()) > 0:
                    if keys.wait(left) in (b"q", b"Q"):
                        return
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


def _screen(snap, m: Map, ref: str, interval: float, height: int):
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from ..layout import format_text

    head = Text(
        f"{ref}  {m.type_label} id {m.id}  {snap.entries} entries  every {interval:g}s  "
        f"{time.strftime('%H:%M:%S', time.localtime(snap.time))}   q: quit",
        style="bold",
    )
    table = Table(show_edge=False, header_style="bold")
    rows = snap.rows
    room = max(1, height - 6)
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
        table.add_column(n, overflow="fold")
    for n, is_num in zip(val_names, numeric):
        table.add_column(n, justify="right" if is_num else "left", overflow="fold")
        if is_num:
            table.add_column("Δ" if n == "value" else f"Δ{n}", justify="right", style="cyan")
            table.add_column("/s" if n == "value" else f"{n}/s", justify="right", style="green")
    for row in rows[:room]:
        cells = [format_text(k) for k in fields(row.key, key_names)]
        deltas = fields(row.delta, val_names) if row.delta is not None else [None] * len(val_names)
        rates = fields(row.rate, val_names) if row.rate is not None else [None] * len(val_names)
        for v, d, r, is_num in zip(fields(row.value, val_names), deltas, rates, numeric):
            cells.append(format_text(v))
            if is_num:
                cells += [_fmt_delta(d), _fmt_rate(r)]
        table.add_row(*cells)
    parts: list[Any] = [head, table]
    if len(rows) > room:
        parts.append(Text(f"... {len(rows) - room} more (--top N, --sort rate)", style="dim"))
    return Group(*parts)


# -- hist -----------------------------------------------------------------------------------


@app.command(
    epilog=examples(
        "bpfmap hist /sys/fs/bpf/lat",
        "bpfmap hist /sys/fs/bpf/lat --linear --step 10 -o json",
    )
)
@layout_options()
def hist(
    map_ref: MapArg,
    linear: Annotated[
        bool, typer.Option("--linear", help="Linear buckets: slot i is [MIN+i*STEP, MIN+(i+1)*STEP).")
    ] = False,
    step: Annotated[int, typer.Option("--step", metavar="STEP", help="--linear: bucket width.")] = 1,
    minimum: Annotated[int, typer.Option("--min", metavar="MIN", help="--linear: where slot 0 starts.")] = 0,
    scheme: Annotated[
        Optional[str],
        typer.Option(
            "--scheme",
            metavar="S",
            help="log2 (default; libbpf-tools log2l: slot i is [2^i, 2^(i+1)), slot 0 has 0), "
            "bits (bcc bpf_log2l, fls: slot i is [2^(i-1), 2^i)) or linear.",
        ),
    ] = None,
    slot: Annotated[
        Optional[str],
        typer.Option(
            "--slot",
            metavar="NAME",
            help="Struct keys: the slot field (default: 'slot', else the last "
            "numeric field); the other fields group histograms.",
        ),
    ] = None,
    field: Annotated[
        Optional[str],
        typer.Option("--field", metavar="NAME", help="Struct values: the count field (default: the first numeric)."),
    ] = None,
    width: Annotated[int, typer.Option("--width", metavar="N", help="Bar width in characters.")] = 52,
    output: Annotated[
        Optional[str], typer.Option("--output", "-o", metavar="FORMAT", help="text (bars), json or jsonl.")
    ] = None,
    opts: LayoutOptions = NO_LAYOUT,
) -> None:
    """Draw a histogram map (key: bucket slot, value: count) as bars, bpftrace-style.

    Without a layout or BTF, 4- and 8-byte keys and values read as unsigned integers."""
    from ..hist import build, render
    from ..view import aggregate

    if linear and scheme not in (None, "linear"):
        raise UsageError(f"--linear and --scheme {scheme} exclude each other")
    scheme = "linear" if linear else (scheme or "log2")
    if scheme != "linear" and (step != 1 or minimum != 0):
        raise UsageError("--step and --min apply to --linear histograms")
    if width < 1:
        raise UsageError(f"--width {width}: give a positive number")
    fmt = output or "text"
    if fmt not in ("text", "json", "jsonl"):
        raise UsageError(f"--output {output}: hist writes text, json or jsonl")
    with Map.open(map_ref, readonly=True) as m:
        view = opts.view(m, numeric_default=True)
        entries = view.entries()
        if view.percpu:
            entries = ((k, aggregate(v, "sum")) for k, v in entries)
        hists = build(entries, scheme, step, minimum, slot, field)
    if not hists:
        raise Empty(f"hist {map_ref}: the map is empty")
    if fmt == "json":
        sys.stdout.write(json_dumps([h.to_dict() for h in hists], indent=2) + "\n")
    elif fmt == "jsonl":
        for h in hists:
            sys.stdout.write(json_dumps(h.to_dict()) + "\n")
    else:
        for i, h in enumerate(hists):
            if i:
                sys.stdout.write("\n")
            sys.stdout.write("\n".join(render(h, width)) + "\n")


# -- events ---------------------------------------------------------------------------------


@app.command(
    epilog=examples(
        "bpfmap events /sys/fs/bpf/rb --layout 'pid=u32,comm=char[16]' --count 2",
        "bpfmap events /sys/fs/bpf/rb -o jsonl --timeout 1 | jq -c .value",
    )
)
def events(
    map_ref: MapArg,
    layout: Annotated[
        Optional[str],
        typer.Option(
            "--layout", "-l", metavar="VALUE", help="Layout of a record, e.g. 'pid=u32,comm=char[16]' (default: hex)."
        ),
    ] = None,
    c_header: HeaderOpt = None,
    value_type: ValueTypeOpt = None,
    object_: Annotated[
        Optional[str],
        typer.Option(
            "--object",
            metavar="OBJ",
            help="Decode records as --value-type from this BPF object's BTF "
            "(e.g. --object prog.o --value-type 'struct event').",
        ),
    ] = None,
    count: Annotated[Optional[int], typer.Option("--count", "-c", metavar="N", help="Stop after N records.")] = None,
    timeout: Annotated[
        Optional[float],
        typer.Option("--timeout", "-t", metavar="S", help="Stop after S seconds (exit 1 if no record came)."),
    ] = None,
    pages: Annotated[
        int, typer.Option("--pages", metavar="N", help="perf_event_array: ring pages per CPU (a power of two).")
    ] = 64,
    cpu: Annotated[
        Optional[int],
        typer.Option(
            "--cpu", metavar="N", help="perf_event_array: read only CPU N's buffer (bpftool's event_pipe cpu N)."
        ),
    ] = None,
    output: Annotated[
        Optional[str], typer.Option("--output", "-o", metavar="FORMAT", help="text (one record per line) or jsonl.")
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Read the records programs write to a ring buffer (ringbuf) or perf event array, as
    the kernel commits them.  Ctrl-C stops with a summary line on stderr.

    Lost records (perf buffers) are reported on stderr.  jsonl: {"value": V} per record,
    with "cpu" for perf buffers."""
    from ..events import reader

    if count is not None and count < 1:
        raise UsageError(f"--count {count}: give a positive number")
    check_seconds(timeout, "--timeout", zero=True)
    fmt = output or "text"
    if fmt not in ("text", "jsonl"):
        raise UsageError(f"--output {output}: events writes text or jsonl")
    codec = _record_codec(layout, c_header, value_type, object_)
    seen = 0
    with Map.open(map_ref) as m, reader(m, pages, [cpu] if cpu is not None else None) as rd:
        lost_said = 0
        try:
            for batch in rd.batches(count, timeout):
                lines = _record_lines(batch, codec, fmt)
                seen += len(batch)
                if lines:
                    sys.stdout.write("\n".join(lines) + "\n")
                    sys.stdout.flush()
                if rd.lost > lost_said:
                    say(
                        f"events {map_ref}: {rd.lost - lost_said} records lost (the ring was full; "
                        f"--pages for a bigger perf buffer)"
                    )
                    lost_said = rd.lost
        except KeyboardInterrupt:
            pass
        # a ring buffer cannot tell what did not fit (the program's reserve failed): no lost count
        lost = f", {rd.lost} lost" if m.type is MapType.PERF_EVENT_ARRAY else ""
        say(f"events {map_ref}: {seen} records{lost}", quiet)
    if timeout is not None and seen == 0:
        raise typer.Exit(1)


def _record_lines(batch, codec, fmt: str) -> list[str]:
    """Decode and format a batch of records: one decode for the batch when every record
    is the layout's size (the common case), one by one otherwise (hex for records that
    are shorter than the layout)."""
    from ..layout import HexCodec

    if codec is not None and batch and all(len(r.data) == codec.size for r in batch):
        values = codec.decode_many(b"".join([r.data for r in batch]), len(batch))
    else:
        values = []
        for rec in batch:
            c = codec if codec is not None and len(rec.data) >= codec.size else HexCodec(len(rec.data))
            values.append((c, c.decode(rec.data[: c.size])))
        if fmt == "text":
            return [c.format(v) for c, v in values]
        return [
            json_dumps({"cpu": r.cpu, "value": v} if r.cpu is not None else {"value": v})
            for r, (_, v) in zip(batch, values)
        ]
    if fmt == "text":
        return list(map(codec.format, values))
    if batch[0].cpu is None:
        return [json_dumps({"value": v}) for v in values]
    return [json_dumps({"cpu": r.cpu, "value": v}) for r, v in zip(batch, values)]


def _record_codec(
    layout: Optional[str], c_header: Optional[str], value_type: Optional[str], object_: Optional[str] = None
):
    """The codec for one record: the value side of --layout (or the whole layout when it
    has one side), --c-header or --object (the object's BTF) with --value-type; None
    for hex."""
    from ..layout import Layout

    if sum(x is not None for x in (layout, c_header, object_)) > 1:
        raise UsageError("give one of --layout, --c-header and --object")
    if object_ is not None:
        if value_type is None:
            raise UsageError("--object needs --value-type CTYPE: the record's type, e.g. 'struct event'")
        from ..objects import read_object

        return read_object(object_).type_codec(value_type)
    if c_header is not None:
        if value_type is None:
            raise UsageError("--c-header needs --value-type CTYPE: the record's type")
        return Layout.from_c(c_header, None, value_type).value
    if value_type is not None:
        raise UsageError("--value-type needs --c-header FILE or --object OBJ")
    if layout is None:
        return None
    lay = Layout.parse(layout)
    return lay.bare if lay.bare is not None else lay.value
