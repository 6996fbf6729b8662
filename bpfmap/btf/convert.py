"""BTF <-> the layout model, and BTF types printed as C declarations."""

from __future__ import annotations

from ..errors import UsageError
from ..layout.model import (
    IPV4,
    IPV6,
    MAC,
    SCALARS,
    Array,
    Bytes,
    Char,
    Enum,
    Field,
    Formatted,
    Pad,
    Scalar,
    Struct,
    Type,
)
from .wire import BTF, INT_BOOL, INT_CHAR, INT_SIGNED, BtfType, Builder, Kind

# Typedef names that carry meaning: byte order, and the formatted types bpfmap writes.
_NAMED = (
    {f"__be{b}": SCALARS[f"be{b}"] for b in (16, 32, 64)}
    | {f"__le{b}": SCALARS[f"le{b}"] for b in (16, 32, 64)}
    | {"bpfmap_ipv4": IPV4, "bpfmap_ipv6": IPV6, "bpfmap_mac": MAC}
)
_CV = (Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG)


def to_model(btf: BTF, tid: int, ctx: str = "") -> Type:
    """The layout model of BTF type ``tid`` (struct offsets as BTF gives them)."""
    return _Reader(btf, ctx or f"BTF type {tid}").read(tid)


class _Reader:
    def __init__(self, btf: BTF, ctx: str) -> None:
        self.btf = btf
        self.ctx = ctx
        self.cache: dict[int, Type] = {}
        self.depth = 0

    def read(self, tid: int) -> Type:
        if tid in self.cache:
            return self.cache[tid]
        self.depth += 1
        if self.depth > 64:
            raise UsageError(f"{self.ctx}: types nested too deep")
        t = self._read(tid)
        self.depth -= 1
        self.cache[tid] = t
        return t

    def _read(self, tid: int) -> Type:
        t = self.btf.type(tid)
        k = t.kind
        if k == Kind.TYPEDEF:
            if t.name in _NAMED:
                return _NAMED[t.name]
            if t.name == "bpfmap_hex":
                return Bytes(self.btf.size_of(t.type))
            return self.read(t.type)
        if k in _CV:
            return self.read(t.type)
        if k == Kind.INT:
            if t.encoding & INT_BOOL and t.size == 1:
                return SCALARS["bool"]
            if t.size in (1, 2, 4, 8, 16):
                signed = bool(t.encoding & INT_SIGNED)
                return SCALARS[f"{'s' if signed else 'u'}{t.size * 8}"]
            return Bytes(t.size)
        if k == Kind.PTR:
            return SCALARS["u64"]
        if k == Kind.FLOAT:
            return SCALARS["f32"] if t.size == 4 else SCALARS["f64"] if t.size == 8 else Bytes(t.size)
        if k in (Kind.ENUM, Kind.ENUM64):
            return Enum(t.name, t.size, t.kind_flag or any(v < 0 for _n, v in t.values), tuple(t.values))
        if k == Kind.ARRAY:
            elem = self.btf.resolve(t.type)
            if elem.kind == Kind.INT and elem.size == 1 and (elem.encoding & INT_CHAR or elem.name == "char"):
                return Char(t.nelems)
            return Array(self.read(t.type), t.nelems)
        if k in (Kind.STRUCT, Kind.UNION):
            return self._struct(t)
        if k == Kind.DATASEC:
            return self._section(t)
        if k == Kind.FWD:
            raise UsageError(f"{self.ctx}: {t.name} is only declared (forward), its layout is unknown")
        raise UsageError(f"{self.ctx}: a {k.name.lower()} ({t.name or 'anonymous'}) is not data")

    def _section(self, t: BtfType) -> Struct:
        """A DATASEC: its variables as fields at their offsets (what lies between them,
        padding and variables BTF does not describe, is skipped)."""
        fields = []
        end = 0
        for m in sorted(t.members, key=lambda m: m.bit_offset):
            var = self.btf.type(m.type)
            if var.kind != Kind.VAR:  # extern functions (.ksyms)
                continue
            offset = m.bit_offset // 8
            vt = self.read(var.type)
            if offset < end or offset + vt.size > t.size:
                raise UsageError(f"{self.ctx}: variable {var.name} of section {t.name} overlaps or runs past its end")
            fields.append(Field(var.name, vt, offset))
            end = offset + vt.size
        return Struct(t.name, tuple(fields), t.size, 1, section=True)

    def _struct(self, t: BtfType) -> Struct:
        fields = []
        align = 1
        for m in t.members:
            mt = self.read(m.type)
            bit_size = m.bit_size
            if not bit_size:  # old-style bitfields: an INT narrower than its size
                r = self.btf.resolve(m.type)
                if r.kind == Kind.INT and r.bits and r.bits != r.size * 8:
                    bit_size = r.bits
            if bit_size or m.bit_offset % 8:
                fields.append(Field(m.name, mt, m.bit_offset // 8, m.bit_offset, bit_size or mt.size * 8))
            else:
                fields.append(Field(m.name, mt, m.bit_offset // 8))
            align = max(align, mt.align)
        return Struct(t.name, tuple(fields), t.size, align, union=t.kind == Kind.UNION)


# -- C declarations ----------------------------------------------------------------------------


def c_declaration(btf: BTF, tid: int) -> str:
    """The C text for type ``tid``: its definition (structs, unions, enums) after those it
    uses by name, or just its name for scalars and typedefs of them."""
    printer = _CPrinter(btf)
    head = printer.definition(tid)
    return "".join(printer.out) + head


class _CPrinter:
    def __init__(self, btf: BTF) -> None:
        self.btf = btf
        self.out: list[str] = []
        self.done: set[int] = set()

    def definition(self, tid: int) -> str:
        t = self.btf.type(tid)
        if t.kind == Kind.DATASEC:  # as the program declares them: SEC(".data") __u64 x;
            lines = []
            for m in sorted(t.members, key=lambda m: m.bit_offset):
                var = self.btf.type(m.type)
                if var.kind == Kind.VAR:
                    self._require(var.type)
                    lines.append(f'SEC("{t.name}") {self.decl(var.type, var.name, 0)};\n')
            return "".join(lines)
        if t.kind in (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64):
            return self._body(t, 0) + ";\n"
        if t.kind == Kind.TYPEDEF:
            self._require(t.type)
            return f"typedef {self.decl(t.type, t.name, 0)};\n"
        return self.decl(tid, "", 0).strip() + "\n"

    def _require(self, tid: int) -> None:
        """Print named structs/unions/enums/typedefs that ``tid`` refers to, once, first."""
        t = self.btf.type(tid)
        if t.kind in _CV or t.kind in (Kind.ARRAY, Kind.PTR):
            if t.kind != Kind.PTR:
                self._require(t.type)
            return
        if t.id in self.done or t.kind in (Kind.INT, Kind.FLOAT) or t.id == 0:
            return
        if t.kind == Kind.TYPEDEF:
            self.done.add(t.id)
            self._require(t.type)
            self.out.append(f"typedef {self.decl(t.type, t.name, 0)};\n\n")
        elif t.kind in (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64) and t.name:
            self.done.add(t.id)
            for m in t.members:
                self._require(m.type)
            self.out.append(self._body(t, 0) + ";\n\n")
        elif t.kind in (Kind.STRUCT, Kind.UNION):
            for m in t.members:
                self._require(m.type)

    def _body(self, t: BtfType, indent: int) -> str:
        pad = "\t" * indent
        if t.kind in (Kind.ENUM, Kind.ENUM64):
            items = "".join(f"{pad}\t{n} = {v},\n" for n, v in t.values)
            return f"enum {t.name + ' ' if t.name else ''}{{\n{items}{pad}}}"
        kw = "union" if t.kind == Kind.UNION else "struct"
        lines = []
        for m in t.members:
            self._require(m.type)
            text = self.decl(m.type, m.name, indent + 1)
            if m.bit_size:
                text += f": {m.bit_size}"
            lines.append(f"{pad}\t{text};\n")
        return f"{kw} {t.name + ' ' if t.name else ''}{{\n{''.join(lines)}{pad}}}"

    def decl(self, tid: int, name: str, indent: int) -> str:
        """``type name`` in C syntax (arrays and pointers around the name)."""
        t = self.btf.type(tid)
        suffix = ""
        prefix = ""
        leading: set[str] = set()  # qualifiers of the base type: written first, as C code has them
        while True:
            if t.kind == Kind.ARRAY:
                suffix += f"[{t.nelems}]"
                t = self.btf.type(t.type)
            elif t.kind == Kind.PTR:
                prefix = "*" + prefix
                t = self.btf.type(t.type)
            elif t.kind in _CV:
                word = {Kind.CONST: "const", Kind.VOLATILE: "volatile"}.get(t.kind)
                if word and prefix:
                    prefix = f"{word} {prefix}"
                elif word:
                    leading.add(word)
                t = self.btf.type(t.type)
            else:
                break
        base = "".join(f"{w} " for w in ("const", "volatile") if w in leading) + self._base_name(t, indent)
        sep = " " if name or prefix else ""
        return f"{base}{sep}{prefix}{name}{suffix}"

    def _base_name(self, t: BtfType, indent: int) -> str:
        if t.id == 0:
            return "void"
        if t.kind in (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64):
            if t.name:
                kw = {Kind.STRUCT: "struct", Kind.UNION: "union"}.get(t.kind, "enum")
                return f"{kw} {t.name}"
            return self._body(t, indent)
        if t.kind == Kind.FWD:
            return f"{'union' if t.kind_flag else 'struct'} {t.name}"
        if t.kind == Kind.FUNC_PROTO:
            return "void /* function */"
        return t.name or "void"


# -- model -> BTF ----------------------------------------------------------------------------

_INT_NAMES = {
    ("uint", 1): "unsigned char",
    ("uint", 2): "unsigned short",
    ("uint", 4): "unsigned int",
    ("uint", 8): "unsigned long long",
    ("int", 1): "signed char",
    ("int", 2): "short",
    ("int", 4): "int",
    ("int", 8): "long long",
    ("uint", 16): "unsigned __int128",
    ("int", 16): "__int128",
}


def add_model(b: Builder, t: Type, name: str = "") -> int:
    """Add model type ``t`` to ``b``; return its type id."""
    if isinstance(t, Scalar):
        if t.kind == "bool":
            return b.int_("_Bool", 1, INT_BOOL)
        if t.kind == "float":
            return b.float_("float" if t.size == 4 else "double", t.size)
        base = b.int_(_INT_NAMES[(t.kind, t.size)], t.size, INT_SIGNED if t.kind == "int" else 0)
        if t.order == ">":
            return b.typedef(f"__be{t.size * 8}", base)
        if t.order == "<":
            return b.typedef(f"__le{t.size * 8}", base)
        return base
    if isinstance(t, Char):
        return b.array(b.int_("char", 1, INT_SIGNED), t.size)
    if isinstance(t, Bytes):
        return b.typedef("bpfmap_hex", b.array(b.int_("unsigned char", 1), t.size))
    if isinstance(t, Formatted):
        if t.name == "ipv4":
            return b.typedef("bpfmap_ipv4", b.typedef("__be32", b.int_("unsigned int", 4)))
        elem = b.int_("unsigned int", 4) if t.name == "ipv6" else b.int_("unsigned char", 1)
        return b.typedef(f"bpfmap_{t.name}", b.array(elem, 4 if t.name == "ipv6" else 6))
    if isinstance(t, Array):
        return b.array(add_model(b, t.elem), t.count)
    if isinstance(t, Enum):
        return b.enum(t.name, t.size, t.signed, list(t.values))
    if isinstance(t, Struct):
        members: list[tuple[str, int, int, int]] = []
        for f in t.fields:
            if isinstance(f.type, Pad):
                continue
            tid = add_model(b, f.type)
            if f.bit_size is not None:
                members.append((f.name, tid, f.bit_offset or 0, f.bit_size))
            else:
                members.append((f.name, tid, f.offset * 8, 0))
        # a section's variables become an anonymous struct's members (BTF names no struct ".data")
        return b.struct("" if t.section else t.name or name, t.size, members, union=t.union)
    if isinstance(t, Pad):
        return b.array(b.int_("unsigned char", 1), t.size)
    raise TypeError(t)


def build_btf(key: Type | None, value: Type | None, key_name: str = "", value_name: str = "") -> tuple[bytes, int, int]:
    """BTF describing a map's key and value: (blob, key type id, value type id); 0 for a missing side."""
    b = Builder()
    kid = add_model(b, key, key_name) if key is not None else 0
    vid = add_model(b, value, value_name) if value is not None else 0
    return b.bytes(), kid, vid
