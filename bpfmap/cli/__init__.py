"""The bpfmap command line: a thin typer app over the library.

Exit codes (a contract for scripts, named in bpfmap.errors): 0 ok; 1 not found or
empty; 2 usage or input error; 3 error from the kernel or the system; 130 and 143
stopped by Ctrl-C or SIGTERM.

Not a library API: the command line's own code (``main`` and ``run`` are what the console
script calls); a Python user calls the package root, which every verb calls once.
"""

from __future__ import annotations

import os
import sys

from .._lazy import TYPE_CHECKING
from ..errors import (
    EXIT_DIFFER,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_SYSTEM,
    EXIT_TERMINATED,
    EXIT_USAGE,
    BpfmapError,
)
from .wording import ALSO, OPTIONS, StdoutClosed, option, worded  # noqa: F401  # re-exported: bpfmap.cli.worded

if TYPE_CHECKING:
    from typing import NoReturn

    import typer

# typer is imported when a command line needs its parser: not for the plain lookups,
# updates and deletes bpfmap.cli.verbs parses itself (start-up is most of their time)

EXIT_CODES_HELP = (
    f"Exit codes: {EXIT_OK} ok; {EXIT_NOT_FOUND} not found or empty (lookup miss, pop on an empty queue); "
    f"{EXIT_USAGE} usage or input error; {EXIT_SYSTEM} error from the kernel or the system (permission, "
    f"no such pin, unsupported); {EXIT_INTERRUPTED} stopped by Ctrl-C, {EXIT_TERMINATED} by SIGTERM; "
    f"diff alone exits {EXIT_DIFFER} when the maps differ, as diff(1). "
    "MAP is a pinned path, id:N or name:NAME."
)

# Which module defines each verb, in the order --help lists them.
COMMANDS = {
    "create": "manage",
    "show": "manage",
    "list": "manage",
    "pin": "manage",
    "freeze": "manage",
    "lookup": "elements",
    "update": "elements",
    "delete": "elements",
    "clear": "elements",
    "dump": "elements",
    "count": "changes",
    "copy": "changes",
    "migrate": "changes",
    "save": "disk",
    "restore": "disk",
    "diff": "disk",
    "getnext": "elements",
    "push": "elements",
    "pop": "elements",
    "peek": "elements",
    "watch": "watch",
    "top": "top",
    "hist": "hist",
    "events": "events",
    "send": "events",
    "stacks": "stacks",
    "export": "exporter",
    "batch": "batch",
}
# Other names of a verb (bpftool's): alias -> verb
ALIASES = {"enqueue": "push", "dequeue": "pop"}
# The verbs whose plain lines bpfmap.cli.verbs reads without the parser: cli/options.VERBS's
# (named here too so that other verbs do not import it; a test checks they agree)
FAST_VERBS = ("lookup", "update", "delete", "dump", "push", "pop", "count")
# The verbs whose plain lines of integers cli/quick.py runs on bpf(2) alone (its VERBS)
QUICK_VERBS = ("lookup", "update", "delete", "count", "push", "pop")


