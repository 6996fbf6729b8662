"""The fast path (cli/verbs.parse_fast) reads a command line as the parser does: options
after positionals are options, numbers such as -5 are values, '--' ends the options."""

from __future__ import annotations

import pytest
from helpers import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfmap.cli.verbs import is_number, parse_fast


def parsed_by_typer(words: list[str]) -> tuple[list[str], str | None] | None:
    """(positional arguments, --output) as the typer command reads ``words``, or None when
    it refuses them."""
    from typer.main import get_command

    from bpfmap.cli import make_app

    verb = words[0]
    command = get_command(make_app(verb, False)).commands[verb]  # type: ignore[attr-defined]
    try:
        ctx = command.make_context(verb, list(words[1:]))
    except Exception:
        return None
    p = ctx.params
    positional = [p["map_ref"]] + [x for x in [p.get("key"), p.get("value")] if x is not None]
    positional += list(p.get("values") or [])
    return positional, p.get("output")


@pytest.mark.parametrize(
    "line",
    [
        "update M -5 -7 --layout s32:s64",
        "update M -5 -7 -l s32:s64",
        "update M --layout s32:s64 -0x10 -1.5e3",
        "lookup M -5 -o json -l s32:s64",
        "lookup M -o json -- -5",
        "delete M -l s32:s64 -- --x",
        "update M -l char[4]:s64 -- -abc -1",
        "dump M -o jsonl -l s32:s64",
        "push M -5 -l s64",
        "push M --overwrite -l s64 -- -5",
        "pop M -o json -l s64",
        "count M -l s32:s64",
    ],
)
def test_numbers_and_double_dash_take_the_fast_path_and_read_as_the_parser_reads_them(line):
    words = line.split()
    fast = parse_fast(words)
    assert fast is not None, line
    verb, positional, output, _opts, _extra = fast
    assert (positional, output) == parsed_by_typer(words)


WORDS = st.sampled_from(["M", "1", "2", "-5", "-0x10", "-1.5", "--", "-o", "json", "-l", "s32:s64", "-x", "--nope"])


@settings(max_examples=examples(150), deadline=None)
@given(
    verb=st.sampled_from(["lookup", "update", "delete", "dump", "push", "pop", "count"]),
    rest=st.lists(WORDS, max_size=7),
)
def test_fast_path_never_reads_a_line_otherwise_than_the_parser(verb, rest):
    words = [verb, "M", *rest]
    fast = parse_fast(words)
    if fast is None:
        return  # the parser reads it
    _verb, positional, output, _opts, _extra = fast
    assert (positional, output) == parsed_by_typer(words)


def test_what_is_a_number():
    assert all(map(is_number, ["-5", "-0x10", "-0b101", "-1.5e3", "-inf", "7", "-1_000"]))
    assert not any(map(is_number, ["-o", "--", "-", "-x5", "--5", "-l", "-e5"]))
