"""The export verb: map contents as Prometheus metrics (library: bpfmap.export)."""

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Annotated, NoReturn, Optional

import typer

from ..errors import EXIT_SYSTEM, BpfmapError, UsageError, amended
from . import worded
from .common import QuietOpt, check_seconds, examples, say

app = typer.Typer()

DEFAULT_LISTEN = "127.0.0.1:9435"


@app.command(
    epilog=examples(
        "bpfmap export /etc/bpfmap/export.yaml --check",
        "bpfmap export /etc/bpfmap/export.yaml --once",
    )
)
def export(
    config: Annotated[
        str, typer.Argument(metavar="CONFIG", help="YAML: the metrics, each with its map (see docs/contract.md).")
    ],
    listen: Annotated[
        Optional[str],
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help=f"Serve /metrics over HTTP here (default {DEFAULT_LISTEN}: loopback unless you name another).",
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Print one exposition to stdout and exit (or write --textfile once).")
    ] = False,
    textfile: Annotated[
        Optional[str],
        typer.Option(
            "--textfile",
            metavar="PATH",
            help="Write the exposition to PATH (atomically) for node_exporter's textfile collector.",
        ),
    ] = None,
    interval: Annotated[
        Optional[float], typer.Option("--interval", metavar="S", help="--textfile: seconds between writes (15).")
    ] = None,
    openmetrics: Annotated[
        bool, typer.Option("--openmetrics", help="--once: the OpenMetrics format instead of text 0.0.4.")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Check the config, and that every map opens and decodes; then exit.")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Export map contents as Prometheus metrics: serve /metrics (plain text 0.0.4, or
    OpenMetrics when the scraper asks), print one exposition (--once) or keep a textfile
    for node_exporter (--textfile).  Maps are read with batch lookups at each scrape,
    read-only; a map that disappears drops its metric and counts an error until a map is
    back under its pin or name.  Ctrl-C or SIGTERM stops the server (exit 0)."""
    from ..export import Exporter, check_textfile, parse_listen, read_config, scrape, serve, write_textfile

    check_seconds(interval, "--interval")
    if interval is not None and textfile is None:
        raise UsageError("--interval goes with --textfile")
    modes = (check, listen is not None, textfile is not None and not once, once and textfile is None)
    if sum(bool(x) for x in modes) > 1 or (check and once):
        raise UsageError("give one of --check, --once, --listen and --textfile (--once --textfile writes it once)")
    if openmetrics and not once:
        raise UsageError("--openmetrics goes with --once (the server answers each scraper in the format it asks)")
    host_port = parse_listen(listen or DEFAULT_LISTEN)
    if textfile is not None:
        check_textfile(textfile)
    metrics = read_config(config)
    exporter = Exporter(metrics, log=lambda text: say(text, quiet))

    if check:
        _check(exporter, config, quiet)
        return
    if once:
        if textfile is not None:
            write_textfile(exporter, textfile)
        else:
            import shutil

            with scrape(exporter, openmetrics) as body:  # streamed: a big scrape is not held whole
                if sys.stdout.isatty():  # label values come from maps: through the terminal's escaping
                    import io

                    text = io.TextIOWrapper(body, encoding="utf-8", errors="surrogateescape")
                    for chunk in iter(lambda: text.read(1 << 16), ""):
                        sys.stdout.write(chunk)
                else:
                    shutil.copyfileobj(body, sys.stdout.buffer)
            sys.stdout.flush()
        if any(exporter.errors.values()):
            raise typer.Exit(EXIT_SYSTEM)
        return
    from ..export.serve import long_running

    long_running()  # scrape after scrape from here on: keep the freed memory for the next
    if textfile is not None:
        with _stop_on_signals() as stop:
            _keep_textfile(exporter, textfile, interval if interval is not None else 15.0, stop, quiet)
        return
    with _stop_on_signals() as stop:
        host, port = host_port
        server = serve(exporter, host, port)
        shown = f"[{host}]" if ":" in host else host
        say(f"export: serving {len(metrics)} metrics on http://{shown}:{port}/metrics", quiet)
        try:
            while not _wait(stop, 3600):
                pass
        finally:
            server.shutdown()
            server.server_close()
    _exit_now(0)


def _exit_now(code: int) -> NoReturn:
    """End the process at once, abandoning a scrape the server's worker thread may still
    be making (however long it would take).  Not through the interpreter's exit: that
    stops a daemon thread where it next takes the GIL, and one inside a C++ extension
    (re2 matching a label) aborts the process there instead of exiting."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _check(exporter, config: str, quiet: bool) -> None:
    """--check: read every metric once (an empty map is checked against an entry of
    zeros); the first failure is the exit code, naming the metric."""
    from ..export import ConfigError, describe_error

    metrics = exporter.metrics
    for metric in metrics:
        try:
            _family, count_of, max_entries = exporter.read(metric)
        except ConfigError:
            raise
        except BpfmapError as err:  # the map's own error (exit code), naming the metric
            raise amended(err, f" (metric {metric.name})") from None
        except Exception as err:
            raise BpfmapError(f"export: {metric.name}: {describe_error(err)}") from err
        if exporter.errors[metric.name]:
            raise UsageError(exporter.last_error(metric.name) or f"export: {metric.name}: failed")
        if count_of is None:
            say(f"export: {metric.name}: {metric.map}: an event stream, read as records come", quiet)
        else:
            say(f"export: {metric.name}: {metric.map}: {count_of()} entries (max_entries {max_entries})", quiet)
    say(f"export: {config}: {len(metrics)} metric{'s' if len(metrics) != 1 else ''} ok", quiet)


def _wait(stop: threading.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``stop``, in steps of at most half a second (see
    _stop_on_signals); whether it was set."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if stop.wait(min(0.5, left)):
            return True
    return stop.is_set()


class _Stopped(BaseException):
    """SIGTERM or SIGINT during work the main thread may leave half done (a textfile
    write: its temp file is removed, the textfile stays as it was)."""


class _Stop(threading.Event):
    """Set by SIGTERM or SIGINT; within ``interruptible()`` the signal also stops the main
    thread's work at once (_Stopped), however long that work would take."""

    _interruptible = False

    def handler(self, *_args: object) -> None:
        first = not self.is_set()
        self.set()
        if first and self._interruptible:
            raise _Stopped

    @contextlib.contextmanager
    def interruptible(self):
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False


@contextlib.contextmanager
def _stop_on_signals():
    """A _Stop set by SIGTERM or SIGINT.  The main thread waits on it in short steps: a
    signal the kernel hands to another thread (a connection's) only marks itself for the
    main thread, which runs the handler when it next wakes; a long wait used to leave a
    SIGTERM unanswered for as long as the wait.  (A scrape in progress runs in a daemon
    thread, see export.serve: it never holds up the exit.)"""
    stop = _Stop()
    old = {sig: signal.signal(sig, stop.handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    except _Stopped:
        pass
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _keep_textfile(exporter, textfile: str, every: float, stop: _Stop, quiet: bool) -> None:
    """Write the textfile every ``every`` seconds until stopped (a signal during a write
    abandons it); a write that fails is said, counted
    (bpfmap_export_textfile_write_errors_total) and tried again at the next interval."""
    from ..export import write_textfile

    say(f"export: writing {textfile} every {every:g} s", quiet)
    while True:
        try:
            with stop.interruptible():
                if stop.is_set():
                    return
                write_textfile(exporter, textfile)
        except BpfmapError as err:
            exporter.textfile_errors += 1
            say(f"{worded(err)} (trying again in {every:g} s)")
        if _wait(stop, every):
            return
