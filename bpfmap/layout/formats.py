"""Per-field display formats (``--as saddr=ip,daddr=ip,ret=errno``): a field's bytes
shown as what they mean, over any layout (the language, a C header or BTF).

- ``ipv4``, ``ipv6``, ``mac``, ``hex``: the field's bytes read as that (its size must fit:
  4, 16, 6 bytes; hex any); these change the type, so values are written that way too.
- ``ip``: an IPv4 or IPv6 address by the struct's address-family field (``af``,
  ``family``, ``sa_family``, ... : 2 AF_INET, 10 AF_INET6); the address starts the field
  (an IPv4 address in a 16-byte field takes its first 4 bytes).  Without a family field,
  4-byte fields are IPv4, 16-byte ones IPv6.
- ``ksym``: a kernel address as ``symbol+0xoff`` from /proc/kallsyms.
- ``errno``: an error number as its name (``-2`` -> ``-ENOENT``).
- ``syscall``: a system call number as its name, from the kernel headers' unistd table.
- ``cgroup``: a cgroup id (bpf_get_current_cgroup_id) as the cgroup's path under the
  cgroup2 mount; ``ifname``: an interface index as its name; ``majorminor``: a device
  number as the kernel keeps it (major << 20 | minor) as the block device's name,
  ``majorminor_user`` the same for st_dev's encoding; ``uid``/``gid``: user and group names.
  A number with no name (a cgroup gone, an interface deleted) stays the number; the
  codec's ``on_miss`` hears of it (the exporter counts them).

Names, once shown, parse back where they mean one number (errno and syscall names, a
symbol's address, an address for ``ip``)."""

from __future__ import annotations

import errno as errno_mod
import os
import re
from collections.abc import Callable
from typing import Any

from ..errors import Param, UsageError, quote, words
from ..host.hostnames import KINDS, LIVE, Names
from . import DISPLAY_FORMATS, Codec, TypeCodec, _json, _maybe_json, fields, split_top
from .model import IPV4, IPV6, MAC, Array, Bytes, Enum, Field, Scalar, Struct, Type

FAMILY_FIELDS = ("af", "family", "sa_family", "ss_family", "sin_family", "sin6_family", "addr_family", "ip_family")
AF_INET, AF_INET6 = 2, 10


def parse_spec(text: str | list[str] | None) -> dict[str, str]:
    """``saddr=ip,daddr=ip`` (one or more such arguments) -> {"saddr": "ip", ...}."""
    if not text:
        return {}
    items = text if isinstance(text, list) else [text]
    out: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            name, eq, fmt = part.partition("=")
            name, fmt = name.strip(), fmt.strip().lower()
            if not eq or not name:
                raise UsageError(words(Param("as"), f" {quote(part)}: write FIELD=FORMAT, e.g. saddr=ip"))
            if fmt not in DISPLAY_FORMATS:
                raise UsageError(
                    words(
                        Param("as"),
                        f" {quote(part)}: unknown format {quote(fmt)}; formats: {', '.join(DISPLAY_FORMATS)}",
                    )
                )
            out[name] = fmt
    return out


