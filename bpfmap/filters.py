"""``--where`` and ``--older-than``: one filter grammar for every verb that reads, counts or
deletes entries (dump, watch, delete, count, copy) and for event records.

A condition is ``FIELD OP VALUE`` with OP one of ``=`` (or ``==``), ``!=``, ``~``
(contains), ``<``, ``<=``, ``>``, ``>=``; a VALUE in double quotes is the string it spells,
as text output writes strings and update reads them (``comm="a\\xffb"``).  Numbers compare as numbers (``pid>=0x10``, ``ratio<0.5``), the
rest as the text an entry shows (``comm=curl``, ``saddr=10.0.0.1``, ``ok=true``);
``~TEXT`` looks for TEXT in the text the entry shows for the field, under the display
formats in effect (``err~NOENT`` where errno shows ``-ENOENT``, ``uid~root``).  On
entries, FIELD is a field of the key or the value by name (``pid``, ``stats.bytes``,
``hist[2]``); ``key.NAME`` / ``value.NAME`` when a name is in both; ``key`` and ``value``
alone are the whole of a scalar key or value.  Conditions are ANDed.

``--older-than DURATION --time-field FIELD`` keeps the entries whose timestamp (in
nanoseconds of ``--clock``: monotonic for bpf_ktime_get_ns, boottime for
bpf_ktime_get_boot_ns, realtime, tai for bpf_ktime_get_tai_ns) is more than DURATION
before now; "now" is read when a pass over the map begins (:meth:`Where.begin`)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, TypeGuard

from .errors import Param, UsageError, Words, quote, words
from .layout import fields, inner_text
from .layout.leaves import unquote
from .layout.model import Char, Enum, Scalar, Type

OPS = ("<=", ">=", "!=", "=", "<", ">", "~")
_CONDITION = re.compile(r"^\s*([A-Za-z_][\w.\[\]]*)\s*(<=|>=|!=|=|<|>|~)(.*)$", re.S)
GRAMMAR = "FIELD=VALUE, FIELD!=VALUE, FIELD~TEXT, or FIELD<N (also <=, >, >=)"

CLOCKS = {
    "monotonic": time.CLOCK_MONOTONIC,
    "boottime": time.CLOCK_BOOTTIME,
    "realtime": time.CLOCK_REALTIME,
    "tai": getattr(time, "CLOCK_TAI", 11),
}
_UNITS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d)")
DURATIONS = (
    "a number and a unit, lower case: ns, us, ms, s, m (minutes), h, d; parts add up (1h30m); a bare number is seconds"
)


def parse_duration(text: str) -> int:
    """``90s``, ``10m``, ``2h``, ``1h30m``, ``500ms``, ``1.5d`` (a bare number: seconds)
    -> nanoseconds; UsageError for anything else.  Units are case-sensitive (``10M`` is
    not ten minutes: it is refused, as ``M`` could as well mean months or mega)."""
    s = text.strip()
    try:
        total = float(s) * 10**9
    except ValueError:
        total, pos = 0.0, 0
        for m in _DURATION.finditer(s):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if not s or pos != len(s):
            raise UsageError(f"duration {quote(text)}: write it as 90s, 10m, 2h or 1h30m ({DURATIONS})") from None
    if not 0 <= total < float("inf"):  # NaN, infinity (inf, 1e400, 400 nines) and negatives
        raise UsageError(f"duration {quote(text)}: give a finite positive length such as 90s, 10m or 2h")
    return int(total)


def _number(text: str) -> int | float | None:
    s = text.strip().replace("_", "")
    try:
        return int(s, 0)
    except ValueError:
        pass
    try:
        f = float(s)
    except ValueError:
        return None
    return f if f == f else None  # NaN compares with nothing


def _unquoted(text: str) -> str:
    """A VALUE in double quotes as the string it spells, as text output writes strings and
    update reads them (``comm="a b"``, ``comm="a\\xffb"``); other text as it is."""
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] == '"':
        try:
            return unquote(t)
        except ValueError:
            pass
    return text


def _is_number(v: Any) -> TypeGuard[int | float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def shown(v: Any) -> str:
    """The text a decoded field shows in text output (what ``=`` compares with where VALUE
    is no number, and what ``~`` looks in): bools as true/false, arrays and structs as
    compact JSON (layout.inner_text); a string as it is (its quoting aside)."""
    return v if isinstance(v, str) else inner_text(v)


class Condition:
    """``FIELD OP VALUE`` on one decoded object (a value, a record): see the module."""

    __slots__ = ("text", "path", "op", "want", "number", "exact")

    def __init__(self, text: str) -> None:
        m = _CONDITION.match(text)
        if not m:
            raise UsageError(words(Param("where"), f" {quote(text)}: write {GRAMMAR}"))
        self.text, self.path, self.op, self.want = text, m.group(1), m.group(2), m.group(3)
        if self.op == "=" and self.want.startswith("="):  # FIELD==VALUE: C's equality is ours
            self.want = self.want[1:]
        self.want = _unquoted(self.want)
        fields.parts(self.path)
        self.number = _number(self.want)
        self.exact: Any = _MISSING  # VALUE read as what the field holds, when it is not a number
        if self.op in _ORDER and self.number is None:
            raise UsageError(
                words(Param("where"), f" {quote(text)}: {self.op} compares numbers; {quote(self.want)} is not one")
            )

    @property
    def reads_shown(self) -> bool:
        """Whether the test reads the field as the entry shows it (``~``: its text under the
        display formats), not as what the field holds."""
        return self.op == "~"

    def check_fields(self, t: Type, formats: dict[str, str] | None = None) -> None:
        """Raise UsageError when type ``t`` has no such field, or the field's type can never
        pass the test; ``formats``: the display formats of ``t``'s fields (see :meth:`bind`)."""
        ft = fields.member(t, self.path)
        if ft is None:
            raise UsageError(
                words(Param("where"), f" {self.text}: no field {self.path} in {t.c_name()}{fields.listing(t)}")
            )
        self.bind(ft, shown_as(formats, self.path))

    def bind(
        self, t: Type | None, fmt: str | None = None, name: str | None = None, names: Any = None, summed: bool = False
    ) -> None:
        """Check the test against the type ``t`` of the field it reads (None: not known) and
        read VALUE as what the field holds: a number, or, where display format ``fmt``
        shows the field, the shown form (``ENOENT`` for errno, an address for ip).  ``=``,
        ``!=`` and the orders compare what the field holds, whatever it is shown as; ``~``
        looks in the text it shows (:attr:`reads_shown`), so nothing is read here.  UsageError
        for a test the field can never pass (or never fail): an order on what is not a
        number, a number field against a text that is not one, an integer against a number
        it can never equal or pass (past its range, a fraction).  ``summed``: the field is
        compared as a sum over CPUs (per-CPU values), whose range is wider."""
        if t is None or self.op == "~":
            return
        name = name or self.path
        numeric = isinstance(t, Scalar) and t.kind != "bool"
        if self.op in _ORDER and not (numeric or _enum(t)):
            raise UsageError(
                words(
                    Param("where"),
                    f" {self.text}: {name} is {t.c_name()}, which has no order; "
                    f"{self.op} compares number fields (use = or ~ on it)",
                )
            )
        if self.number is not None:
            self._check_range(t, name, summed)
            return
        if isinstance(t, Char):  # a char[N] compares as the text it shows
            return
        if fmt is not None:
            from .layout.formats import stored

            try:
                value = stored(t, fmt, self.want, names)
            except UsageError:
                if numeric:
                    raise UsageError(
                        words(
                            Param("where"),
                            f" {self.text}: {name} holds a number (shown as {fmt}); "
                            f"{quote(self.want)} is neither a number nor a value {fmt} shows",
                        )
                    ) from None
                return  # compared as the text it shows
            if _is_number(value):
                self.number = value
                self._check_range(t, name, summed)
            else:
                self.exact = value
            return
        if numeric:
            raise UsageError(
                words(
                    Param("where"),
                    f" {self.text}: {name} is {t.c_name()}, a number; {quote(self.want)} is not one: give a number",
                )
            )

    def _check_range(self, t: Type, name: str, summed: bool) -> None:
        """UsageError when the integer field ``t`` can never pass ``OP number``: a number
        past its range (a sum over CPUs has no upper bound, nor a lower one when signed), or
        a fraction it should equal."""
        n = self.number
        if n is None or not isinstance(t, Scalar) or t.kind not in ("int", "uint"):
            return
        bits = 8 * t.size
        lo: float = -(1 << (bits - 1)) if t.kind == "int" else 0
        hi: float = (1 << (bits - 1)) - 1 if t.kind == "int" else (1 << bits) - 1
        if summed:
            lo, hi = (float("-inf") if t.kind == "int" else 0), float("inf")
        op = self.op
        never = {
            "=": n < lo or n > hi or (isinstance(n, float) and not n.is_integer()),
            "<": n <= lo,
            "<=": n < lo,
            ">": n >= hi,
            ">=": n > hi,
        }.get(op, False)
        if never:
            held = "summed over CPUs" if summed else f"{int(lo)}..{int(hi)}"
            raise UsageError(
                words(
                    Param("where"),
                    f" {self.text}: {name} is {t.c_name()} (whole numbers, {held}); no entry can pass it",
                )
            )

    def __call__(self, value: Any, shown: Any = None) -> bool:
        """Whether the decoded object ``value`` (what its fields hold) passes; ``shown``:
        the same object as the output shows it (display formats applied), which ``~``
        reads (None: ``value`` is shown as it is)."""
        if shown is not None and self.reads_shown:
            value = shown
        try:
            v = fields.select(value, self.path)
        except UsageError:
            return False  # a short record without the field
        return self.test(v)

    def test(self, v: Any) -> bool:
        """Whether the field's value ``v`` passes."""
        op = self.op
        if op == "~":
            return self.want in shown(v)
        if _is_number(v) and self.number is not None:
            n = self.number
            if op == "=":
                return v == n
            if op == "!=":
                return v != n
            if op == "<":
                return v < n
            if op == "<=":
                return v <= n
            if op == ">":
                return v > n
            return v >= n
        if op in _ORDER:
            return False  # not a number: no order
        same = v == self.exact if self.exact is not _MISSING else shown(v) == self.want
        return same if op == "=" else not same


