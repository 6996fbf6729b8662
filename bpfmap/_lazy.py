"""Lazy re-exports for the packages' ``__init__`` (PEP 562): each package names in one
table the module that defines each of its public names, and a name's module is imported
when the name is first used, so importing a package for one name loads only what that
name needs (start-up is most of a one-entry command's time)."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any


def reexport(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of the package ``package``, whose ``names`` map
    each public name to the module that defines it (relative to the package: ``"entries"``
    for ``package.entries``).  A name is imported on first use and kept in the package, so
    the next use is a plain attribute; any other name raises AttributeError as a module's
    missing attribute does.  Call it from the package's ``__init__``::

        __getattr__, __dir__ = reexport(__name__, {"Watcher": "watch"})
    """
    namespace = vars(sys.modules[package])

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__


def lazy_pattern(pattern: str, flags: int = 0) -> Callable[[], re.Pattern[str]]:
    """A function giving ``re.compile(pattern, flags)``, compiled on its first call: the
    patterns of a module that only some commands use cost their start-up nothing (a
    character class of surrogates or controls takes ~0.2-0.4 ms to compile)."""
    compiled: list[re.Pattern[str]] = []

    def get() -> re.Pattern[str]:
        if not compiled:
            compiled.append(re.compile(pattern, flags))
        return compiled[0]

    return get
