"""The library speaks Python: its messages name parameters (bpfmap.errors.Param, which the
command line words as its options), not command-line options.  Every ``--name`` in a
string literal outside cli/ (docstrings aside) is counted, per module, against the
allow-list below, which may only shrink: a new mention fails this test."""

from __future__ import annotations

import ast
import collections
import pathlib
import re

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "bpfmap"
FLAG = re.compile(r"(?<![\w-])--[a-z]")
OPEN_FLAG = re.compile(r"(?<![\w-])--$")

# What is left, by module, and why it is left.  Only a whole command line stays: a hint of
# what to run, the same for a Python caller and the command line's user (as errors' 'bpfmap
# list'), not a parameter said as an option.
ALLOWED = {
    # a drain that could not put entries back saves them to a file and says the command
    # that loads them: 'bpfmap update MAP --from FILE --layout -:-'
    "entries/drain.py": 2,
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def flag_mentions() -> dict[str, int]:
    counts: collections.Counter[str] = collections.Counter()
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("cli/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                counts[rel] += len(FLAG.findall(node.value))
            if isinstance(node, ast.JoinedStr):  # f"(--{what} N)": an option named by a value
                pieces = list(zip(node.values, node.values[1:]))
                counts[rel] += sum(
                    isinstance(a, ast.Constant)
                    and isinstance(b, ast.FormattedValue)
                    and bool(OPEN_FLAG.search(a.value))
                    for a, b in pieces
                )
    return {k: v for k, v in counts.items() if v}


def test_no_new_option_names_in_library_messages():
    over = {m: (n, ALLOWED.get(m, 0)) for m, n in flag_mentions().items() if n > ALLOWED.get(m, 0)}
    assert not over, f"--options named in library strings (found, allowed): {over}; name a Param instead"


def test_the_allow_list_shrinks_with_the_code():
    found = flag_mentions()
    stale = {m: (found.get(m, 0), n) for m, n in ALLOWED.items() if found.get(m, 0) < n}
    assert not stale, f"fewer --option mentions than allowed (found, allowed): {stale}; lower ALLOWED"


def test_the_command_line_words_parameters_as_options():
    from bpfmap.cli import worded
    from bpfmap.errors import Param, UsageError, words

    err = UsageError(words("give ", Param("percpu"), " or ", Param("cpu", "N"), ", not both"))
    assert str(err) == "give percpu or cpu, not both"
    assert worded(err) == "give --percpu or --cpu N, not both"
    assert err.params == ("percpu", "cpu")
