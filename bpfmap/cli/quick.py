"""The quick path of the one-entry verbs: ``lookup MAP KEY``, ``update MAP KEY VALUE``,
``delete MAP KEY`` and ``count MAP`` of a hash, array or LRU hash map, and ``push MAP
VALUE`` and ``pop MAP`` of a queue or stack, whose ``--layout`` gives each side one
integer type (u8..u64, s8..s64), written as text or JSON.  Scripts call these once per
entry, and start-up is most of their time: this path runs them on bpf(2) alone (no
layout language, no View, and none of enum, re, typing or collections, which the rest of
bpfmap imports), so a lookup costs little more than Python's own start.

It answers only for what it knows whole.  Any other word, option, map type, size or
number form, and any error from the kernel, hands the command line to the full path
(:func:`bpfmap.cli.main` runs it) before anything is written: a kernel call that fails
changes nothing, and the full path then runs the command and says what is wrong in its
own words, with its own exit code.  What it prints is what the full path prints for the
same line (tests/kernel/test_quick.py runs both on the same lines and maps)."""

from __future__ import annotations

import os
import sys

from .. import _sys
from ..errors import EXIT_NOT_FOUND, EXIT_OK
from .wording import StdoutClosed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# The map types the quick path serves (bpfmap.types.MapType's numbers: a test checks them).
HASH, ARRAY, LRU_HASH, QUEUE, STACK = 1, 2, 9, 22, 23
KEYED = (HASH, ARRAY, LRU_HASH)
KEYLESS = (QUEUE, STACK)

