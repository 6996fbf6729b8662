"""The hist verb: histogram maps as bar charts and percentiles (library: bpfmap.hist)."""

import sys
import time
from typing import Annotated, Optional

import typer

from ..core.maps import Map
from ..errors import Empty, UsageError
from ..hist import BAR_WIDTH, PERCENTILES, UNITS, from_view, render, subtract
from ..output import json_dumps
from .common import (
    NO_LAYOUT,
    NO_SCHEME,
    LayoutOptions,
    MapArg,
    SchemeOptions,
    check_seconds,
    examples,
    layout_options,
    scheme_options,
)
from .options import Choices

app = typer.Typer()

HIST_OUTPUTS = Choices(("text", "json", "jsonl"), {"text": "bars"})


@app.command(
    epilog=examples(
        "bpfmap hist /sys/fs/bpf/lat --unit usecs --percentiles 50,99",
        "bpfmap hist /sys/fs/bpf/lat --linear --step 10 -o json",
    )
)
@layout_options()
@scheme_options()
def hist(
    map_ref: MapArg,
    sch: SchemeOptions = NO_SCHEME,
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
    width: Annotated[int, typer.Option("--width", metavar="N", help="Bar width in characters.")] = BAR_WIDTH,
    output: Annotated[
        Optional[str], typer.Option("--output", "-o", metavar="FORMAT", help=f"{HIST_OUTPUTS.help()}.")
    ] = None,
    opts: LayoutOptions = NO_LAYOUT,
) -> None:
    """Draw a histogram map as bars, bpftrace-style: slot in the key (key: bucket slot,
    value: count), or slots in the value (an array of counts per entry, as most
    libbpf-tools keep them: one histogram per pid, disk...).

    Without a layout or BTF, 4- and 8-byte keys and values read as unsigned integers."""

    scheme, step, minimum = sch.resolve()
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
    fmt = HIST_OUTPUTS.check(output or "text", "--output", "hist")
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
            hist_live(read, subtract, render, fmt, interval, count, width, shown or PERCENTILES, bool(shown))
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


def hist_live(read, subtract, render, fmt: str, interval: float, count, width: int, percentiles, in_text) -> None:
    """hist --interval: every S seconds, the counts added since the last refresh (the first
    refresh: everything so far); jsonl lines carry the refresh number and the time."""

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
