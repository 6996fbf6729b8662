"""The verbs' own code once their arguments are parsed, and the fast path that parses
plain lookup/update/delete/dump/push/pop/count lines without the command-line parser: no
typer here, so a plain ``bpfmap lookup`` (and every line of ``bpfmap batch`` that is one)
starts without importing it, nor anything else the verb does not use.  The typer
commands (elements.py, changes.py) parse and call these."""

import sys
from typing import Any, Optional

from ..core.maps import Map, UpdateMode, may_name_several
from ..errors import EXIT_NOT_FOUND, EXIT_OK, BpfmapError, KeyNotFound, UsageError, quote
from ..layout import Layout, choose
from ..output import cell, default_format, write_value
from ..types import Access, Value
from ..view import View, numeric_layout
from .options import OPTION_NAMES, VERBS, broken_rule, fast_options
from .wording import StdoutClosed, worded


def say(message: str, quiet: bool = False) -> None:
    """A diagnostic line on stderr (counts, notes), unless ``quiet``."""
    if not quiet:
        if not message.isprintable():  # map, file or kernel text with controls in it: shown, never acted on
            message = cell(message)  # one line, a newline in a pin name too
        sys.stderr.write(f"bpfmap: {message}\n")


class LayoutOptions:
    """--layout (with --packed) or --c-header (with --key-type, --value-type): how a
    command reads keys and values, as one value (see :func:`layout_options`)."""

    __slots__ = ("layout", "packed", "c_header", "key_type", "value_type", "include_dir", "as_", "_views")

    def __init__(
        self,
        layout: Layout | None = None,
        packed: bool = False,
        c_header: str | None = None,
        key_type: str | None = None,
        value_type: str | None = None,
        include_dir: list[str] | None = None,
        as_: list[str] | None = None,
    ) -> None:
        self.layout, self.packed, self.c_header = layout, packed, c_header
        self.key_type, self.value_type = key_type, value_type
        self.include_dir, self.as_ = include_dir or [], as_ or []
        self._views: dict = {}  # map -> View, for maps shared across a batch's lines

    def pick(self) -> Layout | None:
        """The one layout the options give: from --layout (and --packed) or --c-header."""
        return choose(
            self.layout, self.packed, self.c_header, self.key_type, self.value_type, self.include_dir, OPTION_NAMES
        )

    def formats(self) -> dict[str, str]:
        """--as: field path -> display format (empty without it)."""
        from ..layout.formats import parse_spec

        return parse_spec(self.as_)

    def view(self, m, numeric_default: bool = False):
        """The View a command reads and writes through: the layout the user gave, else
        the map's BTF, else hex (a note on stderr when BTF was unusable).
        ``numeric_default`` (watch, hist) reads a map with neither as unsigned integers
        when its key and value are 4 or 8 bytes: a counter's shape."""
        shared = getattr(m, "_shared", False)
        if shared and (m, numeric_default) in self._views:
            return self._views[(m, numeric_default)]
        lay = self.pick()
        if lay is None and numeric_default:
            lay = numeric_layout(m)
        view = View(m, lay)
        if view.note:
            say(f"note: {view.note}")
        if self.as_:
            view.show_as(self.formats())
        if shared:
            self._views[(m, numeric_default)] = view
        return view


NO_LAYOUT = LayoutOptions()


def is_number(word: str) -> bool:
    """Whether a command-line word is a number (-5, -0x10, -1.5e3, -inf): a value, never an
    option, wherever it stands (the one rule of the fast path and the parser's)."""
    try:
        int(word, 0)
    except ValueError:
        try:
            float(word)
        except ValueError:
            return False
    return True


def do_lookup(
    map_ref: str,
    key: Optional[str],
    percpu: Optional[str] = None,
    cpu: Optional[int] = None,
    output: Optional[str] = None,
    opts: LayoutOptions = NO_LAYOUT,
    lock: bool = False,
    pid: Optional[int] = None,
) -> None:
    """The lookup verb once its arguments are parsed."""
    with Map.open(map_ref, readonly=True) as m:
        view = opts.view(m)
        if pid is not None:
            view.symbolize_for(pid)
            if view.note:
                say(f"note: {view.note}")
        reduce, still_percpu = view.reducer(percpu, cpu)
        with view.element_key(key, "lookup") as raw_key:
            value = view.decode_value(m.lookup(raw_key, lock=lock))
        if reduce is not None:
            value = reduce(value)
        write_value(
            shown_key(m, view, key, raw_key), value, single_format(output), view.value.format, still_percpu, sys.stdout
        )


