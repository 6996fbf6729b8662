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
    AsOpt,
    HeaderOpt,
    IncludeOpt,
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
            "last refresh; with --var, the histograms a global variable holds.",
        ),
    ] = False,
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
        if as_hist:
            from ..hist import PERCENTILES, from_view, render, subtract

            _hist_live(
                lambda: from_view(view, slots=var, strict=var is not None),
                subtract,
                render,
                "text" if fmt == "live" else "jsonl",
                interval,
                count,
                52,
                PERCENTILES,
                False,
            )
            return
        watcher = Watcher(view, sort=sort, top=top, select=var)
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
    from ..output import cell

    head = Text(
        f"{cell(ref)}  {m.type_label} id {m.id}  {snap.entries} entries  every {interval:g}s  "
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
    if len(rows) > room:
        parts.append(Text(f"... {len(rows) - room} more (--top N, --sort rate)", style="dim"))
    return Group(*parts)


# -- hist -----------------------------------------------------------------------------------


@app.command(
    epilog=examples(
        "bpfmap hist /sys/fs/bpf/lat --unit usecs --percentiles 50,99",
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
            help="log2 or exp2 (default; libbpf-tools log2l: slot i is [2^i, 2^(i+1)), slot 0 has 0 and 1), "
            "bits or exp2zero (bcc bpf_log2l, fls: slot 0 only 0, slot i is [2^(i-1), 2^i)) or linear.",
        ),
    ] = None,
    slot: Annotated[
        Optional[str],
        typer.Option(
            "--slot",
            metavar="NAME",
            help="Slot in the key: the struct key's slot field (default: 'slot', else the last "
            "numeric field); the other fields group histograms.",
        ),
    ] = None,
    field: Annotated[
        Optional[str],
        typer.Option(
            "--field", metavar="NAME", help="Slot in the key: the value's count field (default: the first numeric)."
        ),
    ] = None,
    slots: Annotated[
        Optional[str],
        typer.Option(
            "--slots",
            metavar="FIELD",
            help="Slots in the value: the field holding the array of slot counts (found by itself "
            "when the value has one); one histogram per entry.",
        ),
    ] = None,
    var: Annotated[
        Optional[str],
        typer.Option(
            "--var",
            metavar="NAME",
            help="A global variable (.bss, .data) holding slot counts, or an array of such arrays.",
        ),
    ] = None,
    label: Annotated[
        Optional[list[str]],
        typer.Option(
            "--label",
            metavar="FIELD",
            help="Slots in the value: value fields that head each histogram with the key "
            "(default: its strings, like comm); repeatable.",
        ),
    ] = None,
    merge: Annotated[bool, typer.Option("--merge", help="Slots in the value: sum every entry into one.")] = False,
    sum_slot: Annotated[
        bool, typer.Option("--sum-slot", help="The last slot holds the sum of the values, not a bucket.")
    ] = False,
    unit: Annotated[
        Optional[str],
        typer.Option("--unit", metavar="UNIT", help="What the values are: nsecs, usecs, msecs, secs, bytes..."),
    ] = None,
    percentiles: Annotated[
        Optional[str],
        typer.Option(
            "--percentiles",
            metavar="P,...",
            help="Text: print these percentiles under each histogram (JSON always has 50, 90, 99 or these).",
        ),
    ] = None,
    interval: Annotated[
        Optional[float],
        typer.Option(
            "--interval", "-i", metavar="S", help="Live: redraw every S seconds with the counts added since the last."
        ),
    ] = None,
    count: Annotated[
        Optional[int], typer.Option("--count", "-c", metavar="N", help="--interval: stop after N refreshes.")
    ] = None,
    width: Annotated[int, typer.Option("--width", metavar="N", help="Bar width in characters.")] = 52,
    output: Annotated[
        Optional[str], typer.Option("--output", "-o", metavar="FORMAT", help="text (bars), json or jsonl.")
    ] = None,
    opts: LayoutOptions = NO_LAYOUT,
) -> None:
    """Draw a histogram map as bars, bpftrace-style: slot in the key (key: bucket slot,
    value: count), or slots in the value (an array of counts per entry, as most
    libbpf-tools keep them: one histogram per pid, disk...).

    Without a layout or BTF, 4- and 8-byte keys and values read as unsigned integers."""
    from ..hist import PERCENTILES, UNITS, from_view, render, subtract

    if linear and scheme not in (None, "linear"):
        raise UsageError(f"--linear and --scheme {scheme} exclude each other")
    scheme = "linear" if linear else (scheme or "log2")
    if scheme != "linear" and (step != 1 or minimum != 0):
        raise UsageError("--step and --min apply to --linear histograms")
    if width < 1:
        raise UsageError(f"--width {width}: give a positive number")
    if slots is not None and var is not None:
        raise UsageError("--slots and --var name the same thing; give one")
    slots = var if var is not None else slots
    in_value_only = [n for n, v in (("--label", label), ("--merge", merge)) if v]
    if (slots is not None or in_value_only) and (slot is not None or field is not None):
        raise UsageError("--slot/--field (slot in the key) and --slots/--var/--label/--merge exclude each other")
    if unit is not None and unit not in UNITS:
        raise UsageError(f"--unit {unit}: choose one of {', '.join(UNITS)}")
    shown = _percentile_list(percentiles)
    fmt = output or "text"
    if fmt not in ("text", "json", "jsonl"):
        raise UsageError(f"--output {output}: hist writes text, json or jsonl")
    if interval is not None:
        check_seconds(interval, "--interval")
        if count is not None and count < 1:
            raise UsageError(f"--count {count}: give a positive number")
    elif count is not None:
        raise UsageError("--count goes with --interval")
    labels = [x.strip() for item in label or [] for x in item.split(",") if x.strip()] or None

    with Map.open(map_ref, readonly=True) as m:
        view = opts.view(m, numeric_default=True)

        def read():
            return from_view(
                view,
                scheme,
                step,
                minimum,
                slot,
                field,
                slots,
                labels,
                merge,
                sum_slot,
                unit,
                strict=bool(in_value_only),
            )

        if interval is not None:
            _hist_live(read, subtract, render, fmt, interval, count, width, shown or PERCENTILES, bool(shown))
            return
        hists = read()
    if not hists:
        raise Empty(f"hist {map_ref}: the map is empty")
    _hist_write(hists, fmt, width, render, shown or PERCENTILES, bool(shown))


