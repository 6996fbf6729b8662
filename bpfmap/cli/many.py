"""Read verbs over several maps at once: a directory on a bpffs, a glob of pins,
``name:GLOB`` or a name several maps have.  Text puts a ``==> MAP <==`` header before each
map's output (as ``head`` does); JSON and JSON Lines put a ``"map"`` field first in every
object.  Each map reads through its own BTF (or the layout given)."""

import io
import json
import sys
from collections.abc import Callable
from typing import Any, Optional

import typer

from ..core.maps import Map
from ..errors import EXIT_NOT_FOUND, BpfmapError, NotFound, UsageError
from ..output import default_format, inline, json_dumps
from . import worded
from .verbs import LayoutOptions, say, single_format


def header(i: int, ref: str) -> str:
    """The line before a map's output (as head's); a name with controls in it shown escaped
    on a terminal (output.inline)."""
    return f"{'' if i == 0 else chr(10)}==> {inline(ref, sys.stdout)} <==\n"


class _Tagged:
    """A stream that writes each JSON Lines object with ``"map": REF`` first."""

    def __init__(self, out: Any, ref: str) -> None:
        self.out, self.prefix, self.at_start = out, '{"map": ' + json.dumps(ref) + ", ", True

    def write(self, text: str) -> int:
        if not text:
            return 0
        lines = text.split("\n")
        done = []
        for j, line in enumerate(lines):
            if (j > 0 or self.at_start) and line.startswith("{"):
                line = self.prefix + line[1:]
            done.append(line)
        self.at_start = text.endswith("\n")
        self.out.write("\n".join(done))
        return len(text)

    def flush(self) -> None:
        self.out.flush()

    def isatty(self) -> bool:
        return False


def dump_many(refs: list[str], output: Optional[str], opts: LayoutOptions, filt: Any = None, **options: Any) -> None:
    from ..output.dump import dump

    fmt = output or default_format(sys.stdout)
    if fmt == "csv":
        raise UsageError('dump of several maps: their columns differ; use -o jsonl (a "map" field) or one map')
    everything: list[Any] = []
    i = 0
    for ref in refs:
        with Map.open(ref, readonly=True) as m:
            if "dump" not in m.kind.ops:
                say(f"note: {ref}: skipped, a {m.type_label} has no entries to dump")
                continue
            view = opts.view(m)
            if filt:
                try:
                    options["where"] = filt.bind(view, view.reducer(options.get("percpu"), options.get("cpu"))[1])
                except UsageError as err:
                    say(f"note: {ref}: skipped, {worded(err)}")
                    continue
            note = lambda text, ref=ref: say(f"note: {ref}: {worded(text)}")  # noqa: E731
            if fmt in ("text", "table"):
                sys.stdout.write(header(i, ref))
                dump(view, sys.stdout, fmt, note=note, **options)
            elif fmt == "jsonl":
                dump(view, _Tagged(sys.stdout, ref), "jsonl", note=note, **options)  # type: ignore[arg-type]
            else:  # json: one array of every map's entries
                buf = io.StringIO()
                dump(view, buf, "jsonl", note=note, **options)
                everything += [{"map": ref, **json.loads(line)} for line in buf.getvalue().splitlines()]
            i += 1
        sys.stdout.flush()
    if fmt == "json":
        sys.stdout.write(json_dumps(everything, indent=2) + "\n")


def lookup_many(refs: list[str], key: str, output: Optional[str], opts: LayoutOptions) -> None:
    """KEY in each map: its value under each map's header (text), or one object per map
    that has it; exit 1 when none has it."""

    def ask(m: Map, view: Any) -> tuple[dict[str, Any], Any, Any]:
        with view.element_key(key, "lookup") as raw:
            value = view.decode_value(m.lookup(raw))
        return {"key": view.key.decode(raw), "value": value}, view.value, value

    if not _ask_each(refs, "lookup", output, opts, ask):
        say(f"lookup: no map of {len(refs)} has that key")
        raise typer.Exit(EXIT_NOT_FOUND)


def getnext_many(refs: list[str], key: Optional[str], output: Optional[str], opts: LayoutOptions) -> None:
    def ask(m: Map, view: Any) -> tuple[dict[str, Any], Any, Any]:
        raw = view.parse_key(key) if key is not None else None
        nxt = view.key.decode(m.next_key(raw))
        return {"key": view.key.decode(raw) if raw is not None else None, "next_key": nxt}, view.key, nxt

    if not _ask_each(refs, "getnext", output, opts, ask):
        raise typer.Exit(EXIT_NOT_FOUND)


def _ask_each(refs: list[str], op: str, output: Optional[str], opts: LayoutOptions, ask: Callable) -> list[Any]:
    """Ask each map that has ``op`` one question: ``ask(m, view)`` gives the answer's
    object, and the codec and item that write it as text, under the map's header; a map
    without an answer (NotFound) is passed over, one the question does not fit (a KEY of
    another size) says why and the others are still asked.  The objects go out as a line
    each (jsonl) or one array (json); returns them."""
    fmt = single_format(output)
    found: list[Any] = []
    for ref in refs:
        with Map.open(ref, readonly=True) as m:
            if op not in m.kind.ops:
                continue
            view = opts.view(m)
            try:
                answer, codec, item = ask(m, view)
            except NotFound:
                continue
            except BpfmapError as err:
                say(f"{ref}: {worded(err)}")
                continue
            if fmt == "text":
                sys.stdout.write(header(len(found), ref) + codec.format(item) + "\n")
            found.append({"map": ref, **answer})
    if fmt == "jsonl":
        sys.stdout.writelines(json_dumps(o) + "\n" for o in found)
    elif fmt == "json":
        sys.stdout.write(json_dumps(found, indent=2) + "\n")
    return found