def shown_key(m: Map, view: View, text: str | None, raw_key: bytes) -> Any:
    """The key a one-entry verb prints: a kernel object's reference as given (its fd
    means nothing after the call), else the key decoded."""
    return text if m.kind.access is Access.OBJECT else view.key.decode(raw_key)


def lookup_exists(map_ref: str, key: Optional[str], opts: LayoutOptions = NO_LAYOUT) -> bool:
    """lookup --exists: whether KEY is in the map."""
    with (
        Map.open(map_ref, readonly=True) as m,
        opts.view(m).element_key(key, "lookup") as raw_key,
    ):
        try:
            m.lookup(raw_key)
        except KeyNotFound:
            return False
        return True


def single_format(fmt: str | None) -> str:
    """Single values read best as plain text, even on a terminal."""
    return "text" if fmt in (None, "table", "csv") else fmt


def do_delete(map_ref: str, key: str, opts: LayoutOptions = NO_LAYOUT) -> None:
    """The delete verb for one KEY (bpfmap batch calls it directly)."""
    with Map.open(map_ref) as m, opts.view(m).element_key(key, "delete") as raw_key:
        m.delete(raw_key)


def take_one(map_ref: str, key: str, output: Optional[str], opts: LayoutOptions = NO_LAYOUT) -> None:
    """delete KEY --print: the entry taken out in one step, printed as lookup prints it."""
    with Map.open(map_ref) as m:
        view = opts.view(m)
        with view.element_key(key, "delete") as raw_key:
            raw = m.take(raw_key)
        value = view.decode_value(raw)
        fmt = single_format(output)

        def put_back() -> str:
            m.update(raw_key, raw, "noexist")  # a key a program wrote again meanwhile is its
            return "the entry was put back in the map"

        _printed_or_put_back(
            f"delete {map_ref} {key} --print",
            lambda out: write_value(shown_key(m, view, key, raw_key), value, fmt, view.value.format, m.percpu, out),
            put_back,
        )


def update_one(
    m: Map,
    view: View,
    key: str,
    values: list[str],
    percpu_values: str | None,
    cpu: int | None,
    mode: UpdateMode,
    lock: bool = False,
) -> None:
    """update MAP KEY VALUE...: one entry, its value given as text (one per CPU, or as JSON
    with --percpu-values, or one CPU's slot with --cpu), a map or a program reference."""
    with view.element_key(key, "update") as raw_key:
        _update_at(m, view, raw_key, values, percpu_values, cpu, mode, lock)


def _update_at(
    m: Map,
    view: View,
    raw_key: bytes,
    values: list[str],
    percpu_values: str | None,
    cpu: int | None,
    mode: UpdateMode,
    lock: bool = False,
) -> None:
    map_ref = m.ref
    if m.kind.value is Value.FD and m.kind.object is not None:
        if len(values) != 1:
            raise UsageError(f"update {map_ref}: give one {m.kind.object}: reference as the value")
        view.update(raw_key, values[0], mode)
        return
    if m.kind.value in (Value.MAP_ID, Value.PROG_ID):
        if len(values) != 1:
            what = "map" if m.kind.value is Value.MAP_ID else "program"
            raise UsageError(f"update {map_ref}: give one {what} reference as the value")
        view.update(raw_key, values[0], mode)
        return
    if (percpu_values is not None or cpu is not None) and not m.percpu:
        raise UsageError(f"--percpu-values/--cpu: {m.type_label} is not a per-CPU map")
    if percpu_values is not None:
        if values:
            raise UsageError("give the value as VALUE or as --percpu-values, not both")
        items = json_list(percpu_values)
        if len(items) != m.ncpus:
            raise UsageError(
                f"--percpu-values: {len(items)} values given, this machine has {m.ncpus} "
                f"possible CPUs; give one per CPU (or one VALUE for all)"
            )
        m.update(raw_key, [view.encode_value(v) for v in items], mode)
        return
    if not values:
        raise UsageError(f"update {map_ref}: missing VALUE")
    if len(values) > 1 and not m.percpu:
        raise UsageError(
            f"update {map_ref}: {len(values)} values given; only per-CPU maps take one per CPU "
            f"(quote a value that contains spaces)"
        )
    parsed = [view.parse_value(v) for v in values]
    if cpu is not None:
        if len(parsed) != 1:
            raise UsageError("--cpu N takes one VALUE")
        view.update(raw_key, parsed[0], mode, cpu=cpu)  # the other CPUs' slots kept
        return
    m.update(raw_key, parsed if m.percpu else parsed[0], mode, lock=lock)