def _percentile_list(text: Optional[str]) -> tuple[float, ...]:
    if text is None:
        return ()
    out = []
    for part in text.split(","):
        try:
            p = float(part)
        except ValueError:
            p = -1.0
        if not 0 < p <= 100:
            raise UsageError(f"--percentiles {text}: give numbers above 0 and at most 100, e.g. 50,90,99")
        out.append(p)
    return tuple(out)


def _hist_write(hists, fmt: str, width: int, render, percentiles, in_text: bool, extra: Optional[dict] = None) -> None:
    if fmt == "json":
        sys.stdout.write(json_dumps([h.to_dict(percentiles) for h in hists], indent=2) + "\n")
    elif fmt == "jsonl":
        for h in hists:
            sys.stdout.write(json_dumps({**(extra or {}), **h.to_dict(percentiles)}) + "\n")
    else:
        for i, h in enumerate(hists):
            if i:
                sys.stdout.write("\n")
            sys.stdout.write("\n".join(render(h, width, percentiles if in_text else ())) + "\n")
    sys.stdout.flush()


def _hist_live(read, subtract, render, fmt: str, interval: float, count, width: int, percentiles, in_text) -> None:
    """hist --interval: every S seconds, the counts added since the last refresh (the first
    refresh: everything so far); jsonl lines carry the refresh number and the time."""
    import time

    last = None
    n = 0
    try:
        while count is None or n < count:
            if n:
                time.sleep(interval)
            now = read()
            shown = now if last is None else subtract(now, last)
            last = now
            n += 1
            if fmt == "text":
                stamp = time.strftime("%H:%M:%S")
                sys.stdout.write(f"{'' if n == 1 else chr(10)}{stamp} ({'total' if n == 1 else 'change'})\n")
            _hist_write(
                shown,
                "jsonl" if fmt != "text" else fmt,
                width,
                render,
                percentiles,
                in_text,
                {"refresh": n, "time": time.time()},
            )
    except KeyboardInterrupt:
        pass


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
    where: Annotated[
        Optional[list[str]],
        typer.Option(
            "--where",
            "-w",
            metavar="FIELD=VALUE",
            help="Only records whose FIELD is VALUE (also FIELD!=VALUE, FIELD~TEXT for a substring); "
            "repeatable: all must hold.",
        ),
    ] = None,
    include_dir: IncludeOpt = None,
    as_: AsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Read the records programs write to a ring buffer (ringbuf) or perf event array, as
    the kernel commits them.  Ctrl-C stops with a summary line on stderr.

    Lost records (perf buffers) are reported on stderr.  jsonl: {"value": V} per record,
    with "cpu" for perf buffers."""
    from ..events import Condition, RecordDecoder, reader

    if count is not None and count < 1:
        raise UsageError(f"--count {count}: give a positive number")
    check_seconds(timeout, "--timeout", zero=True)
    fmt = output or "text"
    if fmt not in ("text", "jsonl"):
        raise UsageError(f"--output {output}: events writes text or jsonl")
    codec = _record_codec(layout, c_header, value_type, object_, include_dir)
    if as_:
        from ..layout.formats import apply, parse_spec

        codec, rest = apply(codec, parse_spec(as_))
        if rest:
            raise UsageError(f"--as {', '.join(rest)}: no such field in the record type")
    conditions = [Condition(w) for w in where or []]
    seen = read = 0
    with Map.open(map_ref) as m, reader(m, pages, [cpu] if cpu is not None else None) as rd:
        decoder = RecordDecoder(codec, conditions, perf=m.type is MapType.PERF_EVENT_ARRAY)
        lost_said = 0
        batches = rd.batches(count, timeout, packed=True)
        try:
            batch = next(batches, None)
            while batch is not None:
                shown, text = _record_lines(decoder, batch, fmt)
                for note in decoder.notes:
                    say(f"note: events {map_ref}: {note}", quiet)
                decoder.notes.clear()
                seen += shown
                read += len(batch)
                if shown:
                    sys.stdout.write(text)
                    sys.stdout.flush()
                if rd.lost > lost_said:
                    say(
                        f"events {map_ref}: {rd.lost - lost_said} records lost (the ring was full; "
                        f"--pages for a bigger perf buffer)"
                    )
                    lost_said = rd.lost
                try:  # --count counts the records shown: those --where let through
                    batch = batches.send(shown)
                except StopIteration:
                    batch = None
        except KeyboardInterrupt:
            pass
        # a ring buffer cannot tell what did not fit (the program's reserve failed): no lost count
        lost = f", {rd.lost} lost" if m.type is MapType.PERF_EVENT_ARRAY else ""
        matched = f" of {read} read" if conditions else ""
        say(f"events {map_ref}: {seen} records{matched}{lost}", quiet)
    if timeout is not None and seen == 0:
        raise typer.Exit(1)


def _record_lines(decoder, batch, fmt: str) -> tuple[int, str]:
    """Decode, filter and format a batch of records: (how many are shown, their lines).
    Records all of the type's size, unfiltered, of a type made of leaves are formatted
    straight from their bytes, as dump formats entries (a Packed run without a Record
    each); others go through the decoder (filters, short and long records) one by one."""
    from ..events import Packed

    codec = decoder.codec
    if isinstance(batch, Packed):
        if codec is not None and not decoder.where and batch.size == codec.size:
            lines = _packed_lines(codec, batch.data, batch.count, None, fmt)
            if lines is not None:
                return batch.count, lines
        batch = batch.records()
    if codec is not None and not decoder.where and batch:
        datas, cpus = [r.data for r in batch], [r.cpu for r in batch]
        same_kind = all(c is None for c in cpus) or None not in cpus  # every record names its CPU, or none
        if same_kind and all(len(d) == codec.size for d in datas):
            lines = _packed_lines(codec, b"".join(datas), len(datas), None if cpus[0] is None else cpus, fmt)
            if lines is not None:
                return len(batch), lines
    decoded = decoder.decode(batch)
    if not decoded:
        return 0, ""
    n = len(decoded)
    if fmt == "text":
        fmt_value = codec.format if codec is not None else str
        return n, "".join(fmt_value(v) + (f" +[{extra}]" if extra else "") + "\n" for _r, v, extra in decoded)
    out = []
    for r, v, extra in decoded:
        obj: dict = {"cpu": r.cpu, "value": v} if r.cpu is not None else {"value": v}
        if extra:
            obj["extra"] = extra
        out.append(json_dumps(obj) + "\n")
    return n, "".join(out)


def _packed_lines(codec, data: bytes, count: int, cpus: Optional[list], fmt: str) -> Optional[str]:
    """The lines of ``count`` records of the codec's size packed in ``data`` (``cpus``:
    each one's CPU, for a perf buffer), formatted a chunk at a time as dump formats
    entries (layout.rows); None when the codec's type is not one rows writes."""
    from array import array

    from ..layout.rows import record_writer

    lines = record_writer(fmt, codec, cpus is not None)
    if lines is None:
        return None
    return lines(array("I", cpus).tobytes() if cpus is not None else b"", data, count)


def _record_codec(
    layout: Optional[str],
    c_header: Optional[str],
    value_type: Optional[str],
    object_: Optional[str] = None,
    include_dir: Optional[list[str]] = None,
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
        return Layout.from_c(c_header, None, value_type, include_dirs=include_dir).value
    if include_dir:
        raise UsageError("--include-dir goes with --c-header FILE")
    if value_type is not None:
        raise UsageError("--value-type needs --c-header FILE or --object OBJ")
    if layout is None:
        return None
    lay = Layout.parse(layout)
    return lay.bare if lay.bare is not None else lay.value