_ORDER = ("<", "<=", ">", ">=")


def _enum(t: Type) -> bool:
    return isinstance(t, Enum)  # an enum's value shows as its name, but may be one without


def shown_as(formats: dict[str, str] | None, path: str) -> str | None:
    """The display format ``formats`` (field path -> format, as ``--as`` gives them) shows
    field ``path`` in: its own, or its array's for an element."""
    if not formats:
        return None
    for shown_path, fmt in formats.items():
        if path == shown_path or path.startswith(shown_path + "["):
            return fmt
    return None


class Age:
    """``--older-than``: the timestamp field is more than ``ns`` before ``clock``'s now."""

    __slots__ = ("path", "ns", "clock", "limit", "text")

    def __init__(self, duration: str, time_field: str, clock: str = "monotonic") -> None:
        if clock not in CLOCKS:
            raise UsageError(words(Param("clock"), f" {clock}: choose one of {', '.join(CLOCKS)}"))
        fields.parts(time_field)
        self.path, self.ns, self.clock = time_field, parse_duration(duration), clock
        self.text = words(Param("older_than"), f" {duration} ", Param("time_field"), f" {time_field}")
        self.limit = 0

    def bind(self, t: Type | None, name: str | None = None) -> None:
        """UsageError unless the time field's type ``t`` (None: not known) is an integer."""
        if t is not None and not (isinstance(t, Scalar) and t.kind in ("int", "uint")):
            raise UsageError(
                words(
                    Param("time_field"),
                    f" {self.path}: {name or self.path} is {t.c_name()}, not an integer; "
                    f"name the field holding the timestamp in nanoseconds (a u64)",
                )
            )

    def begin(self) -> None:
        self.limit = time.clock_gettime_ns(CLOCKS[self.clock]) - self.ns

    def test(self, v: Any) -> bool:
        return _is_number(v) and v < self.limit