def apply(
    codec: Codec | None, spec: dict[str, str], what: str = "value", names: Names = LIVE
) -> tuple[Codec | None, dict[str, str]]:
    """``codec`` with the formats of ``spec`` whose fields it has applied; returns it and
    the part of ``spec`` it does not have (for the other side).  ``names``: where the
    formats that name the host's objects get their names (a saved map's: its file's)."""
    if not spec or not isinstance(codec, TypeCodec):
        return codec, dict(spec)
    t = codec.type
    mine = {p: f for p, f in spec.items() if fields.has(t, p)}
    if not mine:
        return codec, dict(spec)
    post: list[tuple[list[str], str, int]] = []  # (path, format, field size) done on decoded values
    for path, fmt in mine.items():
        parts = fields.names(path)
        ft = fields.field_type(t, path)
        if fmt in ("ipv4", "ipv6", "mac", "hex"):
            new = {"ipv4": IPV4, "ipv6": IPV6, "mac": MAC}.get(fmt) or Bytes(ft.size)
            if new.size != ft.size:
                raise UsageError(
                    words(Param("as"), f" {path}={fmt}: {path} is {ft.size} bytes ({ft.c_name()}), {fmt} is {new.size}")
                )
            t = _replace(t, parts, new)
        elif fmt == "ip":
            if ft.size < 4:
                raise UsageError(
                    words(
                        Param("as"), f" {path}=ip: {path} is {ft.size} bytes ({ft.c_name()}), too small for an address"
                    )
                )
            family = _family_field(t, parts)
            if family is None and ft.size not in (4, 16):
                raise UsageError(
                    words(
                        Param("as"),
                        f" {path}=ip: no address-family field ({', '.join(FAMILY_FIELDS[:3])}...) beside "
                        f"{parts[-1]}, and {ft.size} bytes is neither IPv4 nor IPv6; use ipv4 or ipv6",
                    )
                )
            t = _replace(t, parts, Bytes(ft.size))
            post.append((parts, "ip", ft.size))
        else:
            elem = ft.elem if isinstance(ft, Array) else ft  # arrays of integers: every element (stack frames)
            if not (isinstance(elem, (Scalar, Enum)) and getattr(elem, "kind", "int") != "float"):
                raise UsageError(
                    words(Param("as"), f" {path}={fmt}: {path} is {ft.c_name()}, not an integer or an array of them")
                )
            post.append((parts, fmt, elem.size))
    inner = TypeCodec(t)
    rest = {p: f for p, f in spec.items() if p not in mine}
    if not post:
        return inner, rest
    return FormattedCodec(inner, post, names), rest


def _replace(t: Type, parts: list[str], new: Type) -> Type:
    assert isinstance(t, Struct)
    members = []
    for f in t.fields:
        if f.name == parts[0]:
            inner = new if len(parts) == 1 else _replace(f.type, parts[1:], new)
            f = Field(f.name, inner, f.offset, f.bit_offset, f.bit_size)
        members.append(f)
    return Struct(t.name, tuple(members), t.size, t.align, t.union, t.packed, t.section)


def _family_field(t: Type, parts: list[str]) -> str | None:
    parent = fields.field_type(t, ".".join(parts[:-1])) if len(parts) > 1 else t
    assert isinstance(parent, Struct)
    names = [f.name for f in parent.fields if f.name]
    for n in FAMILY_FIELDS:
        if n in names:
            return n
    return next((n for n in names if n.endswith("family")), None)