def json_list(text: str) -> list[Any]:
    import json

    try:
        items = json.loads(text)
    except ValueError as err:  # JSONDecodeError, or a number past 4300 digits
        raise UsageError(
            f"--percpu-values {quote(text)}: not JSON ({getattr(err, 'msg', str(err).split(';')[0])})"
        ) from None
    if not isinstance(items, list):
        raise UsageError(f"--percpu-values {quote(text)}: give a JSON list, one value per CPU")
    return items


def do_push(map_ref: str, value: str, opts: LayoutOptions = NO_LAYOUT, overwrite: bool = False) -> None:
    """push MAP VALUE: onto a queue or stack, or into a bloom filter."""
    with Map.open(map_ref) as m:
        m.require("push")
        m.push(opts.view(m).parse_value(value), overwrite=overwrite)


def do_pop(map_ref: str, output: Optional[str], opts: LayoutOptions = NO_LAYOUT) -> None:
    """pop MAP: the next element of a queue (oldest) or stack (newest) taken out and printed."""
    with Map.open(map_ref) as m:
        view = opts.view(m)
        raw = m.pop()
        value = view.value.decode(raw)
        fmt = single_format(output)

        _printed_or_put_back(
            f"pop {map_ref}",
            lambda out: write_value(None, value, fmt, view.value.format, False, out, with_key=False),
            lambda: pushed_back(m, raw),
        )


def pushed_back(m: Map, raw: bytes) -> str:
    """An element popped from ``m`` pushed back (its output failed), and where it went."""
    m.push(raw)
    return "the element was put back" + (" (at the tail of the queue)" if m.type_label == "queue" else "")


def _printed_or_put_back(action: str, write: Any, put_back: Any) -> None:
    """``write(stream)`` an element taken out of a map (pop, delete --print) to stdout, flushed;
    when the output fails (a full disk, a closed stdout, a reader gone) it was not
    delivered: ``put_back`` puts it back and says where, and the command says so (exit 3;
    a reader gone, exit 0, as a drain's).  If it cannot go back either, its text goes to
    stderr: never lost without a word."""
    try:
        write(sys.stdout)
        sys.stdout.flush()
    except (OSError, StdoutClosed) as err:
        undelivered(action, err, write, put_back)


def undelivered(action: str, err: OSError | StdoutClosed, write: Any, put_back: Any) -> None:
    """What :func:`_printed_or_put_back` does when the output failed with ``err`` (the
    quick path's pop calls it too): the element put back, and said."""
    try:
        where = put_back()
    except BpfmapError as refused:
        import io

        text = io.StringIO()
        write(text)
        where = f"it could not be put back ({worded(refused)}); it was: {text.getvalue().strip()}"
    if isinstance(err, (StdoutClosed, BrokenPipeError)):
        say(f"{action}: the reader closed the output; {where}")
        return
    raise BpfmapError(f"{action}: writing the output failed ({err.strerror or err}); {where}") from None


def do_count(map_ref: str, opts: LayoutOptions = NO_LAYOUT, filt: Any = None) -> int:
    """count MAP: how many entries it holds, or how many ``filt`` (the command's
    FilterOptions) picks, printed; the exit code: EXIT_NOT_FOUND when none (as grep -c)."""
    from ..entries.changes import count

    with Map.open(map_ref, readonly=True) as m:
        m.require("dump", "count")
        view = opts.view(m)
        n = count(view, filt.bind(view) if filt else None)
    sys.stdout.write(f"{n}\n")
    return EXIT_OK if n else EXIT_NOT_FOUND


def do_dump(map_ref: str, output: Optional[str] = None, opts: LayoutOptions = NO_LAYOUT, **options: Any) -> None:
    """dump MAP with no other options than --layout, --output, --percpu, --cpu, --sort,
    --top and --reverse (the fast path runs it)."""
    with Map.open(map_ref, readonly=True) as m:
        dump_entries(opts.view(m), map_ref, output, **options)


