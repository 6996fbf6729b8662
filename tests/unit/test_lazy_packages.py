"""Each package's ``__init__`` says what is public and re-exports it lazily (PEP 562):
every name of ``__all__`` resolves and ``dir()`` lists it, an unknown name raises
AttributeError, and importing the package loads none of its heavier modules, so that
importing bpfmap for one lookup stays cheap (issue 35)."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys

import pytest
from helpers import REPO

# package -> the modules importing it must not load (beyond what `import bpfmap` loads)
HEAVY = {
    "core": ("saved", "spec", "program", "asm", "skiter", "objrefs", "owners", "batch", "threads"),
    "host": ("hostnames", "symbols", "inputs"),
    "layout": ("cdecl", "lang", "codec", "formats", "stack", "pick", "convert", "fields"),
    "btf": (),  # its two modules are the format itself
    "objects": ("elf", "create", "fixups", "kconfig", "elftools"),
    "output": ("entries", "info", "terminal", "table", "rows", "templates", "dump", "sort", "percpu", "rich"),
    "hist": (),  # its extractor and schemes are what its own code runs on
    "streams": ("events", "userring"),
    "live": ("watch", "top", "stacks"),
    "entries": ("bulk", "drain", "changes", "migrate", "save", "restore", "diff"),
    # export's `serve` and `exposition` are also its modules' names: it binds the functions
    # when imported (a lazy name would lose to the module once the module is imported)
    "export": (),
}
SHARED_WITH_A_MODULE = {"export": {"serve", "exposition"}}


def _submodules(package: str) -> set[str]:
    folder = os.path.join(REPO, "bpfmap", package)
    return {f[:-3] for f in os.listdir(folder) if f.endswith(".py") and f != "__init__.py"}


@pytest.mark.parametrize("package", sorted(HEAVY))
def test_every_public_name_resolves_and_is_listed(package):
    mod = importlib.import_module(f"bpfmap.{package}")
    assert mod.__doc__ and mod.__all__, f"bpfmap.{package} says what is public"
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name
        assert name in dir(mod), name
    # a public name that is also a module's name would mean the module once imported
    assert set(mod.__all__) & _submodules(package) == SHARED_WITH_A_MODULE.get(package, set())


@pytest.mark.parametrize("package", sorted(HEAVY))
def test_an_unknown_name_raises_attribute_error(package):
    mod = importlib.import_module(f"bpfmap.{package}")
    with pytest.raises(AttributeError, match="no_such_name"):
        mod.no_such_name  # noqa: B018
    assert not hasattr(mod, "no_such_name")


@pytest.mark.parametrize("package", sorted(HEAVY))
def test_importing_a_package_loads_none_of_its_heavy_modules(package):
    code = f"import sys, bpfmap.{package}; print(' '.join(sorted(sys.modules)))"
    mods = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    assert f"bpfmap.{package}" in mods
    loaded = [
        heavy
        for heavy in HEAVY[package]
        if {f"bpfmap.{package}.{heavy}", heavy} & mods or any(m.startswith(heavy + ".") for m in mods)
    ]
    assert loaded == []


def _lazy_table(tree: ast.Module) -> dict[str, str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["_LAZY"]:
            return ast.literal_eval(node.value)
    return None


def _type_checking_imports(tree: ast.Module) -> dict[str, str]:
    """name -> module of every ``from .MODULE import NAME`` under ``if TYPE_CHECKING:``."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imp in node.body:
                if isinstance(imp, ast.ImportFrom):
                    found |= {a.asname or a.name: "." * (imp.level - 1) + (imp.module or "") for a in imp.names}
    return found


@pytest.mark.parametrize("package", ["", *sorted(HEAVY)])
def test_mypy_reads_the_names_the_package_loads(package):
    """A package that loads names lazily says each once: the ``from .MODULE import NAME as
    NAME`` lines under ``if TYPE_CHECKING:`` (what mypy reads) are what it loads and its
    ``__all__``.  The package root and layout keep a table (their lazy names come from
    floors that read them, or beside eager ones): it lists names of its ``__all__``."""
    from bpfmap._lazy import _type_checking_names

    path = os.path.join(REPO, "bpfmap", package, "__init__.py")
    tree = ast.parse(open(path).read())
    table = _lazy_table(tree)
    mod = importlib.import_module(f"bpfmap.{package}".rstrip("."))
    said = _type_checking_imports(tree)
    if table is not None:
        assert set(table) <= set(mod.__all__)
        if package:
            assert said == table
        return
    if not said:  # an eager package: its names are bound when it is imported
        assert "__getattr__" not in vars(mod)
        return
    assert _type_checking_names(path) == said
    assert mod.__all__ == sorted(said)
    for node in tree.body:  # each import re-exports its name explicitly (NAME as NAME)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            assert all(a.asname == a.name for imp in node.body for a in imp.names), package
