"""bpfmap(1), generated from the CLI itself: every verb with its arguments and options,
the exit codes and the examples of each verb's --help.

``python -m bpfmap.cli.manpage man/bpfmap.1`` writes it (a test fails when the checked-in
page is stale); the wheel installs it under share/man/man1."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from . import EXIT_CODES_HELP, make_app


def _esc(text: str) -> str:
    """Text for roff: backslashes and hyphens escaped, no line starting with a control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + ln if ln.startswith((".", "'")) else ln for ln in text.split("\n"))


def _paragraphs(text: str) -> list[str]:
    """Help text as paragraphs (click's \\b markers dropped, lines joined)."""
    out = []
    for para in re.split(r"\n\s*\n", text.strip()):
        lines = [ln.strip() for ln in para.splitlines() if ln.strip() != "\b"]
        if lines:
            out.append(" ".join(lines))
    return out


def _long_first(opts: list[str]) -> list[str]:
    """An option's names, long ones first (click may list the help option's either way
    round, depending on what the process did before)."""
    return sorted(opts, key=lambda o: not o.startswith("--"))


def _examples(epilog: str | None) -> list[str]:
    return [ln.strip()[2:] for ln in (epilog or "").splitlines() if ln.strip().startswith("$ ")]


@dataclass
class HelpParam:
    """One argument or option of a verb, as --help lists it."""

    argument: bool
    names: list[str]  # an argument's metavar, or an option's names, long ones first
    metavar: str  # what follows an option ("" for a flag)
    help: str
    default: str | None  # as --help shows it, when it shows one


@dataclass
class VerbHelp:
    name: str
    usage: str
    help: list[str]  # paragraphs
    params: list[HelpParam]
    examples: list[str]  # the command lines of the --help examples, without "$ "
    epilog: str


def _default(param, ctx) -> str | None:
    if getattr(param, "show_default", None) is False or param.is_flag and not param.default:
        return None
    value = param.get_default(ctx, call=False)
    if value is None or value == () or callable(value):
        return None
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def group():
    """The click group of the typer app, and its root context."""
    import typer

    cmd = typer.main.get_command(make_app(completion=False))
    return cmd, cmd.make_context("bpfmap", [], resilient_parsing=True)


def verbs() -> list[VerbHelp]:
    """Every verb of the app with its arguments and options: the walk the man page and the
    site's reference pages (docs/hooks/reference.py) are written from."""
    root_cmd, root = group()
    out = []
    for name, cmd in root_cmd.commands.items():
        ctx = cmd.make_context(name, [], parent=root, resilient_parsing=True)
        params = []
        for param in cmd.get_params(ctx):
            if param.param_type_name == "argument":
                params.append(
                    HelpParam(
                        True, [param.make_metavar(ctx).strip("{}[].")], "", getattr(param, "help", None) or "", None
                    )
                )
            elif not getattr(param, "hidden", False):
                shown = param.metavar or (param.name or "").upper()
                params.append(
                    HelpParam(
                        False,
                        _long_first(param.opts + param.secondary_opts),
                        "" if param.is_flag else shown,
                        getattr(param, "help", None) or "",
                        _default(param, ctx),
                    )
                )
        usage = " ".join(cmd.collect_usage_pieces(ctx))
        out.append(VerbHelp(name, usage, _paragraphs(cmd.help or ""), params, _examples(cmd.epilog), cmd.epilog or ""))
    return out


def render() -> str:
    from .. import __version__

    root_cmd, _ = group()
    out = [
        f'.TH BPFMAP 1 "" "bpfmap {__version__}" "User Commands"',
        ".SH NAME",
        "bpfmap \\- create, read, write and dump Linux eBPF maps",
        ".SH SYNOPSIS",
        ".B bpfmap",
        ".I VERB",
        "[\\fIOPTIONS\\fR] [\\fIARGS\\fR]...",
        ".SH DESCRIPTION",
    ]
    for para in _paragraphs(root_cmd.help or ""):
        out += [_esc(para), ".PP"]
    out.append(_esc("Run a verb with --help for its examples; 'bpfmap' alone lists the verbs."))
    out.append(".SH VERBS")
    examples: list[str] = []
    for verb in verbs():
        out += [f'.SS "bpfmap {_esc(verb.name)} {_esc(verb.usage)}"']
        for para in verb.help:
            out += [_esc(para), ".PP"]
        for p in verb.params:
            if p.argument:
                out += [".TP", f"\\fI{_esc(p.names[0])}\\fR", _esc(p.help)]
            else:
                flags = ", ".join(f"\\fB{_esc(o)}\\fR" for o in p.names)
                metavar = f" \\fI{_esc(p.metavar)}\\fR" if p.metavar else ""
                out += [".TP", flags + metavar, _esc(p.help)]
        examples += verb.examples
    out.append(".SH EXIT STATUS")
    out.append(_esc(EXIT_CODES_HELP))
    out += [".SH EXAMPLES", ".nf"]
    out += [_esc(ex) for ex in examples]
    out += [".fi", ".SH SEE ALSO", "bpftool(8), bpf(2)"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "man/bpfmap.1"
    with open(path, "w") as f:
        f.write(render())
