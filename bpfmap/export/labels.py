"""Label decoders of the export config that work on a label's text (``as:`` entries
given as a mapping or a list): ``static_map`` (a table from the config, with a
``default``) and ``regexp`` (keep only the series whose label matches it, or with
``drop: true`` drop those that do).  The decoders that name numbers (cgroup, ifname,
majorminor, uid, gid, ksym, errno, syscall, ip...) are display formats
(layout.formats), applied when the map is decoded; these come after them, in order:

    as:
      op: {static_map: {1: read, 2: write}, default: other}
      comm: {regexp: "nginx|envoy"}
      cgroup: [cgroup, {regexp: "/system\\\\.slice/.*", drop: true}]

A regexp means what it means in Prometheus's relabelling (``keep``/``drop``): RE2
syntax, matched against the whole label (``^(?s:PATTERN)$``: ``.`` matches a newline
too), in time linear in the label's length whatever the pattern (google-re2, imported
only when a config has a regexp).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import UsageError
from ..layout import inner_text
from .exposition import label_bytes, stored_text

MAX_TABLE = 65536  # entries a static_map holds at most
MAX_PATTERN = 4096  # characters of a regexp


class Miss(Exception):
    """A value the decoder has no text for (the raw text stays; the exporter counts it)."""


class Drop(Exception):
    """A series a regexp leaves out."""


class StaticMap:
    def __init__(self, table: dict[str, str], default: str | None) -> None:
        self.table, self.default = table, default

    def __call__(self, text: str) -> str:
        out = self.table.get(text, self.default)
        if out is None:
            raise Miss(text)
        return out


class Regexp:
    """Keeps the series whose label ``pattern`` matches whole (with ``drop``, those it
    does not), as Prometheus's relabelling does; the label is matched as Prometheus
    stores it (a byte that was not UTF-8 is the text ``\\xNN``)."""

    def __init__(self, pattern: str, drop: bool) -> None:
        self.pattern, self.drop = pattern, drop
        self.regex = _re2_compile(f"^(?s:{pattern})$")  # Prometheus's relabel.NewRegexp

    def __call__(self, text: str) -> str:
        if (self.regex.search(label_bytes(text)) is not None) == self.drop:
            raise Drop(text)
        return text


def _re2_compile(pattern: str) -> Any:
    """``pattern`` compiled by RE2 (errors raised, not logged to stderr): ValueError
    says why RE2 refuses it."""
    try:
        import re2
    except ImportError:
        raise UsageError(
            "bpfmap export needs google-re2 for a regexp (re2 is missing): pip install 'bpfmap[export]'"
        ) from None
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as err:
        why = err.args[0] if err.args else err
        raise ValueError(why.decode(errors="replace") if isinstance(why, bytes) else str(why)) from None


def label_text(v: Any) -> str:
    """A label value: what text output shows of it (bools true/false, arrays as JSON), as
    Prometheus stores it: a byte that was not UTF-8 (a lone surrogate) as the text
    ``\\xNN``, so that it is one label with the text that spells it (the exposition
    writes both the same) and prometheus-client's OpenMetrics can write it."""
    text = v if type(v) is str else inner_text(v)
    return stored_text(text)


class Chains:
    """A metric's label decoders by label position: ``decoders`` (path -> decoders, from
    the config) for the labels ``paths`` named ``names``; ``error(field, text)`` makes the
    ConfigError for a decoder on a field that is not a label."""

    def __init__(
        self, decoders: dict[str, list[Any]], paths: list[str], names: list[str], error: Callable[[str, str], Exception]
    ) -> None:
        stray = [p for p in decoders if p not in paths]
        if stray:
            raise error(
                "as", f"{stray[0]}: static_map and regexp work on labels; {stray[0]} is not one ({', '.join(paths)})"
            )
        self.chains = [(paths.index(p), decs, names[paths.index(p)]) for p, decs in decoders.items()]

    def apply(self, labels: list[str], miss: Callable[[str], None]) -> tuple[str, ...]:
        """``labels`` decoded (a value a decoder has no name for stays, and ``miss`` hears
        the label's name); Drop when a regexp leaves the series out."""
        for i, decs, name in self.chains:
            for d in decs:
                try:
                    labels[i] = d(labels[i])
                except Miss:
                    miss(name)
        return tuple(labels)


def _scalar_text(v: Any) -> str | None:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (str, int, float)):
        return str(v)
    return None


def parse(spec: Any, error: Callable[..., Exception]) -> tuple[str | None, list[Any]]:
    """An ``as:`` entry -> (its display format or None, its text decoders); ``error(text)``
    makes the ConfigError to raise."""
    items = spec if isinstance(spec, list) else [spec]
    if not items:
        raise error("give a format, a {static_map: ...} or a {regexp: ...}")
    fmt: str | None = None
    decoders: list[Any] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            if i or fmt is not None:
                raise error(f"{item}: a display format comes first, and only one")
            fmt = item
        elif isinstance(item, dict):
            decoders.append(_decoder(item, error))
        else:
            raise error(f"{str(item)[:40]!r}: give a format name or a mapping")
    return fmt, decoders


def _decoder(item: dict[str, Any], error: Callable[..., Exception]) -> Any:
    keys = set(item)
    if "static_map" in keys:
        if not keys <= {"static_map", "default"}:
            raise error(f"static_map takes default, not {', '.join(sorted(keys - {'static_map', 'default'}))}")
        table = item["static_map"]
        if not isinstance(table, dict) or not table:
            raise error(f"static_map: give a mapping of values to names (1 to {MAX_TABLE:,} of them)")
        if len(table) > MAX_TABLE:
            raise error(
                f"static_map: {len(table):,} entries; a static_map holds at most {MAX_TABLE:,} (use default: for the rest)"
            )
        out: dict[str, str] = {}
        for k, v in table.items():
            ks, vs = _scalar_text(k), _scalar_text(v)
            if ks is None or vs is None:
                raise error(f"static_map: {str(k)[:40]!r}: {str(v)[:40]!r}: give a value and its name")
            out[ks] = vs
        default = item.get("default")
        if default is not None and _scalar_text(default) is None:
            raise error("static_map: default: give a name")
        return StaticMap(out, _scalar_text(default) if default is not None else None)
    if "regexp" in keys:
        if not keys <= {"regexp", "drop"}:
            raise error(f"regexp takes drop, not {', '.join(sorted(keys - {'regexp', 'drop'}))}")
        pattern, drop = item["regexp"], item.get("drop", False)
        if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN:
            raise error(f"regexp: give a pattern of at most {MAX_PATTERN} characters")
        if not isinstance(drop, bool):
            raise error("regexp: drop: give true or false")
        try:
            return Regexp(pattern, drop)
        except ValueError as err:
            raise error(
                f"regexp {pattern!r}: {err}; write it in RE2 syntax, as Prometheus does (no backreferences or lookaround)"
            ) from None
    raise error(f"{', '.join(map(str, keys))[:60]}: a decoder is static_map or regexp")