def make_app(only: str | None = None, completion: bool = True) -> typer.Typer:
    """The typer app; with ``only``, just that verb (typer inspects every command's
    signature when it builds the app, so a single command starts faster).
    ``completion``: the command line completes or installs completion, so typer's
    scripts get our bash script (skipped otherwise: it costs an import)."""
    import typer
    from typer.exceptions import Exit

    def _version(value: bool) -> None:
        if value:
            from .. import __version__

            print(f"bpfmap {__version__}")
            raise Exit()

    def _root(
        version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    ) -> None:
        """Create, read, write and dump Linux eBPF maps."""

    app = typer.Typer(
        name="bpfmap",
        help="Create, read, write and dump Linux eBPF maps.",
        epilog=EXIT_CODES_HELP,
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # help texts hold brackets ([#NAME], [VALUE]) that are not markup
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    if completion:
        from .completion import install

        install()
    app.callback()(_root)
    verb = ALIASES.get(only, only) if only is not None else None
    names = [verb] if verb in COMMANDS else list(COMMANDS)
    for name in names:
        app.registered_commands.append(_command(name))
    for alias, name in ALIASES.items():
        if only is None or only == alias:
            import copy

            info = copy.copy(_command(name))
            info.name, info.hidden = alias, False
            info.help = f"The same as '{name}' (bpftool's name for it)."
            app.registered_commands.append(info)
    return app


def _command(name: str):
    """The typer CommandInfo of verb ``name``, from its module."""
    import importlib

    module = importlib.import_module(f".{COMMANDS[name]}", __name__)
    info = next(i for i in module.app.registered_commands if (i.name or i.callback.__name__.rstrip("_")) == name)
    from .common import NumbersAreValues

    info.cls = NumbersAreValues
    return info


def _verb(argv: list[str]) -> str | None:
    """The verb of a command line when it is the first argument (no global options before it)."""
    if os.environ.get("_BPFMAP_COMPLETE"):
        return None  # completion needs every verb
    return argv[0] if argv and (argv[0] in COMMANDS or argv[0] in ALIASES) else None


class _PipeGuard:
    """stdout, with a closed pipe turned into StdoutClosed: click would turn the
    BrokenPipeError into exit code 1, and a reader that stops early is not an error."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self._printable = None
        try:
            if stream.isatty():  # map and BTF text must not drive the operator's terminal
                from ..output import printable

                self._printable = printable
        except (AttributeError, ValueError):
            pass

    @property
    def unescaped(self):
        """The stream itself, for rich (which writes escape sequences of its own, around
        cells made safe with output.cell)."""
        return self._stream

    def write(self, text: str) -> int:
        if self._printable is not None:
            text = self._printable(text)
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise StdoutClosed() from None

    def writelines(self, lines) -> None:
        for text in lines:  # each through write(): the stream's own writelines would pass them unescaped
            self.write(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise StdoutClosed() from None

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class _ClosedStdout:
    """stdout when the command started with it closed (``>&-``: Python makes it None): a
    command that writes nothing there runs; one that writes fails with one line, exit 3."""

    encoding = "utf-8"

    def write(self, text: str) -> int:
        raise OSError("standard output is closed; give the command somewhere to write (> FILE, or > /dev/null)")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    @property
    def buffer(self) -> _ClosedStdout:
        """The bytes under it (export writes bytes): closed as well."""
        return self


class ErrorLine:
    """How one command's error line is written: as JSON (with -o json / -o jsonl), and
    after what prefix ("line N: " while bpfmap batch runs line N)."""

    __slots__ = ("json", "prefix")

    def __init__(self, json: bool = False, prefix: str = "") -> None:
        self.json, self.prefix = json, prefix


def _one_line(message: str) -> str:
    """An error message as one readable line: line breaks escaped, and any run of
    characters without a space longer than 300 (user input echoed whole somewhere)
    cut to 200 with its length."""
    import re

    message = message.replace("\r", "\\r").replace("\n", "\\n")
    if not message.isprintable():  # ESC and the rest: shown, never acted on
        from ..output import printable

        message = printable(message)
    return re.sub(r"\S{301,}", lambda m: f"{m.group()[:300]}... ({len(m.group())} chars)", message)


def _error(style: ErrorLine, message: str, code: int = EXIT_SYSTEM) -> None:
    """The one error line on stderr; a JSON object ``{"error", "code"}`` with -o json/jsonl;
    the "bpfmap:" prefix in red on a colour terminal."""
    message = _one_line(style.prefix + message)
    if style.json:
        import json

        _to_stderr(json.dumps({"error": message, "code": code}) + "\n")
        return
    from ..output import colour

    prefix = "\x1b[1;31mbpfmap:\x1b[0m" if sys.stderr is not None and colour(sys.stderr) else "bpfmap:"
    _to_stderr(f"{prefix} {message}\n")


def _to_stderr(text: str) -> None:
    """``text`` on stderr, if there is one to write on (closed or full: the exit code still says it)."""
    try:
        if sys.stderr is not None:
            sys.stderr.write(text)
            sys.stderr.flush()
    except (OSError, ValueError):
        pass


def short_usage() -> str:
    """What ``bpfmap`` alone prints: the usage line and one line per verb."""
    app = make_app(completion=False)
    lines = [
        "Usage: bpfmap VERB [ARGS]...   ('bpfmap VERB --help' for one verb, 'bpfmap --help' for all)",
        "",
        "Verbs:",
    ]
    width = max(map(len, [*COMMANDS, *ALIASES]))
    for info in app.registered_commands:
        name = info.name or info.callback.__name__.rstrip("_")  # type: ignore[union-attr]
        doc = info.help or info.callback.__doc__ or ""
        para = " ".join(doc.strip().split("\n\n")[0].split())
        first = para.split(". ")[0].rstrip(".")
        lines.append(f"  {name:<{width}}  {first}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    args = sys.argv[1:] if argv is None else argv
    if not args and not os.environ.get("_BPFMAP_COMPLETE"):  # completion comes with no arguments
        _to_stderr(short_usage())
        return EXIT_USAGE
    real_stdout = sys.stdout
    sys.stdout = _PipeGuard(real_stdout if real_stdout is not None else _ClosedStdout())
    try:
        verb = ALIASES.get(args[0], args[0]) if args else None
        if verb in QUICK_VERBS and not os.environ.get("_BPFMAP_COMPLETE"):
            from .quick import attempt

            try:
                done = attempt(verb, args[1:])  # run on bpf(2) alone: nothing else to import
            except KeyboardInterrupt:
                from .options import errors_as_json

                _error(ErrorLine(errors_as_json(args)), "interrupted", EXIT_INTERRUPTED)
                return EXIT_INTERRUPTED
            if done is not None:  # its answer, written as every command's is (errors: run_args)
                write, json_errors = done
                return run_args(args, call=write, json_errors=json_errors)
        if verb in FAST_VERBS and not os.environ.get("_BPFMAP_COMPLETE"):
            from .verbs import parse_fast, run_fast

            fast = parse_fast([verb, *args[1:]])
            if fast is not None:  # a plain line: no command-line parser (nor typer) to load
                return run_args(args, call=lambda: run_fast(fast))
        return run_args(args)
    except (StdoutClosed, BrokenPipeError):
        # The reader went away (| head): not our error; keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, real_stdout.fileno())
        return EXIT_OK
    finally:
        sys.stdout = real_stdout


def _debug() -> bool:
    return bool(os.environ.get("BPFMAP_DEBUG"))


def run_args(args: list[str], command=None, call=None, json_errors: bool | None = None, prefix: str = "") -> int:
    """Run one command line (``args`` without 'bpfmap') and return its exit code, saying
    any error in one line on stderr (JSON when ``json_errors``, by default when the line
    asks for JSON output; after ``prefix``); ``command``: a click command built before
    (bpfmap batch builds it once), else the app for this verb; ``call``: a function that
    runs the command line already parsed (batch's fast path).  StdoutClosed propagates."""
    if json_errors is None:
        from .options import errors_as_json

        json_errors = errors_as_json(args)
    style = ErrorLine(json_errors, prefix)
    try:
        if call is not None:
            rv = call()
        elif command is not None:
            rv = command.main(args=list(args), prog_name="bpfmap", standalone_mode=False)
        else:
            # Without standalone mode, click hands back typer.Exit's code as the return value.
            completing = bool(os.environ.get("_BPFMAP_COMPLETE")) or any(
                a in ("--show-completion", "--install-completion") for a in args
            )
            rv = make_app(_verb(args), completing)(args=args, prog_name="bpfmap", standalone_mode=False)
        sys.stdout.flush()
    except BpfmapError as exc:
        if _debug():
            raise
        _error(style, worded(exc), exc.exit_code)
        return exc.exit_code
    except KeyboardInterrupt:
        _error(style, "interrupted", EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except StdoutClosed:
        raise
    except BrokenPipeError:  # the reader went away: said as StdoutClosed, which click (batch) passes on
        raise StdoutClosed() from None
    except Exception as exc:
        code = _typer_exit(style, exc)
        if code is None:
            return _other_error(style, exc)
        return code
    return rv if isinstance(rv, int) else EXIT_OK


def _typer_exit(style: ErrorLine, exc: Exception) -> int | None:
    """The exit code for typer's and click's own exceptions (said as one line), or None
    for another exception.  typer is loaded already whenever one of these is raised."""
    if "typer" not in sys.modules:
        return None
    from typer.exceptions import Abort, Exit, TyperException

    if isinstance(exc, Exit):
        return exc.exit_code
    if isinstance(exc, Abort):
        _error(style, "aborted", EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    if isinstance(exc, TyperException):  # click's usage errors
        if getattr(exc, "exit_code", EXIT_NOT_FOUND) == EXIT_OK:
            return EXIT_OK
        cmd = getattr(getattr(exc, "ctx", None), "command_path", "bpfmap") or "bpfmap"
        message, hint = exc.format_message(), ""
        if message.startswith("No such option: "):  # perhaps a value that starts with '-'
            message, hint = "no such option: " + message[16:], " (put '--' before values that start with '-')"
        _error(style, f"{message}; see '{cmd} --help'{hint}", EXIT_USAGE)
        return EXIT_USAGE
    return None


def _other_error(style: ErrorLine, exc: Exception) -> int:
    """An OSError the library did not translate (exit 3), or a bug: one line either way,
    the traceback with BPFMAP_DEBUG=1."""
    if _debug():
        raise exc
    if isinstance(exc, OSError):
        _error(style, f"{exc.strerror or exc}{': ' + exc.filename if exc.filename else ''}")
        return EXIT_SYSTEM
    _error(style, f"internal error: {type(exc).__name__}: {exc}; rerun with BPFMAP_DEBUG=1 and report it")
    return EXIT_SYSTEM


def run() -> None:
    """The console script: main(), and its exit code through leave()."""
    leave(main())


def leave(code: int) -> NoReturn:
    """Exit with ``code`` without Python's own teardown: the atexit handlers run and
    stdout and stderr are flushed, as at a normal exit, but the modules are not torn down
    and no last collection walks every object (8-14 ms here: about as long as a lookup's
    own work).  A process with a thread that is not a daemon (none of bpfmap's) exits the
    normal way, which waits for it."""
    threading = sys.modules.get("threading")
    if threading is not None and any(
        t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()
    ):
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()  # what a normal exit runs first (weakref.finalize's too)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: closed when the command started
                stream.flush()
        except (OSError, ValueError):  # a reader gone or a stream closed: what main() makes of it already
            pass
    os._exit(code)
