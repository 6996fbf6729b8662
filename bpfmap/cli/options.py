"""The options of the verbs the fast path reads (lookup, update, delete, dump, push, pop,
count), declared
once: names, metavar, help, how the fast path reads a value, and the rules between them.
No typer here: the typer commands build their options from this table (common.option),
and the fast path (verbs.parse_fast) reads command lines by it, so an option added to a
verb is in both or a test fails (tests/unit/test_cli_options.py)."""

from collections.abc import Callable
from typing import Any, NamedTuple, Optional

from ..errors import UsageError
from ..layout import DISPLAY_FORMATS
from ..output import OUTPUT_FORMATS
from ..view import AGGREGATES


class Opt(NamedTuple):
    """One command-line option.  ``param``: the command's parameter; ``metavar`` None: a
    flag; ``read``: how the fast path reads its text, None for a text it leaves to the
    parser (only options a verb's ``fast`` names are read by it)."""

    param: str
    names: tuple[str, ...]
    help: str
    metavar: Optional[str] = None
    read: Callable[[str], Any] = str

    @property
    def flag(self) -> bool:
        return self.metavar is None


def _listed(words: list[str]) -> str:
    """``a, b or c``."""
    return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else "".join(words)


def _count(text: str) -> Optional[int]:
    return int(text) if text.isdigit() else None


def _positive(text: str) -> Optional[int]:
    n = _count(text)
    return n if n else None


def _format(text: str) -> Optional[str]:
    fmt = text.strip().lower()
    return fmt if fmt in OUTPUT_FORMATS else None


# -- shared by many verbs ------------------------------------------------------------------

LAYOUT = Opt(
    "layout",
    ("--layout", "-l"),
    "Key and value layout, e.g. u32:u64 or 'saddr=ipv4,dport=be16:u64'; '-' leaves a side "
    "as hex; @FILE[#NAME] reads it from a file.",
    "KEY:VALUE",
)
PACKED = Opt("packed", ("--packed",), "Lay out both sides of --layout with no padding.")
C_HEADER = Opt("c_header", ("--c-header",), "C header declaring the key and value types.", "FILE")
KEY_TYPE = Opt("key_type", ("--key-type",), "C type of the key, e.g. 'struct flow_key'.", "CTYPE")
VALUE_TYPE = Opt("value_type", ("--value-type",), "C type of the value, e.g. __u64.", "CTYPE")
INCLUDE_DIR = Opt(
    "include_dir",
    ("--include-dir", "-I"),
    "--c-header: look for #include files here too (repeatable); local includes "
    '(#include "x.h") are found beside the header.',
    "DIR",
)
AS = Opt(
    "as_",
    ("--as",),
    "Show fields as: "
    + ", ".join(f"{name} ({note})" if note else name for name, note in DISPLAY_FORMATS.items())
    + "; e.g. --as saddr=ip,daddr=ip.",
    "FIELD=FMT,...",
)
LAYOUT_OPTIONS = (LAYOUT, PACKED, C_HEADER, KEY_TYPE, VALUE_TYPE, INCLUDE_DIR, AS)
VALUE_LAYOUT_OPTIONS = tuple(opt for opt in LAYOUT_OPTIONS if opt is not KEY_TYPE)  # maps with no keys: queues
# layout.choose's parameters as the command line calls them, for its messages
OPTION_NAMES = {
    "layout": LAYOUT.names[0],
    "packed": PACKED.names[0],
    "c_header": f"{C_HEADER.names[0]} {C_HEADER.metavar}",
    "key_type": KEY_TYPE.names[0],
    "value_type": VALUE_TYPE.names[0],
    "include_dirs": INCLUDE_DIR.names[0],
}

WHERE = Opt(
    "where",
    ("--where",),
    "Only entries where FIELD=VALUE (also !=, ~TEXT, <, <=, >, >= on numbers); FIELD names a field "
    "of the key or value (key.NAME / value.NAME when both have it); repeat for AND.",
    "EXPR",
)
OLDER_THAN = Opt(
    "older_than",
    ("--older-than",),
    "Only entries whose --time-field is more than DURATION (90s, 10m, 2h) before now.",
    "DURATION",
)
TIME_FIELD = Opt(
    "time_field", ("--time-field",), "--older-than: the field holding a timestamp in nanoseconds.", "FIELD"
)
CLOCK = Opt(
    "clock",
    ("--clock",),
    "--older-than: the clock of the timestamps: monotonic (bpf_ktime_get_ns), boottime "
    "(bpf_ktime_get_boot_ns), realtime or tai.",
    "CLOCK",
)
FILTER_OPTIONS = (WHERE, OLDER_THAN, TIME_FIELD, CLOCK)