class FormattedCodec(Codec):
    """A TypeCodec whose decoded values get some fields shown as addresses or names."""

    def __init__(self, inner: TypeCodec, post: list[tuple[list[str], str, int]], names: Names = LIVE) -> None:
        self.inner, self.size, self.type, self.names = inner, inner.size, inner.type, names
        self.on_miss: Callable[[str, str, Any], None] | None = None  # (path, format, raw value)
        self._post = [(parts, fmt, _SHOW[fmt](size, names), _PARSE[fmt](size, names)) for parts, fmt, size in post]
        self._family = {tuple(p): _family_field(inner.type, p) for p, fmt, _s in post if fmt == "ip"}

    @property
    def fields(self) -> list[str]:
        return self.inner.fields

    def describe(self) -> str:
        return self.inner.describe()

    def check_size(self, size: int, what: str) -> None:
        self.inner.check_size(size, what)

    def _show(self, value: Any) -> Any:
        for parts, fmt, show, _parse in self._post:
            parent = value
            for name in parts[:-1]:
                parent = parent.get(name) if isinstance(parent, dict) else None
            if not isinstance(parent, dict) or parts[-1] not in parent:
                continue
            if fmt == "ip":
                fam = self._family.get(tuple(parts))
                parent[parts[-1]] = show(parent[parts[-1]], parent.get(fam) if fam else None)
            else:
                v = parent[parts[-1]]
                path = ".".join(parts)
                parent[parts[-1]] = (
                    [self._one(show, x, path, fmt) for x in v] if isinstance(v, list) else self._one(show, v, path, fmt)
                )
        return value

    def _one(self, show: Callable[[Any], Any], v: Any, path: str, fmt: str) -> Any:
        """One integer as ``fmt`` shows it (an array's elements each on its own: a name
        where it has one, the number where not, as output.rows writes them)."""
        try:
            return show(v)
        except _Miss:
            if self.on_miss is not None:
                self.on_miss(path, fmt, v)
            return v

    def decode(self, data: bytes) -> Any:
        return self._show(self.inner.decode(data))

    def decode_many(self, buf: bytes, count: int) -> list[Any]:
        return [self._show(v) for v in self.inner.decode_many(buf, count)]

    def _unshow(self, value: Any) -> Any:
        if isinstance(value, str):
            value = _json(value) if value.strip().startswith("{") else value
        if not isinstance(value, dict):
            return value
        value = _deep_copy(value)
        for parts, _fmt, _show, parse in self._post:
            parent = value
            for name in parts[:-1]:
                parent = parent.get(name) if isinstance(parent, dict) else None
            if isinstance(parent, dict) and parts[-1] in parent:
                v = parent[parts[-1]]
                parent[parts[-1]] = [parse(x) for x in v] if isinstance(v, list) else parse(v)
        return value

    def encode(self, value: Any) -> bytes:
        return self.inner.encode(self._unshow(value))

    def parse(self, text: str) -> bytes:
        s = text.strip()
        if s.startswith("{"):
            return self.encode(s)

        pairs = [p.partition("=") for p in split_top(s)]
        if pairs and all(eq for _k, eq, _v in pairs):
            return self.encode({k.strip(): _maybe_json(v.strip()) for k, _eq, v in pairs})
        return self.inner.parse(text)


def _deep_copy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _deep_copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_deep_copy(x) for x in v]
    return v


# -- the formats ------------------------------------------------------------------------------


def _show_ip(size: int, names: Names) -> Callable[..., Any]:
    def show(hexed: Any, family: Any = None) -> Any:
        if not isinstance(hexed, str):
            return hexed
        return ip_text(bytes.fromhex(hexed), family, size)

    return show


def ip_text(raw: bytes, family: Any, size: int) -> str:
    """``ip``'s text of a ``size``-byte field's bytes: by the family field's value (a
    number, or an enum's name AF_INET/AF_INET6), else by the size (4: IPv4, other:
    IPv6); the bytes as hex for another family (AF_UNIX, ...)."""
    import socket  # here: socket takes longer to import than a lookup takes to run

    kind = ip_kind(family, size)
    if kind == 4:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    if kind == 6:
        return socket.inet_ntop(socket.AF_INET6, raw[:16])
    return raw.hex(" ")  # another family (AF_UNIX...): the bytes


def ip_kind(family: Any, size: int) -> int:
    """How ``ip`` shows a ``size``-byte field beside a family field holding ``family``
    (None: no family field): 4 (IPv4, the first 4 bytes), 6 (IPv6, 16 bytes), or 0 (the
    bytes as hex)."""
    fam = {"AF_INET": AF_INET, "AF_INET6": AF_INET6}.get(family, family) if family is not None else None
    if fam is None:
        fam = AF_INET if size == 4 else AF_INET6
    if fam == AF_INET:
        return 4
    return 6 if fam == AF_INET6 and size >= 16 else 0


