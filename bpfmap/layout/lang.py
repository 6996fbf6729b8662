"""The layout language: ``KEY:VALUE``, each side ``[packed] field, field, ...``.

    field   := [name '='] type dims*
    type    := scalar | char | hex | bytes | ipv4 | ipv6 | mac | pad | '_' | '{' fields '}'
    dims    := '[' N ']'      (the first is the size for char/hex/bytes/pad/_,
                               every other one makes an array)

Scalars: u8..u128, s8..s128 (i8..i128), be16..be64, le16..le64, f32, f64, bool.
"""

from __future__ import annotations

import re

from ..errors import UsageError, quote
from .model import IPV4, IPV6, MAC, SCALARS, Array, Bytes, Char, Member, Pad, Struct, Type, layout_struct

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+)|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[{}\[\],=])|(?P<bad>\S))")
_SIZED = {"char": Char, "hex": Bytes, "bytes": Bytes, "pad": Pad, "_": Pad}
_FORMATTED = {"ipv4": IPV4, "ipv6": IPV6, "mac": MAC}
MAX_DEPTH = 32
MAX_SIZE = 1 << 20  # no BPF key or value comes near this; stops '[99999999999]' from eating memory


def type_names() -> list[str]:
    """Every type name the language knows, as written (sized ones with ``[N]``): for
    shell completion and error messages."""
    sized = [f"{n}[" for n in _SIZED if n != "_"]
    return sorted(set(SCALARS) | set(_FORMATTED) | set(sized))


class _Parser:
    def __init__(self, text: str, packed: bool) -> None:
        self.text = text
        self.packed = packed
        self.tokens: list[tuple[str, str, int]] = []
        for m in _TOKEN.finditer(text):
            kind = m.lastgroup or "bad"
            if kind == "bad":
                raise self.error(f"unexpected {m.group(kind)!r}", m.start(kind))
            self.tokens.append((kind, m.group(kind), m.start(kind)))
        self.i = 0
        self.depth = 0

    def error(self, msg: str, pos: int | None = None) -> UsageError:
        if pos is None:
            pos = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)

        text = self.text.strip()
        return UsageError(
            f"layout {quote(text, at=pos - (len(self.text) - len(self.text.lstrip())))}: {msg} at column {pos + 1}"
        )

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None, kind: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        want = repr(value) if value else {"id": "a type or field name", "num": "a number"}[kind or "id"]
        if tok is None:
            raise self.error(f"expected {want}, found the end")
        if (value is not None and tok[1] != value) or (kind is not None and tok[0] != kind):
            raise self.error(f"expected {want}, found {tok[1]!r}")
        self.i += 1
        return tok

    def fields(self, closing: str | None) -> Struct:
        members: list[Member] = []
        names: set[str] = set()
        visible = 0
        while True:
            name = None
            tok = self.peek()
            nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            if tok and tok[0] == "id" and nxt and nxt[1] == "=":
                name = tok[1]
                self.i += 2
            t = self.type_expr()
            if not isinstance(t, Pad):
                if name is None:
                    name = f"f{visible}"
                if name in names:
                    raise self.error(f"field name {name!r} used twice")
                names.add(name)
                visible += 1
            members.append(Member(name or "", t))
            tok = self.peek()
            if tok is None or tok[1] == closing:
                break
            self.take(",")
        return layout_struct("", members, packed=self.packed)

    def type_expr(self) -> Type:
        tok = self.peek()
        if tok is None:
            raise self.error("expected a type, found the end")
        if tok[1] == "{":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error(f"structs nested more than {MAX_DEPTH} deep")
            self.i += 1
            t: Type = self.fields("}")
            self.depth -= 1
            self.take("}")
        else:
            kind, word, pos = self.take(kind="id")
            low = word.lower()
            if low in _SIZED:
                size = self.dim() if self._at("[") else (1 if low in ("_", "pad") else None)
                if size is None:
                    raise self.error(f"{low} needs a size: {low}[N]", pos)
                t = _SIZED[low](size)
            elif low in _FORMATTED:
                t = _FORMATTED[low]
            elif low in SCALARS:
                t = SCALARS[low]
            else:
                known = ", ".join(sorted(set(SCALARS) | set(_SIZED) | set(_FORMATTED)))
                raise self.error(f"unknown type {word!r} (known: {known})", pos)
        counts = []
        while self._at("["):
            counts.append(self.dim())
        for count in reversed(counts):
            t = Array(t, count)
        if t.size > MAX_SIZE:
            raise self.error(f"type is {t.size} bytes, more than any BPF map holds")
        return t

    def _at(self, value: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[1] == value

    def dim(self) -> int:
        self.take("[")
        _k, num, pos = self.take(kind="num")
        self.take("]")
        n = int(num)
        if not 0 < n <= MAX_SIZE:
            raise self.error(f"size {n} out of range 1..{MAX_SIZE}", pos)
        return n


def parse_side(text: str, packed: bool = False) -> Type | None:
    """Parse one side; None for '-' or empty.  One unnamed field is returned bare."""
    s = text.strip()
    if s.startswith("packed ") or s == "packed":
        packed, s = True, s[len("packed") :].strip()
    if s in ("", "-"):
        return None
    p = _Parser(s, packed)
    struct = p.fields(None)
    extra = p.peek()
    if extra is not None:
        raise p.error(f"unexpected {extra[1]!r}")
    visible = [f for f in struct.fields if not isinstance(f.type, Pad)]
    if len(struct.fields) == 1 and len(visible) == 1 and not _explicit_name(s):
        return visible[0].type
    return struct


def _explicit_name(s: str) -> bool:
    return bool(re.match(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*=", s))


def split_layout(text: str) -> tuple[str, str | None]:
    """Split ``KEY:VALUE`` at the top-level colon; (text, None) when there is none."""
    depth = 0
    for i, ch in enumerate(text):
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        elif ch == ":" and depth == 0:
            return text[:i], text[i + 1 :]
    return text, None


def read_layout_file(ref: str) -> str:
    """``@FILE`` or ``@FILE#NAME``: a layout read from a file.

    A file holds one layout, or several under ``[name]`` headers; lines are joined,
    so a long layout can span lines; ``#`` starts a comment::

        [flows]
        saddr=ipv4, daddr=ipv4, sport=be16, dport=be16, proto=u8
          : packets=u64, bytes=u64
        [counters]
        u32 : u64
    """
    from ..host.inputs import read_text

    path, _, name = ref[1:].partition("#")
    lines = read_text(path, "layout file").splitlines()
    sections: dict[str, list[str]] = {}
    current = ""
    for line in lines:
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        header = re.fullmatch(r"\[\s*([A-Za-z0-9_\-]+)\s*\]", body)
        if header:
            current = header.group(1)
            if current in sections:
                raise UsageError(f"layout file {path}: [{current}] appears twice")
            sections[current] = []
            continue
        sections.setdefault(current, []).append(body)
    layouts = {k: " ".join(v) for k, v in sections.items() if v}
    if name:
        if name not in layouts:
            raise UsageError(
                f"layout file {path}: no layout named {name!r} (has: {', '.join(k for k in layouts if k) or 'none'})"
            )
        return layouts[name]
    if len(layouts) == 1:
        return next(iter(layouts.values()))
    if not layouts:
        raise UsageError(f"layout file {path}: no layout in it")
    raise UsageError(
        f"layout file {path}: holds {len(layouts)} layouts; pick one with @{path}#NAME "
        f"({', '.join(k for k in layouts if k)})"
    )
