"""The batch verb: many bpfmap commands in one process, as ``bpftool batch file`` runs
bpftool's.  Maps are opened once for the whole batch; plain lookups, updates and
deletes (the lines scripts have by the thousand) skip the command-line parser and go
straight to the verbs' own code (bpfmap.cli.verbs), everything else runs through it."""

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
            fast = parse_fast(words)
            if fast is not None:
                json_errors = fast[2] in ("json", "jsonl")
                return cli.run_args(words, call=lambda: run_fast(fast), json_errors=json_errors)
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


import bpfmap.cli as _cli  # noqa: E402  (the package that runs command lines; loaded before this module)

from ..maps import forget  # noqa: E402
from .verbs import parse_fast, run_fast  # noqa: E402

__all__ = ["batch"]