def _parse_ip(size: int, names: Names) -> Callable[[Any], Any]:
    def parse(v: Any) -> Any:
        if not isinstance(v, str) or " " in v.strip():
            return v
        import ipaddress

        try:
            packed = ipaddress.ip_address(v.strip()).packed
        except ValueError:
            return v
        return packed.ljust(size, b"\0")[:size].hex(" ") if len(packed) <= size else v

    return parse


def _show_ksym(size: int, names: Names) -> Callable[[Any], Any]:
    def show(v: Any) -> Any:
        if not isinstance(v, int) or v <= 0:
            return v
        f = names.kernel().frame(v)
        if f["offset"] is None:
            return v
        return f["symbol"] if not f["offset"] else f"{f['symbol']}+{f['offset']:#x}"

    return show


def _parse_ksym(size: int, names: Names) -> Callable[[Any], Any]:
    def parse(v: Any) -> Any:
        if not isinstance(v, str) or re.fullmatch(r"\s*-?(0x[0-9a-fA-F]+|\d+)\s*", v):
            return v
        name, _plus, off = v.strip().partition("+")
        addr = names.kernel().address(name)
        if addr is None:
            where = "the saved file's kernel symbols" if names.saved else "/proc/kallsyms"
            raise UsageError(f"{quote(v)}: no kernel symbol {name} in {where}")
        return addr + (int(off, 0) if off else 0)

    return parse


def _show_errno(size: int, names: Names) -> Callable[[Any], Any]:
    def show(v: Any) -> Any:
        if not isinstance(v, int) or not v or abs(v) not in errno_mod.errorcode:
            return v
        return ("-" if v < 0 else "") + errno_mod.errorcode[abs(v)]

    return show


def _parse_errno(size: int, names: Names) -> Callable[[Any], Any]:
    def parse(v: Any) -> Any:
        if isinstance(v, str):
            s = v.strip()
            neg, name = (True, s[1:]) if s.startswith("-") else (False, s)
            code = getattr(errno_mod, name, None) if name.isupper() else None
            if isinstance(code, int):
                return -code if neg else code
        return v

    return parse


_SYSCALLS: dict[int, str] | None = None


def syscall_names() -> dict[int, str]:
    """Number -> name, from the kernel headers (linux-libc-dev's asm/unistd_64.h or
    unistd_32.h for this machine); empty when they are not installed."""
    global _SYSCALLS
    if _SYSCALLS is None:
        _SYSCALLS = {}
        machine = os.uname().machine
        bits = "64" if machine.endswith("64") or machine == "s390x" else "32"
        for path in (
            f"/usr/include/{machine}-linux-gnu/asm/unistd_{bits}.h",
            f"/usr/include/asm/unistd_{bits}.h",
            f"/usr/include/{machine}-linux-gnu/asm/unistd.h",
            "/usr/include/asm-generic/unistd.h",
        ):
            try:
                with open(path) as f:
                    text = f.read()
            except OSError:
                continue
            for m in re.finditer(r"^#define\s+__NR3?2?_(\w+)\s+(\d+)\s*$", text, re.M):
                _SYSCALLS.setdefault(int(m.group(2)), m.group(1))
            if _SYSCALLS:
                break
    return _SYSCALLS


def _show_syscall(size: int, names: Names) -> Callable[[Any], Any]:
    def show(v: Any) -> Any:
        return syscall_names().get(v, v) if isinstance(v, int) else v

    return show


def _parse_syscall(size: int, names: Names) -> Callable[[Any], Any]:
    def parse(v: Any) -> Any:
        if isinstance(v, str) and not v.strip().lstrip("-").isdigit():
            by_name = {n: i for i, n in syscall_names().items()}
            if v.strip() in by_name:
                return by_name[v.strip()]
        return v

    return parse


class _Miss(Exception):
    """A number with no name (the caller keeps the number)."""


