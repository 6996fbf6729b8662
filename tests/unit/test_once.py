"""Each fact is stated once: checked on the source, so that a second copy fails here
instead of drifting.  Map-type facts live in types.py's table, reference forms in
types.REF_FORMS, the choice of a map's codecs in layout/pick.py, and no two public
classes (or type aliases) of the package share a name."""

from __future__ import annotations

import ast
import os
from collections import defaultdict

from conftest import REPO

from bpfmap.core import objrefs
from bpfmap.types import REF_FORMS, SPECS

ROOT = os.path.join(REPO, "bpfmap")


def _sources() -> dict[str, ast.Module]:
    out = {}
    for root, _dirs, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(root, f)
                out[os.path.relpath(path, ROOT)] = ast.parse(open(path).read())
    return out


SOURCES = _sources()


def _names_map_type(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "MapType"


def test_no_module_but_types_lists_map_types():
    """A set of map types (a tuple, list, set or dict of MapType members) is a fact about
    those types: it belongs in TypeSpec, where every type says it or not.  (One member
    beside other values, as in an assignment of several fields, is no set of types.)"""
    found = []
    for rel, tree in SOURCES.items():
        if rel == "types.py":
            continue
        for node in ast.walk(tree):
            items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else None
            if isinstance(node, ast.Dict):
                items = [k for k in node.keys if k is not None]
            if items and sum(_names_map_type(e) for e in items) > 1:
                found.append(f"{rel}:{node.lineno}")
    assert found == []


def test_reference_forms_are_stated_once():
    """Every kind of kernel object a map type refers to has a form, and objrefs opens
    exactly the forms that name kernel objects."""
    objects = {k for k, f in REF_FORMS.items() if f.object}
    assert set(objrefs._OPENERS) == objects
    assert {s.object for s in SPECS.values() if s.object} <= objects
    for rel, tree in SOURCES.items():  # no second table of the forms
        for node in ast.walk(tree):
            if rel != "types.py" and isinstance(node, ast.Dict):
                texts = [v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
                assert not [t for t in texts if t in {f.form for f in REF_FORMS.values()}], f"{rel}:{node.lineno}"


def test_only_layout_pick_reads_the_type_displays():
    """How a type shows its keys and values (an LPM trie's CIDR, stack frames, ...) is
    decided in layout/pick.py; elsewhere the codec it picked is used as it is."""
    readers = set()
    for rel, tree in SOURCES.items():
        for node in ast.walk(tree):
            displays = ("key_display", "value_display")
            if isinstance(node, ast.Attribute) and node.attr in displays and isinstance(node.ctx, ast.Load):
                readers.add(rel)
            made = ("cidr_key", "StackCodec", "IndexCodec", "IdCodec")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in made:
                readers.add(rel)
    # view.py (View.element_key): a cgroup:PATH key for a cgroup storage map, whatever its key layout
    assert readers == {"layout/pick.py", "view.py"}


def _public_names(tree: ast.Module) -> list[str]:
    names = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:  # type aliases: CamelCase names bound at module level
                if isinstance(t, ast.Name) and t.id[:1].isupper() and not t.id.isupper():
                    names.append(t.id)
        elif type(node).__name__ == "TypeAlias":  # Python 3.12+: type X = ...
            names.append(node.name.id)  # type: ignore[attr-defined]
    return [n for n in names if not n.startswith("_")]


def test_no_two_public_classes_share_a_name():
    """``Plan`` in two modules is two things under one name: each gets its own."""
    where = defaultdict(list)
    for rel, tree in SOURCES.items():
        for name in _public_names(tree):
            where[name].append(rel)
    assert {n: r for n, r in where.items() if len(r) > 1} == {}


def _module_values(tree: ast.Module) -> dict[str, ast.expr | None]:
    out: dict[str, ast.expr | None] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node.value
    return out


def test_module_state_is_passed_in_not_written_from_outside():
    """A module's globals are not a channel between modules: no module sets another's
    (``cli._ERROR_PREFIX = ...``), and a module rebinds its own only to fill a cache made
    once (a global that starts as None), never to carry one call's settings to another
    function (``_JSON_ERRORS``): those are passed as arguments."""
    found = []
    for rel, tree in SOURCES.items():
        values = _module_values(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and node.attr.lstrip("_").isupper():
                found.append(f"{rel}:{node.lineno}: {ast.unparse(node)} set from outside its module")
            if isinstance(node, ast.Global):
                for name in node.names:
                    start = values.get(name)
                    if not (isinstance(start, ast.Constant) and start.value is None):
                        found.append(f"{rel}:{node.lineno}: global {name} is not a cache")
    assert found == []