# The integer types of the layout language (layout/model.SCALARS: a test checks them): size, signed.
INTEGERS = {f"{sign}{bits}": (bits // 8, sign == "s") for sign in "us" for bits in (8, 16, 32, 64)}

# verb -> (positional arguments, the map types it serves, reads only, prints a value: takes --output)
VERBS = {
    "lookup": (2, KEYED, True, True),
    "update": (3, KEYED, False, False),
    "delete": (2, (HASH, LRU_HASH), False, False),
    "count": (1, KEYED, True, False),
    "push": (2, KEYLESS, False, False),
    "pop": (1, KEYLESS, False, True),
}
# The options it reads (cli/options.py's LAYOUT, OUTPUT and output formats: a test checks them)
LAYOUT_NAMES = ("--layout", "-l")
OUTPUT_NAMES = ("--output", "-o")
OUTPUTS = ("text", "json", "jsonl", "table", "csv")  # table and csv: a single value is text
JSON_OUTPUTS = ("json", "jsonl")


def attempt(verb: str, words: list[str]) -> tuple[Callable[[], int], bool] | None:
    """The command ``verb words...`` run against the kernel: a function that writes its
    answer and returns the exit code, and whether the line asked for JSON (its errors are
    JSON then); None when the full path must run the command line (then nothing has been
    done)."""
    parsed = _parse(verb, words)
    if parsed is None:
        return None
    positional, layout, output = parsed
    _count, types, reads, _prints = VERBS[verb]
    ref = positional[0]
    if not ref or any(c in ref for c in ":*?[\0") or ref.endswith("/"):
        return None  # id:N, name:NAME, a saved FILE:NAME, a glob, a directory, a NUL: the full path's
    try:
        fd = _sys.obj_get(ref, _sys.BPF_F_RDONLY if reads else 0)
    except OSError:  # no such pin, not a bpffs, not allowed: said by the full path
        return None
    try:
        if _sys.fd_kind(fd) != "map":
            return None
        info = _sys.map_info(fd)
        if info.type not in types:
            return None
        sides = _sides(layout, info.type in KEYLESS, verb == "count")
        if sides is None:
            return None
        key_type, value_type = sides
        if layout is None:  # count MAP: without a layout the full path's view would be its BTF's
            if info.btf_id:
                return None
        elif info.key_size != (key_type[0] if key_type is not None else 0) or info.value_size != value_type[0]:
            return None
        write = _run(verb, fd, info, ref, positional[1:], key_type, value_type, output)
        if write is None:
            return None
        if verb == "pop":
            fd = -1  # the writer's now: an element whose output fails goes back through it
        return write, output in JSON_OUTPUTS
    except (OSError, MemoryError, ValueError):  # the kernel's refusal, or anything unforeseen before it
        return None
    finally:
        if fd >= 0:
            os.close(fd)


def _parse(verb: str, words: list[str]) -> tuple[list[str], str | None, str] | None:
    """(positional arguments, --layout, --output) of a plain line, or None."""
    positional: list[str] = []
    layout = output = None
    i, n = 0, len(words)
    while i < n:
        w = words[i]
        i += 1
        if w[:1] != "-" or _integer(w) is not None:
            positional.append(w)
            continue
        name, eq, text = w.partition("=") if w.startswith("--") else (w, "", "")
        if name not in LAYOUT_NAMES and name not in OUTPUT_NAMES:
            return None  # another option, '--', a number in another form: the full path's
        if not eq:
            if i == n:
                return None
            text, i = words[i], i + 1
        if name in LAYOUT_NAMES:
            if layout is not None:
                return None
            layout = text
        else:
            if output is not None or text not in OUTPUTS:
                return None
            output = text
    count, _types, _reads, prints = VERBS[verb]
    if len(positional) != count or (layout is None and verb != "count") or (output is not None and not prints):
        return None
    return positional, layout, output or "text"


def _sides(
    layout: str | None, keyless: bool, optional: bool
) -> tuple[tuple[int, bool] | None, tuple[int, bool]] | None:
    """The (size, signed) of the key and the value a --layout gives (None for the key of a
    queue or stack, and for count's key without a layout, whose value is then (0, False)),
    or None for any other layout."""
    if layout is None:
        return (None, (0, False)) if optional else None
    if keyless:
        bare = INTEGERS.get(layout)
        return (None, bare) if bare is not None else None
    key, colon, value = layout.partition(":")
    if not colon or key not in INTEGERS or value not in INTEGERS:
        return None
    return INTEGERS[key], INTEGERS[value]


def _integer(text: str) -> int | None:
    """A decimal integer as the layout's number rule reads it (int(text, 0)), in the one
    form every reader agrees on: digits, a leading '-', no leading zero; else None."""
    digits = text[1:] if text[:1] == "-" else text
    if not (digits.isascii() and digits.isdigit()) or (digits[0] == "0" and len(digits) > 1) or len(digits) > 40:
        return None
    return int(text)


def _encoded(text: str, side: tuple[int, bool]) -> bytes | None:
    """``text`` as a key or value of ``side``'s integer type, in the host's byte order, or
    None (another form, or out of range: the full path says which)."""
    n = _integer(text)
    if n is None:
        return None
    size, signed = side
    try:
        return n.to_bytes(size, sys.byteorder, signed=signed)
    except OverflowError:
        return None


def _run(
    verb: str,
    fd: int,
    info: _sys.attrs.BpfMapInfo,
    ref: str,
    args: list[str],
    key_type: tuple[int, bool] | None,
    value_type: tuple[int, bool],
    output: str,
) -> Callable[[], int] | None:
    """The kernel call of the verb (OSError from it: the caller hands over), and the writer
    of its answer; None when an argument is not in the quick path's form."""
    if verb == "count":
        if info.type == ARRAY:
            n = info.max_entries
        elif not _sys.batches_enabled():
            return None  # the full path walks the keys, as asked
        else:
            batch = _sys.batch_elements(info.key_size + info.value_size)  # about 1 MiB, as every batch read
            n = _sys.map_count(fd, info.key_size, info.value_size, batch)
        return _writer(f"{n}\n", EXIT_OK if n else EXIT_NOT_FOUND)
    key = None
    if key_type is not None:
        key = _encoded(args.pop(0), key_type)
        if key is None:
            return None
    value_size, signed = value_type
    if verb in ("update", "push"):
        value = _encoded(args[0], value_type)
        if value is None:
            return None
        _sys.map_elem(
            _sys.Cmd.MAP_UPDATE_ELEM,
            fd,
            _sys.buffer(key) if key is not None else None,
            _sys.buffer(value),
            _sys.BPF_ANY,
        )
        return _writer("", EXIT_OK)
    if verb == "delete":
        _sys.map_elem(_sys.Cmd.MAP_DELETE_ELEM, fd, _sys.buffer(key) if key is not None else None, None)
        return _writer("", EXIT_OK)
    vbuf = _sys.buffer(value_size)
    if key is not None:  # lookup
        _sys.map_elem(_sys.Cmd.MAP_LOOKUP_ELEM, fd, _sys.buffer(key), vbuf)
    else:  # pop
        _sys.map_elem(_sys.Cmd.MAP_LOOKUP_AND_DELETE_ELEM, fd, None, vbuf)
    raw = vbuf.raw[:value_size]
    text = _shown(key, key_type, int.from_bytes(raw, sys.byteorder, signed=signed), output)
    if verb == "pop":
        return _popped(fd, ref, text, raw)
    return _writer(text, EXIT_OK)


def _shown(key: bytes | None, key_type: tuple[int, bool] | None, value: int, output: str) -> str:
    """A looked-up or popped value as the full path writes it (output/entries.write_value):
    the number alone as text; as JSON, an object of the key (decoded from its bytes) and
    the value, indented with json, on one line with jsonl."""
    if output not in JSON_OUTPUTS:
        return f"{value}\n"
    items = [f'"value": {value}']
    if key is not None and key_type is not None:
        items.insert(0, f'"key": {int.from_bytes(key, sys.byteorder, signed=key_type[1])}')
    if output == "jsonl":
        return "{" + ", ".join(items) + "}\n"
    return "{\n  " + ",\n  ".join(items) + "\n}\n"


def _writer(text: str, code: int) -> Callable[[], int]:
    def write() -> int:
        if text:
            sys.stdout.write(text)
        return code

    return write


def _popped(fd: int, ref: str, text: str, raw: bytes) -> Callable[[], int]:
    """The writer of an element popped from the map open at ``fd`` (which it closes): when
    the output fails, the element goes back into that map, through that fd (whatever is
    pinned at ``ref`` by then), as the full path's pop does it (cli/verbs.undelivered)."""

    def write() -> int:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except (OSError, StdoutClosed) as err:
            from ..core.maps import Map
            from .verbs import pushed_back, undelivered

            with Map(os.dup(fd), ref) as m:
                undelivered(f"pop {ref}", err, lambda out: out.write(text), lambda: pushed_back(m, raw))
        finally:
            os.close(fd)
        return EXIT_OK

    return write