def _named(kind: str) -> Callable[[int, Names], Callable[[Any], Any]]:
    """A format that shows a number as the name the host (``names``) gives it."""

    def make(size: int, names: Names) -> Callable[[Any], Any]:
        def show(v: Any) -> Any:
            if not isinstance(v, int) or isinstance(v, bool):
                return v
            try:
                return names.name(kind, v)
            except (LookupError, OSError, ValueError, OverflowError):
                raise _Miss(v) from None

        return show

    return make


def _unnamed(kind: str) -> Callable[[int, Names], Callable[[Any], Any]]:
    def make(size: int, names: Names) -> Callable[[Any], Any]:
        def parse(v: Any) -> Any:
            if isinstance(v, str) and not re.fullmatch(r"\s*-?(0x[0-9a-fA-F]+|\d+)\s*", v):
                try:
                    return names.number(kind, v.strip())
                except (LookupError, OSError, ValueError) as err:
                    raise UsageError(f"{quote(v)}: no such name ({err})") from None
            return v

        return parse

    return make


_SHOW: dict[str, Callable[[int, Names], Callable[..., Any]]] = {
    "ip": _show_ip,
    "ksym": _show_ksym,
    "errno": _show_errno,
    "syscall": _show_syscall,
    **{kind: _named(kind) for kind in KINDS},
}
_PARSE: dict[str, Callable[[int, Names], Callable[[Any], Any]]] = {
    "ip": _parse_ip,
    "ksym": _parse_ksym,
    "errno": _parse_errno,
    "syscall": _parse_syscall,
    **{kind: _unnamed(kind) for kind in KINDS},
}


def stored(t: Type, fmt: str, text: str, names: Names | None = None) -> Any:
    """What a field of type ``t`` holds when format ``fmt`` shows it as ``text`` (``ENOENT``
    -> 2 for errno, ``10.0.0.1`` -> the address's bytes as ``t`` decodes them): the value
    ``TypeCodec(t)`` decodes, so a filter written in the shown form compares what the field
    holds.  UsageError when ``fmt`` shows no value of ``t`` as ``text``."""
    holder = Struct("", (Field("v", t, 0),), t.size, t.align)
    codec, _rest = apply(TypeCodec(holder), {"v": fmt}, names=names or LIVE)
    assert codec is not None
    try:
        raw = codec.encode({"v": _maybe_json(text.strip())})
    except (UsageError, ValueError, TypeError):
        raise UsageError(f"{quote(text)} is not a value {fmt} shows") from None
    return TypeCodec(t).decode(raw)


def shown_leaf(fmt: str, size: int, names: Names = LIVE) -> Callable[[Any], Any] | None:
    """What display format ``fmt`` makes of one integer of ``size`` bytes (the number
    itself when it has no name), for writers that work on raw items (output.rows); None
    for ``ip``, which needs its struct's family field."""
    make = _SHOW.get(fmt)
    if make is None or fmt == "ip":
        return None
    show = make(size, names)

    def one(v: Any) -> Any:
        try:
            return show(v)
        except _Miss:
            return v

    return one


def missed(fmt: str, size: int, names: Names = LIVE) -> Callable[[Any], bool]:
    """Whether display format ``fmt`` has no name for an integer of ``size`` bytes (what a
    FormattedCodec's ``on_miss`` hears of), for writers that work on raw items."""
    show = _SHOW[fmt](size, names)

    def miss(v: Any) -> bool:
        try:
            show(v)
        except _Miss:
            return True
        return False

    return miss


def shown_fields(codec: Any) -> list[tuple[list[str], str, str | None]]:
    """(field path, format, the family field beside it for ``ip``) of each field a
    FormattedCodec shows, in the order it shows them."""
    return [(list(parts), fmt, codec._family.get(tuple(parts))) for parts, fmt, _show, _parse in codec._post]


__all__ = [
    "DISPLAY_FORMATS",
    "FormattedCodec",
    "apply",
    "ip_kind",
    "ip_text",
    "missed",
    "parse_spec",
    "shown_fields",
    "shown_leaf",
    "stored",
    "syscall_names",
]
