"""bpfmap(1), generated from the CLI itself: every verb with its arguments and options,
the exit codes and the examples of each verb's --help.

``python -m bpfmap.cli.manpage man/bpfmap.1`` writes it (a test fails when the checked-in
page is stale); the wheel installs it under share/man/man1."""

from __future__ import annotations

import re
import sys

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


def render() -> str:
    import typer

    from .. import __version__

    group = typer.main.get_command(make_app(completion=False))
    root = group.make_context("bpfmap", [], resilient_parsing=True)
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
    for para in _paragraphs(group.help or ""):
        out += [_esc(para), ".PP"]
    out.append(_esc("Run a verb with --help for its examples; 'bpfmap' alone lists the verbs."))
    out.append(".SH VERBS")
    examples: list[str] = []
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        ctx = cmd.make_context(name, [], parent=root, resilient_parsing=True)
        usage = " ".join(cmd.collect_usage_pieces(ctx))
        out += [f'.SS "bpfmap {_esc(name)} {_esc(usage)}"']
        for para in _paragraphs(cmd.help or ""):
            out += [_esc(para), ".PP"]
        for param in cmd.get_params(ctx):
            if param.param_type_name == "argument":
                out += [".TP", f"\\fI{_esc(param.make_metavar(ctx).strip('{}[].'))}\\fR"]
                out.append(_esc(getattr(param, "help", None) or ""))
            elif not getattr(param, "hidden", False):
                flags = ", ".join(f"\\fB{_esc(o)}\\fR" for o in _long_first(param.opts + param.secondary_opts))
                shown = param.metavar or (param.name or "").upper()
                metavar = "" if param.is_flag else f" \\fI{_esc(shown)}\\fR"
                out += [".TP", flags + metavar, _esc(getattr(param, "help", None) or "")]
        examples += _examples(cmd.epilog)
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
