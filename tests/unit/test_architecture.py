"""The layering docs/architecture.md describes, checked on the source: no import circles
(not even through imports inside functions), lower layers never import higher ones, and
only _sys/ touches ctypes."""

from __future__ import annotations

import ast
import os

from helpers import REPO

ROOT = os.path.join(REPO, "bpfmap")


def _modules() -> dict[str, str]:
    mods = {}
    for root, _dirs, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(root, f)
                name = "bpfmap" + path[len(ROOT) : -3].replace(os.sep, ".")
                mods[name.removesuffix(".__init__")] = path
    return mods


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """Every bpfmap module ``name`` imports, at module level or inside functions."""
    path = MODULES[name]
    package = name if path.endswith("__init__.py") else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
            submodules = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
            # `from .. import _sys` imports the submodule, not the package's own names
            cands = submodules if len(submodules) == len(node.names) else [target, *submodules]
            for cand in cands:
                if cand in MODULES and cand != name:
                    out.add(cand)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in MODULES)
    return out


GRAPH = {m: _imports(m) for m in MODULES}


def test_no_import_circles():
    """Apart from the package's own __init__ (which re-exports), no module reaches itself."""
    graph = {m: {t for t in deps if t != "bpfmap"} for m, deps in GRAPH.items() if m != "bpfmap"}
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                cycles.append(path[path.index(t) :] + [t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


# The layers, lowest first: a row per package or top-level module (docs/architecture.md
# draws the same table).  A module imports only from its own package and from rooms on
# lower floors: never upward, never sideways into another room of its floor.
FLOORS = [
    ["_sys", "_lazy"],
    ["errors"],
    ["types", "host"],
    ["layout"],
    ["btf", "filters"],
    ["core"],
    ["objects", "view"],
    ["api", "output", "hist", "streams", "live"],
    ["entries"],
    ["export"],
    ["cli"],
    ["__main__"],
]
FLOOR = {room: i for i, rooms in enumerate(FLOORS) for room in rooms}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "bpfmap"


def test_every_package_has_a_floor():
    rooms = {_room(m) for m in MODULES} - {"bpfmap"}
    assert sorted(rooms - set(FLOOR)) == [], "give each new package or module a row in FLOORS"
    assert sorted(set(FLOOR) - rooms) == [], "FLOORS names a room that is gone"


def test_lower_layers_never_import_higher_ones():
    """The package root (bpfmap/__init__.py) re-exports: rooms above every floor it
    imports may read it (its __version__), no other."""
    root_floor = max(FLOOR[_room(d)] for d in GRAPH["bpfmap"])
    bad = []
    for m, deps in GRAPH.items():
        room = _room(m)
        if room == "bpfmap":
            continue
        for d in deps:
            other = _room(d)
            if other == room:
                continue
            if (other == "bpfmap" and FLOOR[room] <= root_floor) or (other != "bpfmap" and FLOOR[other] >= FLOOR[room]):
                bad.append((m, d))
    assert not bad, bad


def test_only_sys_touches_ctypes_and_the_cli_no_struct_or_errno():
    for name, path in MODULES.items():
        tree = ast.parse(open(path).read())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        if not name.startswith("bpfmap._sys"):
            assert "ctypes" not in imported, name
        if name.startswith("bpfmap.cli"):
            assert not imported & {"ctypes", "struct", "errno"}, name


def test_leaf_rules_live_in_one_table():
    """How a leaf is unpacked and written (struct codes, NaN's and Infinity's JSON names)
    is layout/leaves.py's alone: no other module spells a struct code table or those names
    in its code (docstrings may name them)."""
    found = []
    for name, path in MODULES.items():
        if name == "bpfmap.layout.leaves":
            continue
        text = open(path).read()
        if 'uint", 4): "I"' in text:
            found.append((name, "a struct code table"))
        tree = ast.parse(text)
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            is_code = isinstance(node, ast.Constant) and id(node) not in docstrings
            if is_code and node.value in ("NaN", "Infinity", "-Infinity", '"NaN"'):
                found.append((name, node.value))
    assert found == []


def test_no_function_imports_what_its_module_imported_already():
    """An import inside a function saves start-up only when the module does not import
    the same thing at the top already (a module imported last, after the functions, to
    break a circle, is the exception)."""
    found = []
    for name, path in MODULES.items():
        tree = ast.parse(open(path).read())
        first_def = min((n.lineno for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))), default=0)
        top = set()
        for node in tree.body:
            if node.lineno > first_def > 0:
                continue  # imported after the functions: a deliberate late import
            if isinstance(node, ast.Import):
                top |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                top.add("." * node.level + (node.module or ""))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for sub in ast.walk(fn):
                if isinstance(sub, ast.Import):
                    found += [(name, sub.lineno, a.name) for a in sub.names if a.name in top]
                elif isinstance(sub, ast.ImportFrom) and "." * sub.level + (sub.module or "") in top:
                    found.append((name, sub.lineno, sub.module))
    assert found == []


def test_the_architecture_doc_names_every_module_and_only_real_ones():
    """docs/architecture.md is checked against the code: every module of the package is
    named in it, and every path it names exists."""
    import re

    doc = open(os.path.join(os.path.dirname(ROOT), "docs", "architecture.md")).read()
    missing = []
    for name in MODULES:
        parts = name.split(".")[1:]
        if not parts or parts[-1] in ("__main__",):
            continue
        rel = "/".join(parts)
        mentions = (f"`{rel}.py`", f"`{rel}/`", f"`{rel}`", f"{rel}.", f"{rel}/", f"`{parts[-1]}`")
        if not any(m in doc for m in mentions):
            missing.append(rel)
    assert missing == []
    for path in re.findall(r"`([a-z_]+(?:/[a-z_]+)*(?:\.py|/))`", doc):
        if not path.startswith(("tests/", "docs/", "benchmarks/")):  # the rest are bpfmap's
            assert os.path.exists(os.path.join(ROOT, path)), path


