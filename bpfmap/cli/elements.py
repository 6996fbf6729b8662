"""Verbs on elements: lookup, update, delete, dump, and push/pop/peek for queues."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..maps import Map
from ..output import write_entries, write_value
from ..types import Access, Value
from ..view import View
from .common import LayoutOpt, MapArg, OutputOpt, fmt_or_default

app = typer.Typer()

# Element verbs take negative numbers (-1) as KEY/VALUE: let unknown "options" through
# as arguments, and reject what still looks like a misspelt long option ourselves.
_ARGS_MAY_BE_NEGATIVE = {"ignore_unknown_options": True}


def _no_stray_options(*args: str | None) -> None:
    for a in args:
        if a and a.startswith("--") and a != "--":
            raise UsageError(f"no such option: {a}; see 'bpfmap --help' (put '--' before values that start with '--')")

KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="Hex bytes ('01 00 00 00') or per --layout.")]


@app.command(context_settings=_ARGS_MAY_BE_NEGATIVE)
def lookup(map_ref: MapArg, key: KeyArg, layout: LayoutOpt = None, output: OutputOpt = None) -> None:
    """Print the value at KEY (text: the value alone).  Exit 1 if KEY is absent."""
    _no_stray_options(key)
    with Map.open(map_ref, readonly=True) as m:
        view = View(m, layout)
        raw_key = view.parse_key(key)
        value = view.decode_value(m.lookup(raw_key))
        write_value(view.key.decode(raw_key), value, fmt_or_default_text(output), view.value.format,
                    m.percpu, sys.stdout)


@app.command(context_settings=_ARGS_MAY_BE_NEGATIVE)
def update(
    map_ref: MapArg,
    key: KeyArg,
    values: Annotated[list[str], typer.Argument(metavar="VALUE...",
                                                help="The value; per-CPU maps take one (for all CPUs) or one per "
                                                     "CPU; maps of maps a MAP, prog_array a program pin or id:N.")],
    noexist: Annotated[bool, typer.Option("--noexist", help="Only create: fail if KEY exists.")] = False,
    exist: Annotated[bool, typer.Option("--exist", help="Only replace: fail if KEY is absent.")] = False,
    layout: LayoutOpt = None,
) -> None:
    """Write VALUE at KEY (create or replace)."""
    _no_stray_options(key, *values)
    if noexist and exist:
        raise UsageError("update: --noexist and --exist exclude each other")
    mode = "noexist" if noexist else "exist" if exist else "any"
    with Map.open(map_ref) as m:
        view = View(m, layout)
        raw_key = view.parse_key(key)
        if m.spec.value in (Value.MAP_ID, Value.PROG_ID):
            if len(values) != 1:
                raise UsageError(f"update {map_ref}: give one {view.value.kind} reference as the value")
            with view.open_value_ref(values[0]) as target:
                m.update(raw_key, target, mode)
            return
        if len(values) > 1 and not m.percpu:
            raise UsageError(f"update {map_ref}: {len(values)} values given; only per-CPU maps take one per CPU "
                             f"(quote a value that contains spaces)")
        parsed = [view.parse_value(v) for v in values]
        m.update(raw_key, parsed if m.percpu else parsed[0], mode)


@app.command(context_settings=_ARGS_MAY_BE_NEGATIVE)
def delete(map_ref: MapArg, key: KeyArg, layout: LayoutOpt = None) -> None:
    """Delete KEY.  Exit 1 if it is absent."""
    _no_stray_options(key)
    with Map.open(map_ref) as m:
        m.delete(View(m, layout).parse_key(key))


@app.command()
def dump(map_ref: MapArg, layout: LayoutOpt = None, output: OutputOpt = None) -> None:
    """Print every entry (text: KEY<TAB>VALUE per line)."""
    with Map.open(map_ref, readonly=True) as m:
        view = View(m, layout)
        write_entries(view.items(), fmt_or_default(output), view.key.format, view.value.format,
                      m.percpu, sys.stdout)


def fmt_or_default_text(fmt: str | None) -> str:
    """Single values read best as plain text, even on a terminal."""
    return "text" if fmt in (None, "table") else fmt


@app.command(context_settings=_ARGS_MAY_BE_NEGATIVE)
def push(
    map_ref: MapArg,
    value: Annotated[str, typer.Argument(metavar="VALUE")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Queue/stack: drop the oldest element when full.")] = False,
    layout: LayoutOpt = None,
) -> None:
    """Push VALUE onto a queue or stack, or add it to a bloom filter."""
    _no_stray_options(value)
    with Map.open(map_ref) as m:
        m.push(View(m, layout).parse_value(value), overwrite=overwrite)


@app.command()
def pop(map_ref: MapArg, layout: LayoutOpt = None, output: OutputOpt = None) -> None:
    """Remove and print the next element of a queue (oldest) or stack (newest).  Exit 1 if empty."""
    with Map.open(map_ref) as m:
        view = View(m, layout)
        value = view.value.decode(m.pop())
        write_value(None, value, fmt_or_default_text(output), view.value.format, False, sys.stdout, with_key=False)


@app.command(context_settings=_ARGS_MAY_BE_NEGATIVE)
def peek(
    map_ref: MapArg,
    value: Annotated[Optional[str], typer.Argument(metavar="[VALUE]", help="Bloom filter: the value to test.")] = None,
    layout: LayoutOpt = None,
    output: OutputOpt = None,
) -> None:
    """Print the next element of a queue or stack without removing it (exit 1 if empty).

    For a bloom filter, test VALUE: exit 0 if it may be in the set, 1 if it is not."""
    _no_stray_options(value)
    with Map.open(map_ref, readonly=True) as m:
        view = View(m, layout)
        if m.spec.access is Access.BLOOM:
            if value is None:
                raise UsageError(f"peek {map_ref}: a bloom filter needs the VALUE to test")
            raw = view.parse_value(value)
            present = m.peek(raw)
            fmt = fmt_or_default_text(output)
            if fmt == "text":
                sys.stdout.write(("maybe present" if present else "absent") + "\n")
            else:
                import json
                sys.stdout.write(json.dumps({"value": view.value.decode(raw), "present": present}) + "\n")
            if not present:
                raise typer.Exit(1)
            return
        got = m.peek(view.parse_value(value) if value is not None else None)
        write_value(None, view.value.decode(got), fmt_or_default_text(output), view.value.format, False,
                    sys.stdout, with_key=False)
