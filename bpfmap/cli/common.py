"""Options and helpers shared by the verbs: parse at the edge, open maps, pick formats."""

import sys
from typing import Annotated, Any, Optional

import typer

from ..errors import UsageError, quote
from ..layout import Layout
from ..output import OUTPUT_FORMATS, default_format
from .options import (
    AS,
    C_HEADER,
    CLOCK,
    INCLUDE_DIR,
    KEY_TYPE,
    LAYOUT,
    OLDER_THAN,
    OUTPUT,
    PACKED,
    QUIET,
    TIME_FIELD,
    VALUE_TYPE,
    WHERE,
    Opt,
)
from .verbs import NO_LAYOUT, LayoutOptions, is_number, say  # noqa: F401  (re-exported: the verbs import them from here)


class NumbersAreValues(typer.core.TyperCommand):
    """Every verb's command: options are options wherever they stand (after the
    positionals too), a word that parses as a number (-5, -0x10, -1.5) is a value
    wherever it stands, and '--' ends the options; any other word starting with '-' is an
    option, and one the verb does not have is refused (never taken as a value)."""

    def make_parser(self, ctx):
        parser = super().make_parser(ctx)
        process = parser._process_opts  # the one step that reads a word starting with '-'

        def process_opts(word: str, state) -> None:
            if is_number(word):
                state.largs.append(word)
            else:
                process(word, state)

        # typer's parser (its own copy of click's, pinned by pyproject.toml) has no hook for this
        parser._process_opts = process_opts  # type: ignore[method-assign,assignment]
        return parser


def parse_layout(text: str) -> Layout:
    try:
        return Layout.parse(text)
    except UsageError as err:
        raise typer.BadParameter(str(err)) from None


def _parse_format(text: str) -> str:
    fmt: str | None = OUTPUT.read(text)
    if fmt is None:
        raise typer.BadParameter(f"{quote(text)}: choose one of {', '.join(OUTPUT_FORMATS)}")
    return fmt


def complete_map(incomplete: str) -> list[str]:
    """Pinned maps under the mounted bpffs instances, and id:/name: refs."""
    from ..core.maps import list_maps

    try:
        infos = list(list_maps(pins=True))
    except Exception:  # completion must never fail loudly
        return []
    refs = (
        [p for i in infos for p in i.pinned]
        + [f"id:{i.id}" for i in infos]
        + [f"name:{i.name}" for i in infos if i.name]
    )
    return [r for r in refs if r.startswith(incomplete)]


def complete_layout(incomplete: str) -> list[str]:
    """Type names for the field being typed: after ':', ',', '{' or '=' (``u32:u`` -> ``u32:u64``, ...)."""
    import re

    from ..layout.lang import type_names

    m = re.match(r"^(.*[:,{=]\s*)?([^:,{=]*)$", incomplete)
    head, tail = (m.group(1) or "", m.group(2)) if m else ("", incomplete)
    return [head + t for t in type_names() if t.startswith(tail)]


def complete_format(incomplete: str) -> list[str]:
    return [f for f in OUTPUT_FORMATS if f.startswith(incomplete)]


def complete_type(incomplete: str) -> list[str]:
    from ..types import MapType

    return [t.label for t in MapType if t is not MapType.UNSPEC and t.label.startswith(incomplete)]


MapArg = Annotated[
    str,
    typer.Argument(
        metavar="MAP", help="Pinned path, id:N or name:NAME.", show_default=False, autocompletion=complete_map
    ),
]


def option(opt: Opt, **typer_args: Any) -> Any:
    """The typer option declared by ``opt`` (names, metavar, help from cli/options), with
    what only typer takes (parser=, autocompletion=, min=, ...)."""
    if opt.metavar is not None:
        typer_args["metavar"] = opt.metavar
    return typer.Option(*opt.names, help=opt.help, **typer_args)


LayoutOpt = Annotated[Optional[Layout], option(LAYOUT, parser=parse_layout, autocompletion=complete_layout)]
PackedOpt = Annotated[bool, option(PACKED)]
HeaderOpt = Annotated[Optional[str], option(C_HEADER)]
IncludeOpt = Annotated[Optional[list[str]], option(INCLUDE_DIR)]
AsOpt = Annotated[Optional[list[str]], option(AS)]
KeyTypeOpt = Annotated[Optional[str], option(KEY_TYPE)]
ValueTypeOpt = Annotated[Optional[str], option(VALUE_TYPE)]
OutputOpt = Annotated[Optional[str], option(OUTPUT, parser=_parse_format, autocompletion=complete_format)]
QuietOpt = Annotated[bool, option(QUIET)]


MAX_SECONDS = 1e6  # ~11 days: past it epoll and sleep overflow, and no one waits that long


def check_seconds(value: float | None, option: str, zero: bool = False) -> None:
    """A UsageError unless ``value`` (if given) is a finite number of seconds, above 0
    (or 0 itself with ``zero``) and at most MAX_SECONDS: nan, inf and negatives are
    refused before anything is printed."""
    import math

    if value is None:
        return
    low_ok = value >= 0 if zero else value > 0
    if not (math.isfinite(value) and low_ok and value <= MAX_SECONDS):
        span = "from 0" if zero else "above 0,"
        raise UsageError(f"{option} {value}: give a number of seconds {span} up to {MAX_SECONDS:,.0f}")


def layout_options(keys: bool = True):
    """A command decorator: its ``opts: LayoutOptions`` parameter appears on the command
    line as --layout, --packed, --c-header, (with ``keys``) --key-type and --value-type,
    and reaches the command as one LayoutOptions."""
    options = {
        "layout": (LayoutOpt, None),
        "packed": (PackedOpt, False),
        "c_header": (HeaderOpt, None),
        "key_type": (KeyTypeOpt, None),
        "value_type": (ValueTypeOpt, None),
        "include_dir": (IncludeOpt, None),
        "as_": (AsOpt, None),
    }
    if not keys:
        del options["key_type"]
    return _grouped("opts", options, LayoutOptions)


