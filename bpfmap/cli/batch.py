"""The batch verb: many bpfmap commands in one process, as ``bpftool batch file`` runs
bpftool's.  Maps are opened once for the whole batch; plain lookups, updates and
deletes (the lines scripts have by the thousand) skip the command-line parser and go
straight to the verbs' own code, everything else runs through it."""

import re
import shlex
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from ..errors import UsageError
from .common import examples

app = typer.Typer()

# verbs that create, pin or freeze maps: the maps held open are let go after them, so the
# next line opens what its reference names then
_CHANGES_PINS = {"create", "pin", "freeze"}
_SPECIAL = re.compile(r"[\"'\\#]")  # what makes shlex read a line differently from str.split


@app.command(
    epilog=examples(
        "bpfmap batch - <<< $'lookup /sys/fs/bpf/counts 1\\nlookup /sys/fs/bpf/counts 1 -o json'",
        "bpfmap batch - --keep-going <<< $'update /sys/fs/bpf/counts 3 30\\nlookup /sys/fs/bpf/counts 3'",
    )
)
def batch(
    file: Annotated[str, typer.Argument(metavar="FILE", help="The commands, one per line; '-' for stdin.")],
    keep_going: Annotated[
        bool, typer.Option("--keep-going", help="Run every line; exit with the worst failure's code.")
    ] = False,
) -> None:
    """Run many bpfmap commands in one process: one command per line (the words of a
    command line, without 'bpfmap'; quoting as in a shell), '#' comments, blank lines
    skipped, a trailing backslash continues a line.  Each command's output comes in
    order, as if run one by one.  A failing line stops the batch with 'line N: ...' on
    stderr and its exit code (2 for a bad line); --keep-going runs the rest."""
    from ..inputs import read_text
    from ..maps import shared_opens

    if file == "-":
        text = sys.stdin.read()
    else:
        text = read_text(file, "batch file")
    runner = _Runner()
    worst = 0
    with shared_opens():
        for lineno, words in _commands(text, file):
            code = runner.run(lineno, words)
            if code:
                worst = max(worst, code)
                if not keep_going:
                    break
    if worst:
        raise typer.Exit(worst)


def _commands(text: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, words) of each command: comments and blank lines dropped, lines
    ending in a backslash joined to the next (numbered by their first line)."""
    pending = ""
    first = 0
    for n, line in enumerate(text.splitlines(), 1):
        if not pending:
            first = n
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending += line[:-1] + " "
            continue
        whole = pending + line
        pending = ""
        try:
            # most lines have no quotes, escapes or comments: str.split reads them as shlex would
            words = shlex.split(whole, comments=True) if _SPECIAL.search(whole) else whole.split()
        except ValueError as err:
            raise UsageError(f"{source}: line {first}: {err} (quote as in a shell)") from None
        if words and words[0] == "bpfmap":
            words = words[1:]
        if words:
            yield first, words
    if pending.strip():
        raise UsageError(f"{source}: line {first}: the file ends after a backslash")


class _Runner:
    """Runs one command line at a time, with the click command built once."""

    def __init__(self) -> None:
        self._command: Any = None

    def run(self, lineno: int, words: list[str]) -> int:
        cli = _cli
        cli._ERROR_PREFIX = f"line {lineno}: "
        try:
            fast = _fast(words)
            if fast is not None:
                json_errors = fast[2] in ("json", "jsonl")
                return cli.run_args(words, call=lambda: _run_fast(fast), json_errors=json_errors)
            if words[0] in _CHANGES_PINS:
                forget()
            code = cli.run_args(words, self._click())
            if words[0] in _CHANGES_PINS:
                forget()
            return code
        finally:
            cli._ERROR_PREFIX = ""

    def _click(self):
        if self._command is None:
            from typer.main import get_command

            from . import make_app

            self._command = get_command(make_app(completion=False))
        return self._command


# -- the fast path ----------------------------------------------------------------------------
#
# lookup MAP KEY / update MAP KEY VALUE / delete MAP KEY, with --layout/-l and (lookup)
# --output/-o: parsed here, run by the verbs' own functions.  A line with anything else
# (another option, a negative number that looks like one, a bad option value) goes through
# the command-line parser, which says what is wrong exactly as a single command would.

_FAST_VERBS = {"lookup": (1, 2), "update": (3, 3), "delete": (2, 2)}
_OPTIONS: dict[str | None, object] = {}  # --layout text -> its LayoutOptions (views cached in it)


def _fast(words: list[str]):
    verb = words[0]
    if verb not in ("lookup", "update", "delete"):
        return None
    positional: list[str] = []
    layout = output = None
    i, n = 1, len(words)
    while i < n:
        w = words[i]
        i += 1
        if w[:1] != "-":
            positional.append(w)
        elif (w == "-l" or w == "--layout") and i < n:
            layout, i = words[i], i + 1
        elif (w == "-o" or w == "--output") and i < n:
            output, i = words[i], i + 1
        elif w.startswith("--layout="):
            layout = w[9:]
        elif w.startswith("--output="):
            output = w[9:]
        else:
            return None  # another option (or a negative number): the parser's job
    lo, hi = _FAST_VERBS[verb]
    if not lo <= len(positional) <= hi or (output is not None and verb != "lookup"):
        return None
    from .common import FORMATS, LayoutOptions

    if output is not None:
        output = output.strip().lower()
        if output not in FORMATS:
            return None
    opts = _OPTIONS.get(layout)
    if opts is None:
        lay = None
        if layout is not None:
            try:
                from .common import parse_layout

                lay = parse_layout(layout)
            except Exception:
                return None  # the parser says what is wrong with it
        opts = LayoutOptions(layout=lay)
        if len(_OPTIONS) < 256:
            _OPTIONS[layout] = opts
    return verb, positional, output, opts


def _run_fast(parsed) -> None:
    """Run a parsed line through the verb's own function."""
    verb, positional, output, opts = parsed
    if verb == "lookup":
        elements.do_lookup(positional[0], positional[1] if len(positional) > 1 else None, output=output, opts=opts)
    elif verb == "delete":
        elements.do_delete(positional[0], positional[1], opts)
    else:
        with Map.open(positional[0]) as m:
            elements._update_one(m, opts.view(m), positional[1], [positional[2]], None, None, "any")


import bpfmap.cli as _cli  # noqa: E402  (the package that runs command lines; loaded before this module)

from ..maps import Map, forget  # noqa: E402
from . import elements  # noqa: E402

__all__ = ["batch"]
