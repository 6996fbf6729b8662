"""mkdocs hook: the reference pages generated at build time from the program itself, so
they cannot drift from it.

- reference/cli/VERB.md for every verb, from the typer app (bpfmap.cli.manpage.verbs:
  the walk the man page is written from): usage, arguments, options with defaults, and
  the examples of its --help;
- reference/python-api.md, from the names ``bpfmap`` exports, rendered by mkdocstrings
  from their docstrings."""

from __future__ import annotations

import html
import os
import re
import sys

from mkdocs.structure.files import File

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _checkout() -> None:
    """The checkout's bpfmap, before any installed one (mkdocs restores sys.path after
    loading a hook, so this runs when the hook is called)."""
    if sys.path[:1] != [REPO]:
        sys.path.insert(0, REPO)
    for name in [n for n in sys.modules if n == "bpfmap" or n.startswith("bpfmap.")]:
        if not (getattr(sys.modules[name], "__file__", None) or "").startswith(REPO + os.sep):
            del sys.modules[name]


def _md(text: str) -> str:
    """Help text for a markdown table cell: nothing in it is markup."""
    text = html.escape(text, quote=False)
    text = re.sub(r"([\\`*_\[\]|])", r"\\\1", text)
    return " ".join(text.split())


def verb_page(verb) -> str:
    from bpfmap.cli import EXIT_CODES_HELP

    out = [f"# bpfmap {verb.name}", "", "```text", f"bpfmap {verb.name} {verb.usage}", "```", ""]
    out += [_md(p) + "\n" for p in verb.help]
    args = [p for p in verb.params if p.argument]
    opts = [p for p in verb.params if not p.argument]
    if args:
        out += ["## Arguments", "", "| argument | meaning |", "|---|---|"]
        out += [f"| `{p.names[0]}` | {_md(p.help)} |" for p in args]
        out.append("")
    if opts:
        out += ["## Options", "", "| option | default | meaning |", "|---|---|---|"]
        for p in opts:
            names = ", ".join(f"`{n}`" for n in p.names) + (f" *{_md(p.metavar)}*" if p.metavar else "")
            default = f"`{p.default}`" if p.default not in (None, "") else ""
            out.append(f"| {names} | {default} | {_md(p.help)} |")
        out.append("")
    if verb.examples:
        out += ["## Examples", "", "```console"]
        out += [f"$ {ex}" for ex in verb.examples]
        out += ["```", ""]
    out += ["## Exit status", "", "```text", EXIT_CODES_HELP.strip(), "```", ""]
    return "\n".join(out)


def api_page() -> str:
    import bpfmap

    eager = [n for n in ("Map", "MapInfo", "list_maps", "possible_cpus", "Layout", "MapType", "MapFlag")]
    lazy = list(bpfmap._LAZY)
    out = [
        "# Python API reference",
        "",
        "Generated from the docstrings of everything `import bpfmap` exports; the "
        "[tutorial](python.md) shows them at work.",
        "",
    ]
    for name in [*eager, *lazy]:
        obj = getattr(bpfmap, name)
        module = getattr(obj, "__module__", "bpfmap")
        out += [f"## `bpfmap.{name}`", "", f"::: {module}.{name}", "    options:", "      show_root_heading: false", ""]
    out += ["## Errors", "", "::: bpfmap.errors", "    options:", "      show_root_heading: false", ""]
    return "\n".join(out)


_VERBS: list = []


def on_config(config):
    _checkout()
    from bpfmap.cli.manpage import verbs

    _VERBS[:] = verbs()
    for section in config["nav"]:
        if isinstance(section, dict) and "Reference" in section:
            for entry in section["Reference"]:
                if isinstance(entry, dict) and "Commands" in entry:
                    entry["Commands"] = [{v.name: f"reference/cli/{v.name}.md"} for v in _VERBS]
    return config


def on_files(files, config):
    for verb in _VERBS:
        files.append(File.generated(config, f"reference/cli/{verb.name}.md", content=verb_page(verb)))
    files.append(File.generated(config, "reference/python-api.md", content=api_page()))
    return files