WhereOpt = Annotated[Optional[list[str]], option(WHERE)]
OlderThanOpt = Annotated[Optional[str], option(OLDER_THAN)]
TimeFieldOpt = Annotated[Optional[str], option(TIME_FIELD)]
ClockOpt = Annotated[str, option(CLOCK)]


class FilterOptions:
    """--where, --older-than, --time-field and --clock, as one value (see :func:`filter_options`)."""

    __slots__ = ("where", "older_than", "time_field", "clock")

    def __init__(
        self,
        where: Optional[list[str]] = None,
        older_than: Optional[str] = None,
        time_field: Optional[str] = None,
        clock: str = "monotonic",
    ) -> None:
        self.where, self.older_than, self.time_field, self.clock = where or [], older_than, time_field, clock
        if (older_than is None) != (time_field is None):
            raise UsageError("--older-than DURATION and --time-field FIELD go together")
        if older_than is None and clock != "monotonic":
            raise UsageError("--clock goes with --older-than")

    def __bool__(self) -> bool:
        return bool(self.where) or self.older_than is not None

    def bind(self, view, percpu: Optional[bool] = None):
        """A filters.Where for ``view``'s key and value types, or None without conditions;
        ``percpu``: whether the values it sees are still per-CPU lists (default: the map's)."""
        if not self:
            return None
        from ..filters import Age

        age = None
        if self.older_than is not None and self.time_field is not None:
            age = Age(self.older_than, self.time_field, self.clock)
        return view.where(self.where, age, percpu)


NO_FILTER = FilterOptions()


def filter_options():
    """A command decorator: its ``filt: FilterOptions`` parameter appears on the command
    line as --where, --older-than, --time-field and --clock."""
    return _grouped(
        "filt",
        {
            "where": (WhereOpt, None),
            "older_than": (OlderThanOpt, None),
            "time_field": (TimeFieldOpt, None),
            "clock": (ClockOpt, "monotonic"),
        },
        FilterOptions,
    )


LinearOpt = Annotated[bool, typer.Option("--linear", help="Linear buckets: slot i is [MIN+i*STEP, MIN+(i+1)*STEP).")]
StepOpt = Annotated[int, typer.Option("--step", metavar="STEP", help="--linear: bucket width.")]
MinOpt = Annotated[int, typer.Option("--min", metavar="MIN", help="--linear: where slot 0 starts.")]
SchemeOpt = Annotated[
    Optional[str],
    typer.Option(
        "--scheme",
        metavar="S",
        help="log2 or exp2 (default; libbpf-tools log2l: slot i is [2^i, 2^(i+1)), slot 0 has 0 and 1), "
        "bits or exp2zero (bcc bpf_log2l, fls: slot 0 only 0, slot i is [2^(i-1), 2^i)) or linear.",
    ),
]


class SchemeOptions:
    """--linear, --step, --min and --scheme: what a histogram's slots count, for hist and
    watch --hist (see :func:`scheme_options`)."""

    __slots__ = ("linear", "step", "minimum", "scheme")

    def __init__(self, linear: bool = False, step: int = 1, minimum: int = 0, scheme: Optional[str] = None) -> None:
        self.linear, self.step, self.minimum, self.scheme = linear, step, minimum, scheme

    def given(self) -> bool:
        return self.linear or self.scheme is not None or self.step != 1 or self.minimum != 0

    def resolve(self) -> tuple[str, int, int]:
        """(scheme, step, minimum), the combinations checked."""
        if self.linear and self.scheme not in (None, "linear"):
            raise UsageError(f"--linear and --scheme {self.scheme} exclude each other")
        scheme = "linear" if self.linear else (self.scheme or "log2")
        if scheme != "linear" and (self.step != 1 or self.minimum != 0):
            raise UsageError("--step and --min apply to --linear histograms")
        return scheme, self.step, self.minimum


NO_SCHEME = SchemeOptions()


def scheme_options():
    """A command decorator: its ``sch: SchemeOptions`` parameter appears on the command
    line as --linear, --step, --min and --scheme."""
    return _grouped(
        "sch",
        {"linear": (LinearOpt, False), "step": (StepOpt, 1), "minimum": (MinOpt, 0), "scheme": (SchemeOpt, None)},
        SchemeOptions,
    )


def _grouped(param: str, options: dict, make):
    """A command decorator turning parameter ``param`` into the command-line ``options``
    ({name: (annotation, default)}) and those back into ``make(**options)``."""
    import functools
    import inspect

    def wrap(command):
        sig = inspect.signature(command)
        params = []
        for p in sig.parameters.values():
            if p.name != param:
                params.append(p)
                continue
            params += [
                inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=ann)
                for name, (ann, default) in options.items()
            ]

        @functools.wraps(command)
        def run(**kwargs):
            grouped = make(**{name: kwargs.pop(name) for name in options})
            return command(**{param: grouped}, **kwargs)

        run.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params} | {"return": sig.return_annotation}
        del run.__wrapped__  # typer must see the new signature, not the command's
        return run

    return wrap


def examples(*commands: str) -> str:
    """A command's --help epilog: real command lines (click keeps a paragraph after a
    \\b line as written).  tests/test_help.py runs every one of them."""
    return "Examples:\n\n\b\n" + "\n".join(f"  $ {c}" for c in commands)


def fmt_or_default(fmt: str | None) -> str:
    return fmt or default_format(sys.stdout)
