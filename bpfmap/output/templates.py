"""Templates: a whole batch of decoded values written with one %-format.

For a key or value type made of leaves (a leaf, or a struct of leaves), the template of
one value has a ``%s`` per leaf, and ``flat`` gives a value's items for it, each already
in the text it is written as (layout.leaves.written: strings quoted or escaped, bools
and non-finite floats as text and JSON write them).  Built here from the layout's types,
once per type; codecs hold none."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

from ..layout import HexCodec, IdCodec, TypeCodec
from ..layout.codec import _generate, visible_fields
from ..layout.leaves import JSON, TEXT, written
from ..layout.model import Array, Struct, Type

Flat = Callable[[Any], tuple[Any, ...]]


class Templates(NamedTuple):
    """The %-format of one value in text and in JSON (None: values of this type are
    written one by one), and the functions giving a value's items for each (None: the
    value is the one item, as it is)."""

    text: str | None
    json: str | None
    flat: Flat | None
    json_flat: Flat | None


NONE = Templates(None, None, None, None)
_HEX = Templates("%s", '"%s"', None, None)  # hex digits and spaces need no escaping
_ID = Templates("%s", "%s", None, None)  # a kernel object id: a number


def templates_of(codec: Any) -> Templates:
    """The templates a writer uses for values of ``codec`` (see Templates)."""
    if isinstance(codec, TypeCodec):
        return of_type(codec.type)
    if type(codec) is HexCodec:
        return _HEX
    if type(codec) is IdCodec:
        return _ID
    return NONE


@functools.lru_cache(maxsize=256)
def of_type(t: Type) -> Templates:
    """The templates of values of type ``t``: a leaf, or a struct whose fields are leaves
    (named, no bitfields); NONE for anything else."""
    text = written(t, TEXT)
    if text is not None:
        js = written(t, JSON)
        assert js is not None
        return Templates(text[0], js[0], _one(text[1]), _one(js[1]))
    if not isinstance(t, Struct) or t.union:
        return NONE
    fields = visible_fields(t)
    if not fields or any(f.bit_size is not None or not f.name or isinstance(f.type, (Struct, Array)) for f in fields):
        return NONE
    texts = [written(f.type, TEXT) for f in fields]
    jsons = [written(f.type, JSON) for f in fields]
    if not all(texts) or not all(jsons):
        return NONE
    text_template = ",".join(f"{f.name}={tx[0]}" for f, tx in zip(fields, texts) if tx)
    json_template = "{" + ", ".join(f'"{f.name}": {js[0]}' for f, js in zip(fields, jsons) if js) + "}"
    name = t.c_name()
    flat = _flattener([tx[1] for tx in texts if tx], f"text of {name}") or _values
    json_flat = _flattener([js[1] for js in jsons if js], f"JSON of {name}") or _values
    return Templates(text_template, json_template, flat, json_flat)


def _values(d: Any) -> tuple[Any, ...]:
    return tuple(d.values())


def _one(conv: Callable[[Any], str] | None) -> Flat | None:
    return None if conv is None else (lambda v: (conv(v),))


def _flattener(convs: list[Any], what: str) -> Flat | None:
    """A function struct dict -> the tuple of its values, each through its conversion
    (None: as is); None when no value has one."""
    if not any(convs):
        return None
    names = [f"v{i}" for i in range(len(convs))]
    items = ", ".join(f"c{i}({n})" if c else n for i, (n, c) in enumerate(zip(names, convs)))
    ns = _generate(
        f"def flat(d):\n    {', '.join(names)}, = d.values()\n    return ({items},)\n",
        {f"c{i}": c for i, c in enumerate(convs) if c},
        what,
    )
    flat: Flat = ns["flat"]
    return flat