OUTPUT = Opt(
    "output",
    ("--output", "-o"),
    f"{_listed(list(OUTPUT_FORMATS))} (default: table on a terminal, text otherwise).",
    "FORMAT",
    read=_format,
)
QUIET = Opt("quiet", ("--quiet", "-q"), "Print nothing on success (errors still go to stderr).")
PERCPU = Opt(
    "percpu",
    ("--percpu",),
    f"Per-CPU maps: {'|'.join(AGGREGATES)} (default all: one value per CPU).",
    "HOW",
    read=lambda t: t if t in AGGREGATES else None,
)
CPU = Opt("cpu", ("--cpu",), "Per-CPU maps: only CPU N's slot.", "N", read=_count)
PID = Opt("pid", ("--pid",), "stack_trace maps: symbolize user addresses through process N's maps.", "N")
LOCK = Opt("lock", ("--lock",), "Under the value's struct bpf_spin_lock (BPF_F_LOCK; values that hold one, per BTF).")

# -- one verb's own ------------------------------------------------------------------------

EXISTS = Opt("exists", ("--exists",), "Print nothing; exit 0 if KEY is present, 1 if not (for 'if' in scripts).")
NOEXIST = Opt("noexist", ("--noexist",), "Only create: fail if KEY exists.")
EXIST = Opt("exist", ("--exist",), "Only replace: fail if KEY is absent.")
PERCPU_VALUES = Opt("percpu_values", ("--percpu-values",), "Per-CPU maps: a JSON list with one value per CPU.", "JSON")
FROM = Opt(
    "from_",
    ("--from",),
    "Bulk load entries from FILE ('-' for stdin): text, jsonl or csv, as dump writes them.",
    "FILE",
)
INPUT_FORMAT = Opt("input_format", ("--input-format",), "auto, text, jsonl or csv (for --from).", "FMT")
KEEP_GOING = Opt("keep_going", ("--keep-going",), "--from: skip bad lines, report them.")
VAR = Opt(
    "var",
    ("--var",),
    "Set one variable of a global-variable map (.data, .bss) or one field of a struct "
    "value (NAME, NAME.FIELD, NAME[I]), leaving the rest as it is; repeatable.",
    "NAME=VALUE",
)
ALL = Opt("all_", ("--all",), "Delete every entry (same as 'clear').")
PRINT = Opt(
    "print_",
    ("--print",),
    "Print the value deleted, taken out in the same step (hash maps, Linux 5.14+), as lookup prints it; "
    "with --where, every entry deleted, as dump prints them.",
)
OVERWRITE = Opt("overwrite", ("--overwrite",), "Queue/stack: drop the oldest element when full.")
DRY_RUN = Opt("dry_run", ("--dry-run",), "--where: say how many entries match (--print: which), delete none.")
SORT = Opt(
    "sort",
    ("--sort",),
    "Order by FIELD: key, value, value.NAME or NAME.",
    "FIELD",
    read=lambda t: t or None,
)
REVERSE = Opt("reverse", ("--reverse",), "Descending order (with --top: the smallest).")
TOP = Opt("top", ("--top",), "Only the N largest by --sort, largest first.", "N", read=_positive)
DELETE = Opt(
    "delete",
    ("--delete",),
    "Drain: delete entries as they are read "
    "(atomically per batch where the kernel can); entries "
    "the output does not take are put back.",
)
BATCH_SIZE = Opt(
    "batch_size",
    ("--batch-size",),
    "Entries per kernel batch (default: ~1 MiB of them); with --delete, the most a SIGKILL can lose.",
    "N",
)
RECURSIVE = Opt("recursive", ("--recursive", "-r"), "Maps of maps: each inner map's entries under its slot.")
INNER_LAYOUT = Opt(
    "inner_layout",
    ("--inner-layout",),
    "--recursive: the inner maps' layout (default: their BTF, else hex).",
    "KEY:VALUE",
)


class Needs(NamedTuple):
    """Option ``param`` goes only with option ``other``."""

    param: str
    other: str
    message: str

    def broken(self, given: dict[str, Any]) -> bool:
        return given.get(self.param) is not None and given.get(self.other) is None