def dump_entries(view: View, map_ref: str, output: Optional[str], filt: Any = None, **options: Any) -> None:
    """The library's dump of the view's map to stdout, in ``output`` (default: a table on a
    terminal, else text), with a progress bar on a terminal stderr when stdout is not one;
    ``filt``: the command's FilterOptions; ``options``: bpfmap.dump's (percpu, cpu, sort,
    reverse, top, batch_size)."""
    from ..output.dump import dump

    if filt:
        options["where"] = filt.bind(view, view.reducer(options.get("percpu"), options.get("cpu"))[1])

    progress = None
    if not sys.stdout.isatty():  # a big dump to a file or a pipe: a bar on a terminal stderr
        from .term import Progress

        m = view.map
        progress = Progress(f"dump {map_ref}", m.max_entries if not m.kind.deletable else None)
    try:
        dump(
            view,
            sys.stdout,
            output or default_format(sys.stdout),
            progress=progress.count_batches if progress is not None else None,
            note=lambda text: say(f"note: {worded(text)}"),
            **options,
        )
    finally:
        if progress is not None:
            progress.close()


# -- the fast path ----------------------------------------------------------------------------
#
# lookup MAP [KEY] / update MAP KEY VALUE / delete MAP KEY / dump MAP / push MAP VALUE /
# pop MAP / count MAP, with the options cli/options.VERBS says the fast path reads
# (--layout, --output, dump's --percpu, --cpu, --sort, --top, --reverse, push's
# --overwrite): parsed here, run by the functions above, by the parser's rules
# (options anywhere, numbers such as -5 are values, '--' ends the options).  A line with
# anything else (another option, a bad option value, a broken rule) goes through the
# command-line parser, which says what is wrong exactly as it always does.

_OPTIONS: dict[Optional[str], LayoutOptions] = {}  # --layout text -> its LayoutOptions (views cached in it)


def parse_fast(words: list[str]) -> Optional[tuple[str, list[str], Optional[str], LayoutOptions, dict[str, Any]]]:
    """(verb, positional arguments, output format, layout options, dump's other options)
    for a plain line, or None when the command-line parser must read it."""
    verb = words[0] if words else ""
    if verb not in VERBS:
        return None
    known = fast_options(verb)
    positional: list[str] = []
    given: dict[str, Any] = {}
    i, n = 1, len(words)
    while i < n:
        w = words[i]
        i += 1
        if w[:1] != "-" or is_number(w):
            positional.append(w)
            continue
        if w == "--":
            positional += words[i:]
            break
        name, eq, text = w.partition("=") if w.startswith("--") else (w, "", "")
        opt = known.get(name)
        if opt is None or (eq and opt.flag):
            return None  # another option (or a negative number): the parser's job
        if opt.flag:
            given[opt.param] = True
            continue
        if not eq:
            if i == n:
                return None
            text, i = words[i], i + 1
        value = opt.read(text)
        if value is None:
            return None  # the parser says what is wrong with it
        given[opt.param] = value  # given twice: the last, as the parser takes it
    if broken_rule(given) is not None:
        return None
    low, high = VERBS[verb].args
    if not low <= len(positional) <= high:
        return None
    if VERBS[verb].several and may_name_several(positional[0]):
        return None  # a directory, a glob or a name: the parser's verbs read several maps
    layout, output = given.pop("layout", None), given.pop("output", None)
    opts = _OPTIONS.get(layout)
    if opts is None:
        lay = None
        if layout is not None:
            try:
                lay = Layout.parse(layout)
            except Exception:
                return None  # the parser says what is wrong with it
        opts = LayoutOptions(layout=lay)
        if len(_OPTIONS) < 256:
            _OPTIONS[layout] = opts
    return verb, positional, output, opts, given


def run_fast(parsed: tuple[str, list[str], Optional[str], LayoutOptions, dict[str, Any]]) -> int:
    """Run a line parse_fast read, through the verb's own function; returns the exit code."""
    verb, positional, output, opts, extra = parsed
    if verb == "dump":
        do_dump(positional[0], output, opts, **extra)
    elif verb == "lookup":
        do_lookup(positional[0], positional[1] if len(positional) > 1 else None, output=output, opts=opts)
    elif verb == "delete":
        do_delete(positional[0], positional[1], opts)
    elif verb == "push":
        do_push(positional[0], positional[1], opts, **extra)
    elif verb == "pop":
        do_pop(positional[0], output, opts)
    elif verb == "count":
        return do_count(positional[0], opts)
    else:
        with Map.open(positional[0]) as m:
            update_one(m, opts.view(m), positional[1], [positional[2]], None, None, "any")
    return EXIT_OK