class _Test:
    """One bound test: which side of the entry (0 key, 1 value), the path within it
    (None: the whole side), the test on the field's value, and whether it reads the entry
    as shown (``~``) rather than as held."""

    __slots__ = ("side", "path", "test", "latest", "shown")

    def __init__(
        self, side: int, path: str | None, test: Callable[[Any], bool], latest: bool, shown: bool = False
    ) -> None:
        self.side, self.path, self.test, self.latest, self.shown = side, path, test, latest, shown


class Where:
    """Conditions (``--where`` texts and an optional :class:`Age`) bound to a map's key and
    value types; calling it on a decoded (key, value) says whether the entry passes.

    Fields resolve against the types, so a misspelt field, or a test its field could never
    pass, fails before the map is read.  The types are what the map's fields hold, and
    the entries it is called on are decoded as that; ``~`` tests read the same entry as
    the output shows it (``shown``, see :meth:`__call__`).  Display formats (``formats``, per
    side: field path -> format, as View.show_as takes them) let a VALUE be written in
    the shown form (``err=ENOENT`` for a field shown as errno).  ``names``: where those formats
    get their names (a hostnames.Names; a saved map's are its saving host's).  Per-CPU values (a list of one value per CPU) compare by their sum for numbers, or, for
    an age, by the newest CPU's stamp; reduce them first (--percpu, --cpu) to compare
    otherwise."""

    def __init__(
        self,
        conditions: list[str] | None = None,
        key_type: Type | None = None,
        value_type: Type | None = None,
        age: Age | None = None,
        percpu: bool = False,
        formats: tuple[dict[str, str], dict[str, str]] | None = None,
        names: Any = None,
    ) -> None:
        self.texts = list(conditions or [])
        self.percpu = percpu
        self.age = age
        self._types = (key_type, value_type)
        self._tests: list[_Test] = []
        for text in self.texts:
            c = Condition(text)
            side, path = self._resolve(c.path, words(Param("where"), f" {text}"))
            fmt = shown_as(formats[side], path) if formats and path is not None else None
            c.bind(self._type_of(side, path), fmt, path or ("key", "value")[side], names, self.percpu and side == 1)
            self._tests.append(_Test(side, path, c.test, False, c.reads_shown))
        if age is not None:
            side, path = self._resolve(age.path, words(Param("time_field"), f" {age.path}"))
            age.bind(self._type_of(side, path), path or ("key", "value")[side])
            self._tests.append(_Test(side, path, age.test, True))
        self.begin()

    def _type_of(self, side: int, path: str | None) -> Type | None:
        t = self._types[side]
        return t if path is None else fields.member(t, path)

    def __bool__(self) -> bool:
        return bool(self._tests)

    @property
    def reads_shown(self) -> bool:
        """Whether a test reads the entry as the output shows it (a ``~`` test): then the
        caller passes ``shown`` where display formats make it differ from what is held."""
        return any(t.shown for t in self._tests)

    def describe(self) -> Words:
        """The conditions as a message names them: ``where pid>1`` (the CLI: ``--where pid>1``)."""
        parts = [words(" " if i else "", Param("where"), f" {t}") for i, t in enumerate(self.texts)]
        if self.age is not None:
            parts.append(words(" " if parts else "", self.age.text))
        return words(*parts)

    def begin(self) -> None:
        """Start a pass: an age condition reads the clock now."""
        if self.age is not None:
            self.age.begin()

    def _resolve(self, path: str, what: Words) -> tuple[int, str | None]:
        return fields.side(path, *self._types, what)

    def __call__(self, key: Any, value: Any, shown: tuple[Any, Any] | None = None) -> bool:
        """Whether the entry passes: ``key`` and ``value`` decoded as what their fields hold
        (View.stored_batch), ``shown`` the same entry as the output shows it
        (View.decode_batch: display formats applied), which ``~`` tests read (None: the
        entry is shown as it is held)."""
        entry = (key, value)
        for t in self._tests:
            obj = (shown or entry)[t.side] if t.shown else entry[t.side]
            if t.side == 1 and self.percpu:
                obj = _per_cpu(obj, t.path, t.latest)
            elif t.path is not None:
                obj = _pick(obj, t.path)
            if obj is _MISSING or not t.test(obj):
                return False
        return True

    def columns(self, keys: list[Any], values: list[Any]) -> tuple[list[Any], list[Any]]:
        """The entries of a decoded batch that pass."""
        keep = [i for i, (k, v) in enumerate(zip(keys, values)) if self(k, v)]
        if len(keep) == len(keys):
            return keys, values
        return [keys[i] for i in keep], [values[i] for i in keep]


_MISSING = object()


def _pick(obj: Any, path: str) -> Any:
    try:
        return fields.select(obj, path)
    except UsageError:
        return _MISSING


def _per_cpu(values: list[Any], path: str | None, latest: bool) -> Any:
    """One CPU's worth of a per-CPU value's field: numbers summed (an age: the newest
    stamp), anything else as CPU 0 has it."""
    vals = [o if path is None else _pick(o, path) for o in values]
    if vals and all(_is_number(v) for v in vals):
        return max(vals) if latest else sum(vals)
    return vals[0] if vals else _MISSING