class Excludes(NamedTuple):
    """Options ``param`` and ``other`` exclude each other."""

    param: str
    other: str
    message: str

    def broken(self, given: dict[str, Any]) -> bool:
        return given.get(self.param) is not None and given.get(self.other) is not None


RULES = (
    Needs("top", "sort", "--top needs --sort FIELD"),
    Excludes("percpu", "cpu", "give --percpu or --cpu, not both"),
)


def broken_rule(given: dict[str, Any]) -> Optional[str]:
    """What the first rule ``given`` (parameter -> value, None when not given) breaks says, or None."""
    return next((rule.message for rule in RULES if rule.broken(given)), None)


class Verb(NamedTuple):
    """A verb the fast path may run: how many positional arguments it takes, every option
    its command has, those of them the fast path reads, and whether MAP may name several
    maps (then the parser's command reads them)."""

    args: tuple[int, int]
    options: tuple[Opt, ...]
    fast: tuple[Opt, ...]
    several: bool = False


VERBS = {
    "lookup": Verb((1, 2), (PERCPU, CPU, OUTPUT, EXISTS, LOCK, PID, *LAYOUT_OPTIONS), (LAYOUT, OUTPUT), True),
    "update": Verb(
        (3, 3),
        (NOEXIST, EXIST, PERCPU_VALUES, CPU, FROM, INPUT_FORMAT, KEEP_GOING, VAR, LOCK, QUIET, *LAYOUT_OPTIONS),
        (LAYOUT,),
    ),
    "delete": Verb((2, 2), (ALL, PRINT, DRY_RUN, OUTPUT, QUIET, *LAYOUT_OPTIONS, *FILTER_OPTIONS), (LAYOUT,)),
    "dump": Verb(
        (1, 1),
        (
            PERCPU,
            CPU,
            SORT,
            REVERSE,
            TOP,
            DELETE,
            BATCH_SIZE,
            RECURSIVE,
            INNER_LAYOUT,
            OUTPUT,
            PID,
            *LAYOUT_OPTIONS,
            *FILTER_OPTIONS,
        ),
        (LAYOUT, OUTPUT, PERCPU, CPU, SORT, TOP, REVERSE),
        True,
    ),
    "push": Verb((2, 2), (OVERWRITE, *VALUE_LAYOUT_OPTIONS), (LAYOUT, OVERWRITE)),
    "pop": Verb((1, 1), (OUTPUT, *VALUE_LAYOUT_OPTIONS), (LAYOUT, OUTPUT)),
    "count": Verb((1, 1), (*LAYOUT_OPTIONS, *FILTER_OPTIONS), (LAYOUT,)),
}


def fast_options(verb: str) -> dict[str, Opt]:
    """Option name (each spelling) -> the option, for those of ``verb`` the fast path reads."""
    return {name: opt for opt in VERBS[verb].fast for name in opt.names}


JSON_OUTPUTS = ("json", "jsonl")  # the outputs whose errors are JSON objects too


def errors_as_json(args: list[str]) -> bool:
    """Whether a command line asks for JSON output (then its errors are JSON too)."""
    fmt = output_format(args)
    return fmt is not None and fmt.strip().lower() in JSON_OUTPUTS


def output_format(args: list[str]) -> Optional[str]:
    """The --output a command line gives (``-o F``, ``-oF``, ``--output F``, ``--output=F``;
    the last one, as the parser takes it), as written, before '--'; None without one."""
    long, short = OUTPUT.names
    found = None
    for i, a in enumerate(args):
        if a == "--":
            break
        if a in OUTPUT.names and i + 1 < len(args):
            found = args[i + 1]
        elif a.startswith(long + "="):
            found = a.split("=", 1)[1]
        elif a.startswith(short) and len(a) > 2 and not a.startswith("--"):
            found = a[2:]
    return found


class Choices(NamedTuple):
    """An option's choices, named once: its help lists them (with ``notes``: a word after
    a choice), its check and its message read them."""

    names: tuple[str, ...]
    notes: dict[str, str] = {}

    def help(self) -> str:
        """The choices as help text: ``text (bars), json or jsonl``."""
        return _listed([f"{c} ({self.notes[c]})" if c in self.notes else c for c in self.names])

    def check(self, value: str, option: str, verb: Optional[str] = None) -> str:
        """``value`` if it is a choice, else a UsageError naming ``option`` (what ``verb`` writes)."""
        if value in self.names:
            return value
        said = f"{verb} writes" if verb else "choose"
        raise UsageError(f"{option} {value}: {said} {_listed(list(self.names))}")
