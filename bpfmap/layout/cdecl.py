"""C declarations -> the layout model, through pycparser.

Headers as users write them: ``#include`` lines are dropped (the kernel and C99
integer typedefs are predefined), macros are expanded by the C preprocessor when
one is installed (a small fallback expands object-like macros without it), BPF map
definitions and ``SEC(...)`` are tolerated, function bodies are skipped, and
``__attribute__((packed))`` / ``aligned(N)`` on structs are honoured.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from typing import Any

from ..errors import Param, UsageError, words
from .model import SCALARS, Array, Char, Enum, Member, Struct, Type, layout_struct

# Typedefs every BPF header may use without its #includes (LP64: long is 64-bit).
_INTS = {
    8: ("char", "signed char", "unsigned char"),
    16: ("short", "short", "unsigned short"),
    32: ("int", "int", "unsigned int"),
    64: ("long long", "long long", "unsigned long long"),
}
_PRELUDE_TYPEDEFS: dict[str, str] = {}
for _bits, (_plain, _s, _u) in _INTS.items():
    for _fmt_u, _fmt_s in (("__u{}", "__s{}"), ("u{}", "s{}"), ("uint{}_t", "int{}_t")):
        _PRELUDE_TYPEDEFS[_fmt_u.format(_bits)] = _u
        _PRELUDE_TYPEDEFS[_fmt_s.format(_bits)] = _s
    if _bits > 8:
        _PRELUDE_TYPEDEFS[f"__be{_bits}"] = _u
        _PRELUDE_TYPEDEFS[f"__le{_bits}"] = _u
_PRELUDE_TYPEDEFS.update(
    {
        "__wsum": "unsigned int",
        "__sum16": "unsigned short",
        "size_t": "unsigned long",
        "ssize_t": "long",
        "uintptr_t": "unsigned long",
        "intptr_t": "long",
        "bool": "_Bool",
        "pid_t": "int",
        "uid_t": "unsigned int",
        "gid_t": "unsigned int",
        "__kernel_size_t": "unsigned long",
        "u_int8_t": "unsigned char",
        "u_int16_t": "unsigned short",
        "u_int32_t": "unsigned int",
        "u_int64_t": "unsigned long long",
        # __int128 (which pycparser does not know) is rewritten to these before parsing
        "__bpfmap_u128": "int",
        "__bpfmap_s128": "int",
        "__u128": "__bpfmap_u128",
        "__s128": "__bpfmap_s128",
    }
)
_INT128 = (
    (re.compile(r"\bunsigned\s+__int128\b|\b__uint128_t\b|\b__int128\s+unsigned\b"), "__bpfmap_u128"),
    (re.compile(r"\b(?:signed\s+)?__int128(?:_t)?\b"), "__bpfmap_s128"),
)
# Typedef names that mean a byte order: decoded as such, wherever a chain of typedefs ends.
_ORDERED = {f"__be{b}": SCALARS[f"be{b}"] for b in (16, 32, 64)} | {f"__le{b}": SCALARS[f"le{b}"] for b in (16, 32, 64)}

# Function-like and attribute macros from bpf_helpers.h / the kernel, defined away.
_PRELUDE_MACROS = r"""
#define SEC(name)
#define __uint(name, val) int (*name)[val]
#define __type(name, val) int *name
#define __array(name, val) int *name[]
#define __ulong(name, val) unsigned long name
#define __always_inline inline
#define __noinline
#define __weak
#define __hidden
#define __ksym
#define __kconfig
#define __packed __attribute__((packed))
#define __aligned(x) __attribute__((aligned(x)))
#define __attribute_const__
#define __user
#define __kernel
#define __force
#define __bitwise
#define __rcu
#define __percpu
#define __iomem
#define __must_check
#define __maybe_unused
#define __section(x)
#define __extension__
#define __restrict restrict
#define __inline inline
#define __inline__ inline
#define __volatile__ volatile
#define __signed__ signed
#define likely(x) (x)
#define unlikely(x) (x)
#define true 1
#define false 0
#define NULL ((void *)0)
"""

_OBJECT_MACROS = {
    m.group(1): m.group(2) or "" for m in re.finditer(r"^#define (\w+)[ \t]*(.*)$", _PRELUDE_MACROS, re.M)
}


def _typedef_prelude(text: str) -> str:
    out = []
    for name, ctype in _PRELUDE_TYPEDEFS.items():
        if not re.search(rf"typedef[^;]*\b{re.escape(name)}\s*;", text):
            out.append(f"typedef {ctype} {name};")
    return "\n".join(out) + "\n"


# -- preprocessing -------------------------------------------------------------------------


def _drop_includes(text: str) -> str:
    return re.sub(r"^[ \t]*#[ \t]*include\b.*$", "", text, flags=re.M)


def _run_cpp(text: str, filename: str) -> str | None:
    cpp = shutil.which("cpp")
    if cpp is None:
        return None
    with tempfile.TemporaryDirectory(prefix="bpfmapcpp") as d:
        prelude = os.path.join(d, "prelude.h")
        src = os.path.join(d, os.path.basename(filename) or "header.h")
        with open(prelude, "w") as f:
            f.write(_PRELUDE_MACROS)
        with open(src, "w") as f:
            f.write(text)
        r = subprocess.run(
            [cpp, "-undef", "-nostdinc", "-x", "c", "-include", prelude, src], capture_output=True, text=True
        )
        if r.returncode != 0:
            first = next((ln for ln in r.stderr.splitlines() if "error" in ln), r.stderr.strip())
            raise UsageError(f"C header {filename}: the preprocessor failed: {first.replace(src, filename)}")
        # keep the user's file name in line markers, so parse errors point into it
        return r.stdout.replace(src, filename).replace(prelude, "<bpfmap prelude>")


def _mini_cpp(text: str) -> str:
    """Without cpp: drop directives, expand object-like macros (``#define LEN 16``)."""
    macros = dict(_OBJECT_MACROS)
    lines = []
    for line in text.splitlines():
        m = re.match(r"^\s*#\s*define\s+(\w+)(?!\()[ \t]*(.*)$", line)
        if m:
            macros[m.group(1)] = m.group(2).split("//")[0].strip()
        lines.append("" if line.lstrip().startswith("#") else line)
    out = "\n".join(lines)
    out = re.sub(r"\bSEC\s*\((?:[^()]|\([^()]*\))*\)", "", out)
    out = re.sub(r"\b__uint\s*\(\s*(\w+)\s*,[^)]*\)", r"int (*\1)[1]", out)
    out = re.sub(r"\b__type\s*\(\s*(\w+)\s*,(?:[^()]|\([^()]*\))*\)", r"int *\1", out)
    out = re.sub(r"\b__array\s*\(\s*(\w+)\s*,(?:[^()]|\([^()]*\))*\)", r"int *\1[]", out)
    out = re.sub(r"\b__ulong\s*\(\s*(\w+)\s*,[^)]*\)", r"unsigned long \1", out)
    out = re.sub(r"\b__aligned\s*\(([^)]*)\)", r"__attribute__((aligned(\1)))", out)
    out = re.sub(r"\b(likely|unlikely)\s*\(", "(", out)
    for _ in range(8):  # nested object-like macros
        changed = False
        for name, body in macros.items():
            if name in ("likely", "unlikely"):
                continue
            new = re.sub(rf"\b{name}\b", body.replace("\\", "\\\\"), out)
            if new != out:
                out, changed = new, True
        if not changed:
            break
    return out


def _matching(text: str, i: int, open_ch: str, close_ch: str) -> int:
    """Index of the bracket closing the one at ``i``."""
    depth = 0
    for j in range(i, len(text)):
        if text[j] == open_ch:
            depth += 1
        elif text[j] == close_ch:
            depth -= 1
            if depth == 0:
                return j
    return len(text) - 1


def _blank(s: str) -> str:
    return re.sub(r"[^\n]", " ", s)


_ATTR = re.compile(r"__attribute__\s*\(\(")


def _strip_attributes(text: str) -> tuple[str, dict[str, dict[Any, Any]]]:
    """Remove every __attribute__((...)); return the packed/aligned ones of structs by name
    (anonymous packed structs get a generated name)."""
    attrs: dict[str, dict[Any, Any]] = {}
    counter = 0
    while True:
        m = _ATTR.search(text)
        if not m:
            return text, attrs
        end = _matching(text, m.start() + text[m.start() :].index("("), "(", ")")
        body = text[m.end() : end - 1]
        info: dict[str, int | bool] = {}
        if re.search(r"\b__packed__\b|\bpacked\b", body):
            info["packed"] = True
        am = re.search(r"\b(?:__aligned__|aligned)\s*\(\s*(\d+)\s*\)", body)
        if am:
            info["align"] = int(am.group(1))
        target = None
        if info:
            before = text[: m.start()].rstrip()
            after = text[end + 1 :]
            sm = re.search(r"\b(struct|union)\s*$", before)
            if sm:  # struct __attribute__((packed)) name {
                nm = re.match(r"\s*(\w+)", after)
                if nm:
                    target = nm.group(1)
                else:
                    counter += 1
                    target = f"__bpfmap_anon{counter}"
                    after = " " + target + after
                    text = text[: end + 1] + after
            elif before.endswith("}"):  # struct name { ... } __attribute__((packed))
                open_i = _open_of(before, len(before) - 1)
                head = re.search(r"\b(struct|union)\s*(\w*)\s*$", before[:open_i])
                if head:
                    if head.group(2):
                        target = head.group(2)
                    else:
                        counter += 1
                        target = f"__bpfmap_anon{counter}"
                        text = text[: head.end(1)] + " " + target + text[head.end(1) :]
                        end += len(target) + 1
                        found = _ATTR.search(text, head.end(1))
                        assert found is not None  # the same attribute, moved right by the name
                        m = found
        if target:
            attrs.setdefault(target, {}).update(info)
        text = text[: m.start()] + _blank(text[m.start() : end + 1]) + text[end + 1 :]


def _open_of(text: str, close_i: int) -> int:
    depth = 0
    for j in range(close_i, -1, -1):
        if text[j] == "}":
            depth += 1
        elif text[j] == "{":
            depth -= 1
            if depth == 0:
                return j
    return 0


def _drop_function_bodies(text: str) -> str:
    """Replace the body of every function definition by ';' (BPF code is full of GNU C)."""
    out = []
    i = 0
    depth = 0
    while i < len(text):
        ch = text[i]
        if ch == "{":
            if depth == 0 and re.search(r"\)\s*$", text[:i]):
                end = _matching(text, i, "{", "}")
                out.append(";" + _blank(text[i + 1 : end + 1]))
                i = end + 1
                continue
            depth += 1
        elif ch == "}":
            depth -= 1
        out.append(ch)
        i += 1
    return "".join(out)


# -- the AST -> model ------------------------------------------------------------------------


# The file name pycparser gives the typedefs of the queried types (key_type, value_type):
# an error there is in a query, not in the header.
_QUERIES = "<bpfmap queries>"


class CDecls:
    """Parsed C declarations; :meth:`resolve` turns a type name into a model type."""

    def __init__(
        self, text: str, filename: str = "<header>", queries: Sequence[str] = (), use_cpp: bool = True
    ) -> None:
        try:
            from pycparser import c_ast, c_parser
        except ImportError:  # pragma: no cover - a dependency
            raise UsageError("C headers need pycparser: pip install pycparser") from None
        self._ast = c_ast
        self.filename = filename
        body = _drop_includes(text)
        expanded = _run_cpp(body, filename) if use_cpp else None
        if expanded is None:
            expanded = f'# 1 "{filename}"\n' + _mini_cpp(body)
        for pattern, name in _INT128:
            expanded = pattern.sub(name, expanded)
        expanded, self.attrs = _strip_attributes(expanded)
        expanded = _drop_function_bodies(expanded)
        self.queries: dict[str, str] = {}
        tail = []
        for i, q in enumerate(queries):
            m = re.match(r"^(.*?)((?:\s*\[\s*\w+\s*\])*)\s*$", q.strip(), re.S)
            assert m is not None  # the pattern matches any string
            base, dims = m.group(1), m.group(2)
            alias = f"__bpfmap_query{i}"
            self.queries[q] = alias
            tail.append(f"typedef {base} {alias}{dims};")
        source = (
            f'# 1 "<bpfmap prelude>"\n{_typedef_prelude(expanded)}\n{expanded}\n'
            f'# 1 "{_QUERIES}"\n' + "\n".join(tail) + "\n"
        )
        try:
            self.ast = c_parser.CParser().parse(source, filename)
        except Exception as err:  # pycparser's ParseError
            msg = str(err)
            if _QUERIES in msg:
                header_only = source[: source.index(f'# 1 "{_QUERIES}"')]
                try:  # an unfinished declaration in the header only shows up at our queries
                    c_parser.CParser().parse(header_only + "\n", filename)
                except Exception:
                    raise UsageError(
                        f"C header {filename}: it ends inside a declaration (a missing '}}' or ';'?)"
                    ) from None
                raise UsageError(
                    f"C type {'/'.join(queries)}: {msg.split(':', 3)[-1].strip()}; is the type declared in {filename}?"
                ) from None
            raise UsageError(
                f"C header {msg}; bpfmap reads declarations (structs, unions, enums, typedefs), not arbitrary C"
            ) from None
        self.typedefs: dict[Any, Any] = {}
        self.tagged: dict[tuple[str, str], object] = {}
        self.enum_values: dict[str, int] = {}
        self._cache: dict[tuple[str, Any], Any] = {}  # types made; None: a struct being made
        self._collect(self.ast)

    def _collect(self, node: Any) -> None:
        a = self._ast
        if isinstance(node, a.Typedef):
            self.typedefs[node.name] = node.type
        if isinstance(node, (a.Struct, a.Union)) and node.name and node.decls is not None:
            self.tagged.setdefault(("union" if isinstance(node, a.Union) else "struct", node.name), node)
        if isinstance(node, a.Enum) and node.values is not None:
            if node.name:
                self.tagged.setdefault(("enum", node.name), node)
            self._enum_type(node)  # records enumerator values for constant expressions
        for _name, child in node.children():
            self._collect(child)

    # -- public --

    def resolve(self, name: str) -> Type:
        """The model type of a C type name as given as key_type or value_type."""
        alias = self.queries.get(name)
        if alias is None:
            raise KeyError(name)
        return self._type(self.typedefs[alias], name)

    def known_types(self) -> list[str]:
        tags = [f"{k} {n}" for (k, n) in self.tagged]
        user = [t for t in self.typedefs if not t.startswith("__bpfmap") and t not in _PRELUDE_TYPEDEFS]
        return sorted(tags) + sorted(user)

    # -- conversion --

    def _type(self, node: Any, ctx: str) -> Type:
        a = self._ast
        if isinstance(node, a.TypeDecl):
            return self._type(node.type, ctx)
        if isinstance(node, a.IdentifierType):
            return self._named(node.names, ctx)
        if isinstance(node, (a.Struct, a.Union)):
            return self._struct(node, ctx)
        if isinstance(node, a.Enum):
            return self._enum_type(node, ctx)
        if isinstance(node, a.ArrayDecl):
            if node.dim is None:
                raise UsageError(f"C type {ctx}: an array without a size ([]) has no fixed layout")
            elem_node = node.type
            count = self._const(node.dim, ctx)
            elem = self._type(elem_node, ctx)
            if self._is_plain_char(elem_node):
                return Char(count)
            return Array(elem, count)
        if isinstance(node, a.PtrDecl):
            return SCALARS["u64"]  # a pointer in a map value is just an address to user space
        if isinstance(node, a.FuncDecl):
            raise UsageError(f"C type {ctx}: a function is not data")
        raise UsageError(f"C type {ctx}: cannot lay out {type(node).__name__}")

    def _is_plain_char(self, node: Any) -> bool:
        a = self._ast
        while isinstance(node, a.TypeDecl):
            node = node.type
        if isinstance(node, a.IdentifierType):
            names = [n for n in node.names if n not in ("const", "volatile")]
            if names == ["char"]:
                return True
            if len(names) == 1 and names[0] in self.typedefs and names[0] not in _PRELUDE_TYPEDEFS:
                return self._is_plain_char(self.typedefs[names[0]])
        return False

    def _named(self, names: list[str], ctx: str) -> Type:
        if names == ["__bpfmap_u128"] or names == ["__bpfmap_s128"]:
            return SCALARS[names[0][-4:]]
        if len(names) == 1 and names[0] in _ORDERED:
            return _ORDERED[names[0]]
        if len(names) == 1 and names[0] in self.typedefs:
            key = ("typedef", names[0])
            if key not in self._cache:
                self._cache[key] = self._type(self.typedefs[names[0]], names[0])
            typedef: Type = self._cache[key]
            return typedef
        words = sorted(n for n in names if n not in ("signed", "int") or len(names) == 1)
        signed = "unsigned" not in names
        spec = " ".join(n for n in names)
        if "_Bool" in names:
            return SCALARS["bool"]
        if "float" in names:
            return SCALARS["f32"]
        if "double" in names:
            if "long" in names:
                raise UsageError(f"C type {ctx}: long double is not supported")
            return SCALARS["f64"]
        if "void" in names:
            raise UsageError(f"C type {ctx}: void has no size")
        if "char" in names:
            bits = 8
        elif "short" in names:
            bits = 16
        elif "long" in names:
            bits = 64
        elif set(names) <= {"int", "signed", "unsigned"}:
            bits = 32
        else:
            unknown = [n for n in words if n not in ("unsigned", "long", "short", "char", "int", "signed")]
            raise UsageError(f"C type {ctx}: unknown type {' '.join(unknown) or spec}")
        return SCALARS[f"{'s' if signed else 'u'}{bits}"]

    def _struct(self, node: Any, ctx: str) -> Struct:
        a = self._ast
        kind = "union" if isinstance(node, a.Union) else "struct"
        if node.decls is None:
            found = self.tagged.get((kind, node.name))
            if found is None:
                raise UsageError(
                    f"C type {ctx}: {kind} {node.name} is not defined in {self.filename} "
                    f"(defined: {', '.join(self.known_types()) or 'nothing'})"
                )
            node = found
        key = (kind, node.name or id(node))
        if key in self._cache:
            made: Struct = self._cache[key]
            return made
        self._cache[key] = None  # a struct that contains itself (not through a pointer) is invalid C
        members = []
        for decl in node.decls:
            if isinstance(decl, a.Decl):
                t_node = decl.type
                member_type = self._type(t_node, f"{ctx}.{decl.name or '(anonymous)'}")
                if member_type is None:
                    raise UsageError(f"C type {ctx}: {kind} {node.name} contains itself")
                bits = self._const(decl.bitsize, ctx) if decl.bitsize is not None else None
                members.append(Member(decl.name or "", member_type, bits))
        attrs = self.attrs.get(node.name or "", {})
        name = node.name if node.name and not node.name.startswith("__bpfmap_anon") else ""
        s = layout_struct(
            name, members, packed=attrs.get("packed", False), union=kind == "union", align=attrs.get("align")
        )
        self._cache[key] = s
        return s

    def _enum_type(self, node: Any, ctx: str = "") -> Enum:
        if node.values is None:
            found = self.tagged.get(("enum", node.name))
            if found is None:
                raise UsageError(f"C type {ctx}: enum {node.name} is not defined in {self.filename}")
            node = found
        key = ("enum", node.name or id(node))
        if key in self._cache:
            enum: Enum = self._cache[key]
            return enum
        values = []
        nxt = 0
        for e in node.values.enumerators:
            v = self._const(e.value, ctx) if e.value is not None else nxt
            values.append((e.name, v))
            self.enum_values[e.name] = v
            nxt = v + 1
        nums = [v for _n, v in values] or [0]
        signed = min(nums) < 0
        size = 8 if max(nums) > 0xFFFFFFFF or min(nums) < -(1 << 31) else 4
        if not signed and max(nums) > 0x7FFFFFFF and size == 4:
            signed = False
        t = Enum(node.name or "", size, signed, tuple(values))
        self._cache[key] = t
        return t

    def _const(self, node: Any, ctx: str) -> int:
        a = self._ast
        if isinstance(node, a.Constant):
            v = node.value.rstrip("uUlL")
            if node.type == "char":
                body = v[1:-1]
                return ord(body.encode().decode("unicode_escape"))
            if re.fullmatch(r"0[0-7]+", v):
                return int(v, 8)
            return int(v, 0)
        if isinstance(node, a.ID):
            if node.name in self.enum_values:
                return self.enum_values[node.name]
            raise UsageError(f"C type {ctx}: unknown constant {node.name} (a macro bpfmap could not expand?)")
        if isinstance(node, a.UnaryOp):
            if node.op == "sizeof":
                return (
                    self._type(node.expr, ctx).size
                    if not isinstance(node.expr, a.Typename)
                    else self._type(node.expr.type, ctx).size
                )
            v = self._const(node.expr, ctx)
            return {"-": -v, "+": v, "~": ~v, "!": int(not v)}[node.op]
        if isinstance(node, a.BinaryOp):
            x, y = self._const(node.left, ctx), self._const(node.right, ctx)
            ops = {
                "+": x + y,
                "-": x - y,
                "*": x * y,
                "<<": x << y if y < 64 else 0,
                ">>": x >> y,
                "|": x | y,
                "&": x & y,
                "^": x ^ y,
            }
            if node.op in ops:
                return ops[node.op]
            if node.op in ("/", "%"):
                if y == 0:
                    raise UsageError(f"C type {ctx}: division by zero in a constant")
                return int(x / y) if node.op == "/" else x - int(x / y) * y
            raise UsageError(f"C type {ctx}: cannot evaluate operator {node.op} in a constant")
        if isinstance(node, a.Cast):
            return self._const(node.expr, ctx)
        if isinstance(node, a.TernaryOp):
            return self._const(node.iftrue if self._const(node.cond, ctx) else node.iffalse, ctx)
        raise UsageError(f"C type {ctx}: cannot evaluate {type(node).__name__} as a constant")


def types_from_header(
    path: str, names: list[str], use_cpp: bool = True, include_dirs: list[str] | None = None
) -> list[Type]:
    """Read ``path`` (with the local headers it includes) and resolve each of ``names``
    (``struct flow_key``, ``__u64``, ``counts_t[4]``)."""
    from ..host.inputs import read_text

    for d in include_dirs or []:
        if not os.path.isdir(d):
            raise UsageError(words(Param("include_dirs"), f" {d}: not a directory"))
    missing: list[str] = []
    text = inline_includes(read_text(path, "C header"), path, list(include_dirs or []), set(), missing=missing)
    try:
        decls = CDecls(text, path, names, use_cpp=use_cpp)
        return [decls.resolve(n) for n in names]
    except UsageError as err:
        if not missing:
            raise
        raise UsageError(
            words(
                f"{err}; includes not found: {', '.join(missing[:5])} (add their directory to ",
                Param("include_dirs"),
                ")",
            )
        ) from None


_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"]+)[>"].*$', re.M)
# Headers never read: vmlinux.h is every kernel type (megabytes; kernel typedefs are predefined)
_NEVER_READ = {"vmlinux.h"}


