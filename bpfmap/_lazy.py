"""Lazy re-exports for the packages' ``__init__`` (PEP 562): each package says each of its
public names once, as the import a type checker reads under ``if TYPE_CHECKING:``, and a
name's module is imported when the name is first used, so importing a package for one
name loads only what that name needs (start-up is most of a one-entry command's time)."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads the name as True)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from re import Pattern
    from typing import Any

# What a higher layer lends a lower one, by name, set when the higher one is imported: the
# package root puts "view" here (what Map.view calls: api and view are floors above core,
# which never imports them).  The root is imported before any of its modules, so a join
# is there before anything can call it.
JOINS: dict[str, Callable[..., Any]] = {}

# Nothing here imports more than sys at load time: the package roots and the one-entry
# verbs' quick path (cli/quick.py) load this module, and re, typing and collections cost
# a one-entry command more than its own work.


def reexport(
    package: str, names: Mapping[str, str] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of the package ``package``, whose ``names`` map
    each public name to the module that defines it (relative to the package: ``"entries"``
    for ``package.entries``); without ``names``, the ``from .MODULE import NAME as NAME``
    lines under the package's ``if TYPE_CHECKING:`` say them (what mypy reads: each name
    said once), read when a name is first asked for.  A name is imported on first use and
    kept in the package, so the next use is a plain attribute; ``__all__`` is the names
    (where the package does not set its own); any other name raises AttributeError as a
    module's missing attribute does.  Call it from the package's ``__init__``::

        __getattr__, __dir__ = reexport(__name__)
    """
    namespace = vars(sys.modules[package])
    table: dict[str, str] = dict(names) if names is not None else {}

    def known() -> dict[str, str]:
        if not table and names is None:
            table.update(_type_checking_names(namespace["__file__"]))
        return table

    def __getattr__(name: str) -> Any:
        if name == "__all__":
            value: Any = sorted(known())
        else:
            module = known().get(name)
            if module is None:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            full = f"{package}.{module}"
            __import__(full)
            value = getattr(sys.modules[full], name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(known()))

    return __getattr__, __dir__


def _type_checking_names(path: str) -> dict[str, str]:
    """name -> module of each ``from .MODULE import NAME as NAME`` in the block under the
    file's ``if TYPE_CHECKING:`` (read as text: the ast module would cost start-up)."""
    import re

    with open(path, encoding="utf-8") as f:
        text = f.read()
    start = text.index("\nif TYPE_CHECKING:\n") + len("\nif TYPE_CHECKING:\n")
    end = re.search(r"^\S", text[start:], re.M)
    block = text[start : start + end.start()] if end else text[start:]
    block = re.sub(r"\(([^)]*)\)", lambda m: " ".join(m.group(1).split()), block)  # (a, b) on one line
    found = {}
    for module, imported in re.findall(r"^\s*from \.(\w+) import (.+)$", block, re.M):
        for item in filter(None, (i.strip() for i in imported.split(","))):
            found[item.split(" as ")[-1].strip()] = module
    return found


def lazy_pattern(pattern: str, flags: int = 0) -> Callable[[], Pattern[str]]:
    """A function giving ``re.compile(pattern, flags)``, compiled on its first call: the
    patterns of a module that only some commands use cost their start-up nothing (a
    character class of surrogates or controls takes ~0.2-0.4 ms to compile)."""
    compiled: list[Pattern[str]] = []

    def get() -> Pattern[str]:
        if not compiled:
            import re

            compiled.append(re.compile(pattern, flags))
        return compiled[0]

    return get
