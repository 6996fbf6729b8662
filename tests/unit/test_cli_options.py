"""One declaration of the options of the verbs the fast path reads (cli/options): the
typer commands have exactly the options the table lists, with its names, metavars and
help, and the fast path reads only options of the table, by its rules."""

from __future__ import annotations

import pytest

from bpfmap.cli import options
from bpfmap.cli.verbs import parse_fast


def typer_options(verb: str) -> dict:
    from typer.core import TyperOption
    from typer.main import get_command

    from bpfmap.cli import make_app

    command = get_command(make_app(verb, False)).commands[verb]  # type: ignore[attr-defined]
    return {p.name: p for p in command.params if isinstance(p, TyperOption) and p.name != "help"}


@pytest.mark.parametrize("verb", sorted(options.VERBS))
def test_every_option_of_a_fast_verb_is_in_the_table_and_the_table_has_no_other(verb):
    declared = {opt.param: opt for opt in options.VERBS[verb].options}
    typed = typer_options(verb)
    assert sorted(typed) == sorted(declared)
    for name, param in typed.items():
        opt = declared[name]
        assert (tuple(param.opts) + tuple(param.secondary_opts), param.help) == (opt.names, opt.help), name
        assert param.is_flag == opt.flag, name
        assert param.metavar == opt.metavar, name


@pytest.mark.parametrize("verb", sorted(options.VERBS))
def test_the_fast_path_reads_only_options_its_verb_has(verb):
    spec = options.VERBS[verb]
    assert set(spec.fast) <= set(spec.options)


def test_the_command_line_sends_to_the_fast_path_the_verbs_the_table_declares():
    from bpfmap.cli import FAST_VERBS

    assert sorted(FAST_VERBS) == sorted(options.VERBS)


@pytest.mark.parametrize(
    "line",
    [
        "dump M --top 3",  # --top needs --sort
        "dump M --percpu sum --cpu 1",  # they exclude each other
        "delete M 1 -o json",  # delete's --output goes with --print: not read by the fast path
        "update M 1 2 -o json",
        "lookup M 1 --cpu 1",
        "dump M --delete",
        "count M --where x=1",  # filters: the parser's command
        "pop M --c-header h.h",
        "push M 1 2",  # one VALUE
    ],
)
def test_a_line_the_table_does_not_let_the_fast_path_read_goes_to_the_parser(line):
    assert parse_fast(line.split()) is None


def test_dump_options_given_as_name_equals_value_are_read_as_the_parser_reads_them():
    fast = parse_fast(["dump", "M", "--sort=key", "--top=3", "--percpu=sum", "--output=json"])
    assert fast is not None
    assert (fast[2], fast[4]) == ("json", {"sort": "key", "top": 3, "percpu": "sum"})


@pytest.mark.parametrize(
    "args, fmt",
    [
        (["dump", "M", "-o", "json"], "json"),
        (["dump", "M", "-ojsonl"], "jsonl"),
        (["dump", "M", "--output=csv"], "csv"),
        (["dump", "M", "-o", "json", "-o", "text"], "text"),
        (["dump", "M", "--", "-o", "json"], None),
    ],
)
def test_the_output_a_command_line_gives(args, fmt):
    assert options.output_format(args) == fmt


def _cli_trees():
    import ast
    import pathlib

    import bpfmap.cli

    for path in sorted(pathlib.Path(bpfmap.cli.__file__).parent.glob("*.py")):
        yield path.name, ast.parse(path.read_text())


def test_exit_codes_in_the_cli_are_named_never_bare_numbers():
    import ast

    bare = [
        f"{name}:{node.lineno}"
        for name, tree in _cli_trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (getattr(node.func, "attr", None) == "Exit" or getattr(node.func, "id", None) == "Exit")
        and any(isinstance(a, ast.Constant) and isinstance(a.value, int) for a in node.args)
    ]
    assert bare == [], "use the EXIT_ constants of bpfmap.errors"


def test_choices_in_the_cli_are_named_never_an_inline_tuple_checked_against():
    import ast

    def literal_strings(node) -> bool:
        return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
        )

    inline = [
        f"{name}:{node.lineno}"
        for name, tree in _cli_trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        and any(isinstance(op, ast.NotIn) and literal_strings(c) for op, c in zip(node.ops, node.comparators))
    ]
    assert inline == [], "name the choices once (options.Choices) and check them with it"


def test_the_top_level_help_lists_every_exit_code():
    from bpfmap import errors
    from bpfmap.cli import EXIT_CODES_HELP

    codes = [v for k, v in vars(errors).items() if k.startswith("EXIT_")]
    assert all(f"{code} " in EXIT_CODES_HELP for code in codes)
    assert {130, 143} <= set(codes)