def inline_includes(
    text: str, path: str, include_dirs: list[str], seen: set[str], depth: int = 0, missing: list[str] | None = None
) -> str:
    """``text`` with each ``#include "file.h"`` found beside ``path`` or in
    ``include_dirs`` (and each ``#include <file.h>`` found in ``include_dirs``) replaced by
    that file, read once; other includes (system headers) stay, and are dropped later.
    Line markers keep error positions in the file they come from."""
    from ..host.inputs import read_text

    if depth > 32:
        raise UsageError(f"C header {path}: includes nested more than 32 deep")
    here = os.path.dirname(os.path.abspath(path))

    def one(m: re.Match[str]) -> str:
        quoted, name = m.group(1) == '"', m.group(2).strip()
        if os.path.basename(name) in _NEVER_READ:
            return ""
        dirs = ([here] if quoted else []) + include_dirs
        for d in dirs:
            candidate = os.path.normpath(os.path.join(d, name))
            if os.path.isfile(candidate):
                if candidate in seen:
                    return ""
                seen.add(candidate)
                body = inline_includes(
                    read_text(candidate, "C header"), candidate, include_dirs, seen, depth + 1, missing
                )
                line = text.count("\n", 0, m.start()) + 2
                return f'# 1 "{candidate}"\n{body}\n# {line} "{path}"'
        if quoted and missing is not None:
            missing.append(name)
        return m.group(0)

    return _INCLUDE.sub(one, text)