def test_which_side_a_field_names_is_decided_once():
    """Which side of an entry a field path names is layout/fields.py's rule alone
    (fields.side): no other module tests a path's head against key/value, searches the
    sides in an order of its own (value first, or key first through a loop over both), or
    words the refusal; every module that reads a field option asks fields.side."""
    found = []
    for name, node in _nodes_outside("bpfmap.layout.fields"):
        if isinstance(node, (ast.Tuple, ast.List)) and _constants(node) in (["value", "key"],):
            found.append((name, node.lineno, "the value searched before the key"))
        if isinstance(node, ast.Tuple) and ast.unparse(node) in ("((0, key), (1, value))", "((1, value), (0, key))"):
            found.append((name, node.lineno, "a loop over both sides"))
        if (
            isinstance(node, ast.Compare)
            and isinstance(node.ops[0], ast.In)
            and isinstance(node.left, (ast.Subscript, ast.Call))
            and isinstance(node.comparators[0], (ast.Tuple, ast.List, ast.Set))
            and sorted(_constants(node.comparators[0])) == ["key", "value"]
        ):
            found.append((name, node.lineno, "a path's head tested against key and value"))
        if isinstance(node, ast.Constant) and "of the key and of the value" in str(node.value):
            found.append((name, node.lineno, "the refusal worded again"))
        if isinstance(node, ast.FunctionDef) and node.name in ("_dig", "_side_path"):
            found.append((name, node.lineno, f"{node.name}: a second path walker"))
    assert found == []
    readers = ("filters", "view", "output.sort", "live.stacks", "layout.convert", "export.collector")
    assert [r for r in readers if "fields.side(" not in open(MODULES[f"bpfmap.{r}"]).read()] == []


def _nodes_outside(home: str):
    """(module, node) for every AST node of every module but ``home``."""
    for name, path in MODULES.items():
        if name != home:
            for node in ast.walk(ast.parse(open(path).read())):
                yield name, node


def _constants(node: ast.AST) -> list:
    elts = getattr(node, "elts", [])
    return [e.value for e in elts if isinstance(e, ast.Constant)] if len(elts) == 2 else []


def test_histogram_schemes_live_in_one_module():
    """The slot schemes (their names, what each slot counts) are hist/schemes.py's alone:
    no other module spells the scheme names in a tuple or computes a slot's range."""
    found = []
    for name, node in _nodes_outside("bpfmap.hist.schemes"):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            names = {e.value for e in node.elts if isinstance(e, ast.Constant)}
            if {"exp2", "exp2zero"} <= names or {"log2", "bits"} <= names:
                found.append((name, node.lineno, "the scheme names listed again"))
        if isinstance(node, ast.FunctionDef) and node.name in ("slot_range", "canonical_scheme", "check_scheme"):
            found.append((name, node.lineno, node.name))
    assert found == []


def test_histogram_counts_are_read_by_one_extractor():
    """Where a map keeps its histogram's counts, and walking them into buckets, is
    hist/extract.py's alone (hist, watch --hist and export read maps through it): no
    module outside bpfmap/hist/ reads a slot field or an array of slots by path, sums
    counts by slot, or splits off a sum slot; export's collector calls the extractor."""
    found = []
    for name, node in _nodes_outside("bpfmap.hist.extract"):
        if name.startswith("bpfmap.hist") or not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for sub in ast.walk(node):
            if (
                isinstance(sub, ast.Call)
                and _called(sub) in ("getter", "select", "itemgetter")
                and any("slot" in _ident(a) for a in sub.args)
            ):
                found.append((name, sub.lineno, f"{node.name}: a slot field read by path"))
            if (
                isinstance(sub, ast.AugAssign)
                and isinstance(sub.target, ast.Subscript)
                and "slot" in _ident(sub.target.slice)
            ):
                found.append((name, sub.lineno, f"{node.name}: counts summed by slot"))
        if any(isinstance(s, ast.Attribute) and s.attr == "sum_slot" for s in ast.walk(node)) and any(
            isinstance(s, ast.Subscript) and ast.unparse(s.slice) in ("-1", ":-1") for s in ast.walk(node)
        ):
            found.append((name, node.lineno, f"{node.name}: a sum slot split off"))
    assert found == []
    collector = ast.parse(open(MODULES["bpfmap.export.collector"]).read())
    calls = {_called(n) for n in ast.walk(collector) if isinstance(n, ast.Call)}
    assert {"locate", "Tally"} <= calls
    assert "bpfmap.hist.extract" in GRAPH["bpfmap.export.collector"]
    assert "bpfmap.hist.extract" in GRAPH["bpfmap.hist"]


def _called(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _ident(node: ast.AST) -> str:
    """The name or attribute ``node`` is (``slot``, ``h.slots``: its last part), else ""."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def test_a_saved_map_reads_through_the_same_code_as_a_live_one():
    """What a live Map and a SavedMap read the same way has one home, core/values.ValueReads:
    neither restates the pairs made of batches, the values, get/in or the key's size check."""
    from bpfmap.core.maps import Map
    from bpfmap.core.saved import SavedMap
    from bpfmap.core.values import ValueReads

    for name in ("items", "values", "get", "__contains__", "check_key"):
        assert getattr(Map, name) is getattr(ValueReads, name) is getattr(SavedMap, name), name
    found = [
        (name, node.lineno)
        for name, node in _nodes_outside("bpfmap.core.values")
        if isinstance(node, ast.Constant) and "bytes given, the map's keys are" in str(node.value)
    ]
    assert found == []
