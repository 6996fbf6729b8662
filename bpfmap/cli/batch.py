"""The batch verb: many bpfmap commands in one process, as ``bpftool batch file`` runs
bpftool's.  Maps are opened once for the whole batch; plain lookups, updates and
deletes (the lines scripts have by the thousand) skip the command-line parser and go
straight to the verbs' own code (bpfmap.cli.verbs), everything else runs through it."""

import re
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
    from ..core.maps import shared_opens
    from ..host.inputs import read_text

    if file == "-":
        text = sys.stdin.read()
    else:
        text = read_text(file, "batch file")
    runner = _Runner(stdin_taken=file == "-")
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


MAX_LINE = 1 << 20  # characters of one command (continuations joined): a value of ~350 KiB as hex
MAX_WORDS = 10_000  # words of one command


def _commands(text: str, source: str = "-") -> Iterator[tuple[int, list[str] | UsageError]]:
    """(line number, words) of each command, or (line number, the error) for a line
    that cannot be read (a quote left open, too long): comments and blank lines
    dropped, lines ending in an odd number of backslashes joined to the next (numbered
    by their first line).  Lines end at newlines only, so line numbers are wc -l's."""
    pending: list[str] = []  # the command's lines so far (none kept once it is too long)
    size = first = 0
    continued = False  # the last line ended in a continuation
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for n, line in enumerate(lines, 1):
        if not continued:
            first, size, pending = n, 0, []
        line = line.removesuffix("\r")
        size += len(line)
        continued = _continues(line)
        if size <= MAX_LINE:
            pending.append(line[:-1] + " " if continued else line)
        if continued:
            continue
        if size > MAX_LINE:  # read to the end of this command, without keeping it
            yield first, UsageError(f"longer than {MAX_LINE:,} characters; split it into several commands")
            continue
        try:
            words = split_words("".join(pending))
        except UsageError as err:
            yield first, err
            continue
        if len(words) > MAX_WORDS:
            yield first, UsageError(f"{len(words):,} words; at most {MAX_WORDS:,} a command")
            continue
        if words and words[0] == "bpfmap":
            words = words[1:]
        if words:
            yield first, words
    if continued:
        yield first, UsageError(f"{source} ends after a backslash (a line continued into nothing)")


def _continues(line: str) -> bool:
    """Whether ``line`` ends in a backslash that escapes the newline (an odd number of
    them: ``\\\\`` is an escaped backslash, as in a shell)."""
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


# Blanks are the shell's (space and tab; a carriage return too, as shlex has it), not
# everything str.split() takes for whitespace (\x0c, \x1c, \x85, ...): those stay in words.
_BLANK_TO_SPACE = str.maketrans("\t\r", "  ")
_SPECIAL = re.compile(r"[\"'\\#]")  # what makes a line more than words between blanks
_TOKEN = re.compile(
    r"""(?P<blank>[ \t\r]+)
       |(?P<single>'[^']*')
       |(?P<double>"(?:[^"\\]|\\.)*")
       |(?P<escape>\\.)
       |(?P<plain>[^ \t\r'"\\]+)
       |(?P<open>['"])
       |(?P<trailing>\\)""",
    re.X | re.S,
)
_IN_DOUBLE = re.compile(r'\\([\\"])')


def split_words(line: str) -> list[str]:
    """The words of a command line as a POSIX shell splits them (shlex.split(line,
    comments=True), whose time grows with the square of a quoted word's length), in one
    pass: '...' literal, "..." with \\" and \\\\ escaped, \\X outside quotes is X,
    # at the start of a word begins a comment."""
    if not _SPECIAL.search(line):  # most lines: words between blanks, split at C speed
        return [w for w in line.translate(_BLANK_TO_SPACE).split(" ") if w]
    words: list[str] = []
    parts: list[str] | None = None  # the word being read (None between words)
    pos = 0
    while pos < len(line):
        m = _TOKEN.match(line, pos)
        assert m is not None  # the alternatives cover every character
        kind, text = m.lastgroup, m.group()
        pos = m.end()
        if kind == "blank":
            if parts is not None:
                words.append("".join(parts))
                parts = None
            continue
        if kind == "plain" and parts is None and text.startswith("#"):
            break  # a comment
        if kind == "open":
            raise UsageError(f"no closing quotation ({text} at character {m.start() + 1}); quote as in a shell")
        if kind == "trailing":
            raise UsageError("a backslash ends the line with nothing to escape")
        if parts is None:
            parts = []
        if kind == "single":
            parts.append(text[1:-1])
        elif kind == "double":
            parts.append(_IN_DOUBLE.sub(r"\1", text[1:-1]))
        elif kind == "escape":
            parts.append(text[1])
        else:
            parts.append(text)
    if parts is not None:
        words.append("".join(parts))
    return words


_MEMO_MAX = 4096  # command lines whose reading is kept (a batch repeats a few lines many times)


class _Runner:
    """Runs one command line at a time, with the click command built once, and each
    plain line's reading (parse_fast's, whether its errors are JSON) kept for the lines
    that repeat it: until a line runs through the parser, which may create, pin or
    write what a reading looked at (may_name_several: a directory, a saved file)."""

    def __init__(self, stdin_taken: bool = False) -> None:
        self._command: Any = None
        self._stdin_taken = stdin_taken
        self._read: dict[tuple[str, ...], tuple[Any, bool]] = {}

    def run(self, lineno: int, words: list[str] | UsageError) -> int:
        cli, prefix = _cli, f"line {lineno}: "
        if isinstance(words, UsageError):
            return cli.run_args([], call=_raiser(words.with_traceback(None)), prefix=prefix)
        line = tuple(words)
        read = self._read.get(line)
        if read is None:
            refused = self._refused(words)
            if refused is not None:
                return cli.run_args(words, call=_raiser(UsageError(refused)), prefix=prefix)
            read = parse_fast(words), errors_as_json(words)
            if read[0] is not None:
                if len(self._read) >= _MEMO_MAX:
                    self._read.clear()
                self._read[line] = read
        fast, json_errors = read
        if fast is not None:
            return cli.run_args(words, call=lambda: run_fast(fast), json_errors=json_errors, prefix=prefix)
        self._read.clear()
        if words[0] in _CHANGES_PINS:
            forget()
        code = cli.run_args(words, self._click(), json_errors=json_errors, prefix=prefix)
        if words[0] in _CHANGES_PINS:
            forget()
        return code

    def _refused(self, words: list[str]) -> str | None:
        """Why a command cannot run inside a batch, or None."""
        if words[0] == "batch":
            return "batch inside batch: run the commands of that file in this one, or run it on its own"
        if self._stdin_taken and _reads_stdin(words):
            return "reads standard input, which is this batch's own commands (batch -); give a file"
        return None

    def _click(self):
        if self._command is None:
            from typer.main import get_command

            from . import make_app

            self._command = get_command(make_app(completion=False))
        return self._command


def _raiser(err: Exception):
    def call() -> None:
        raise err

    return call


def _reads_stdin(words: list[str]) -> bool:
    """Whether a command takes '-' (standard input) as a file to read: --from -, --from=-."""
    return any(
        (w in ("--from", "-f") and i + 1 < len(words) and words[i + 1] == "-") or w in ("--from=-",)
        for i, w in enumerate(words)
    )


import bpfmap.cli as _cli  # noqa: E402  (the package that runs command lines; loaded before this module)

from ..core.maps import forget  # noqa: E402
from .options import errors_as_json  # noqa: E402
from .verbs import parse_fast, run_fast  # noqa: E402

__all__ = ["batch"]
