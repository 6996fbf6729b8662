"""The export verb: map contents as Prometheus metrics (library: bpfmap.export)."""

import signal
import sys
import threading
from typing import Annotated, Optional

import typer

from ..errors import BpfmapError, UsageError, amended
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
    from ..export import ConfigError, Exporter, exposition, parse_listen, read_config, serve, write_textfile

    check_seconds(interval, "--interval")
    if interval is not None and textfile is None:
        raise UsageError("--interval goes with --textfile")
    if sum(bool(x) for x in (check, listen is not None, textfile is not None and not once)) > 1 or (check and once):
        raise UsageError("give one of --check, --once, --listen and --textfile")
    if openmetrics and not once:
        raise UsageError("--openmetrics goes with --once (the server answers each scraper in the format it asks)")
    host_port = parse_listen(listen or DEFAULT_LISTEN)
    metrics = read_config(config)
    exporter = Exporter(metrics, log=lambda text: say(text, quiet))

    if check:
        for metric in metrics:
            try:
                _family, count, max_entries = exporter.read(metric)
            except ConfigError:
                raise
            except BpfmapError as err:  # the map's own error (exit code), naming the metric
                raise amended(err, f" (metric {metric.name})") from None
            say(f"export: {metric.name}: {metric.map}: {count} entries (max_entries {max_entries})", quiet)
        say(f"export: {config}: {len(metrics)} metric{'s' if len(metrics) != 1 else ''} ok", quiet)
        return
    if once:
        if textfile is not None:
            write_textfile(exporter, textfile)
        else:
            sys.stdout.buffer.write(exposition(exporter, openmetrics))
            sys.stdout.flush()
        if any(exporter.errors.values()):
            raise typer.Exit(3)
        return

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if textfile is not None:
        every = interval if interval is not None else 15.0
        say(f"export: writing {textfile} every {every:g} s", quiet)
        while not stop.is_set():
            write_textfile(exporter, textfile)
            stop.wait(every)
        return
    host, port = host_port
    server = serve(exporter, host, port)
    shown = f"[{host}]" if ":" in host else host
    say(f"export: serving {len(metrics)} metrics on http://{shown}:{port}/metrics", quiet)
    try:
        while not stop.wait(3600):
            pass
    finally:
        server.shutdown()
