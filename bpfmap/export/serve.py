"""Serving the metrics: one exposition (text 0.0.4 or OpenMetrics), an HTTP server for
scrapers, and the node_exporter textfile."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import socketserver
import stat
import tempfile
import threading
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from .. import _sys
from ..errors import KernelError, Param, UsageError, quote, words
from .collector import Exporter
from .exposition import CONTENT_TYPE

if TYPE_CHECKING:
    from concurrent.futures import Future
    from wsgiref.simple_server import WSGIServer

SPOOL = 8 << 20  # a scrape's bytes held in memory before they spill to a temp file


def registry_for(exporter: Exporter) -> Any:  # a prometheus_client CollectorRegistry
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(exporter)
    return registry


def scrape(exporter: Exporter, openmetrics: bool = False) -> IO[bytes]:
    """One scrape in a file positioned at its start: the text format 0.0.4 written by
    bpfmap (export.exposition), or OpenMetrics through prometheus-client.  The file is in
    memory up to SPOOL bytes, on disk past that, so a big map's scrape holds little."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL)
    try:
        if openmetrics:
            from prometheus_client.openmetrics.exposition import generate_latest as om_latest

            out.write(om_latest(registry_for(exporter)))  # type: ignore[no-untyped-call]  # prometheus-client has no annotations
        else:
            exporter.scrape(out)
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out


def exposition(exporter: Exporter, openmetrics: bool = False) -> bytes:
    """One scrape, in the text format 0.0.4 (or OpenMetrics), as bytes."""
    with scrape(exporter, openmetrics) as f:
        return f.read()


OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def wsgi_app(exporter: Exporter) -> Callable[[dict[str, Any], Any], Any]:
    """The /metrics endpoint: OpenMetrics when the Accept header asks for it, else text
    0.0.4; gzip when the scraper accepts it.  Each scrape is made whole, one at a time,
    by one worker thread (always the same: the memory a scrape used is reused by the
    next, not left in another thread's malloc arena), and then sent in chunks by the
    connection's thread, so a slow client never holds another scrape up."""
    import zlib

    worker = _Worker("bpfmap-scrape")

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/favicon.ico":
            start_response("200 OK", [])
            return [b""]
        accept = environ.get("HTTP_ACCEPT", "")
        om = "application/openmetrics-text" in accept
        body = worker.submit(scrape, exporter, om).result()
        gzip = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
        headers = [("Content-Type", OPENMETRICS_TYPE if om else CONTENT_TYPE)]
        if gzip:
            headers.append(("Content-Encoding", "gzip"))
        else:
            body.seek(0, os.SEEK_END)
            headers.append(("Content-Length", str(body.tell())))
            body.seek(0)
        start_response("200 OK", headers)
        return _chunks(body, zlib.compressobj(1, zlib.DEFLATED, 31) if gzip else None)

    return app


class _Worker:
    """One daemon thread running the jobs submitted to it in turn.  A daemon, unlike a
    ThreadPoolExecutor's (which the interpreter joins at exit): a scrape under way
    never holds up the process's exit after SIGTERM."""

    def __init__(self, name: str) -> None:
        import queue

        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        from concurrent.futures import Future

        future: Future[Any] = Future()
        self._jobs.put((future, fn, args))
        return future

    def _run(self) -> None:
        while True:
            future, fn, args = self._jobs.get()
            try:
                future.set_result(fn(*args))
            except BaseException as err:  # the connection's thread raises it
                future.set_exception(err)


def _chunks(body: Any, gz: Any) -> Any:
    try:
        while True:
            data = body.read(1 << 18)
            if not data:
                break
            yield gz.compress(data) if gz is not None else data
        if gz is not None:
            yield gz.flush()
    finally:
        body.close()


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``:PORT`` (loopback) -> (host, port)."""
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:([0-9]{1,5})|([A-Za-z0-9.-]*):([0-9]{1,5})", text.strip())
    if not m:
        raise UsageError(
            words(
                Param("listen"),
                f" {quote(text)}: write HOST:PORT with an address or host name and ASCII digits, "
                "e.g. 127.0.0.1:9435 or [::1]:9435",
            )
        )
    host = m.group(1) or m.group(3) or "127.0.0.1"
    port = int(m.group(2) or m.group(4))
    if not 0 < port < 65536:
        raise UsageError(words(Param("listen"), f" {quote(text)}: port {port} is not 1..65535"))
    return host, port


LISTEN_BACKLOG = 128  # connections the kernel queues before accept (socketserver's default is 5)
CLIENT_TIMEOUT = 10.0  # seconds a client may take to send its request or read the answer


def long_running() -> None:
    """This process scrapes again and again (a server, a textfile kept fresh): each scrape
    allocates and frees the same large buffers (a 100,000-series scrape: ~8 MB of text,
    its sums and label bytes), and glibc's malloc would give most of them back to the
    system and fault them in again at the next scrape (~4,000 page faults, ~10% of the
    scrape's CPU here).  Keep them in the heap instead: the process's RSS stays at its
    peak between scrapes, which a server's does anyway.  A no-op without glibc.  It
    changes malloc for the whole process, so the library never calls it on its own:
    ``bpfmap export`` does, for --listen and --textfile; a program serving metrics
    with :func:`serve` may."""
    _sys.retain_heap()


def serve(exporter: Exporter, host: str, port: int) -> WSGIServer:
    """Serve /metrics on HOST:PORT in a background thread (plain text, or OpenMetrics when
    the scraper asks for it), a thread per connection with a listen backlog of
    LISTEN_BACKLOG and CLIENT_TIMEOUT seconds for a client to send its request; returns
    the server (``shutdown()`` then ``server_close()`` stop it within a second)."""
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Handler(WSGIRequestHandler):
        timeout = CLIENT_TIMEOUT

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
            pass

    class Server(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True  # a slow client never holds the exit
        request_queue_size = LISTEN_BACKLOG
        allow_reuse_address = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that timed out or hung up: its connection is closed, nothing to say

    try:
        Server.address_family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        httpd = make_server(host, port, wsgi_app(exporter), Server, handler_class=Handler)
    except OSError as err:
        raise KernelError(f"export: cannot listen on {host}:{port}: {err.strerror or err}", err.errno or 0) from None
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.25}, daemon=True)
    thread.start()
    return httpd


def check_textfile(path: str) -> None:
    """Refuse a textfile path that cannot be written safely: an empty one, a missing
    directory, or a directory anyone may write to without the sticky bit (anyone could
    then replace the file between our write and node_exporter's read)."""
    if not path:
        raise UsageError(
            words(Param("textfile"), ": the path is empty (an unset variable?); give a file such as DIR/bpfmap.prom")
        )
    directory = os.path.dirname(os.path.abspath(path))
    textfile = words(Param("textfile"), f" {quote(path, bare=True)}")
    try:
        st = os.stat(directory)
    except OSError as err:
        raise UsageError(words(textfile, f": directory {directory}: {err.strerror}")) from None
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(words(textfile, f": {directory} is not a directory"))
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        raise UsageError(
            words(
                textfile,
                f": {directory} is writable by anyone and not sticky; "
                f"write into a directory only trusted users can write to (or chmod +t {directory})",
            )
        )
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return  # a new file
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        # the file is renamed over its path: a device would be replaced by it (a directory
        # refuses the rename: a failed write, counted and tried again)
        raise UsageError(words(textfile, ": it is a device, pipe or socket, not a file; give a file's path"))


def write_textfile(exporter: Exporter, path: str) -> None:
    """The exposition written to ``path`` atomically, as node_exporter's textfile
    collector wants: a new temp file beside it (mkstemp: a name nobody can guess, made
    with O_EXCL, never through a symlink), written, fsynced, made world-readable and
    renamed over ``path``."""
    check_textfile(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    except OSError as err:
        raise _cannot_write(path, err) from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)
            exporter.scrape(f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise _cannot_write(path, err) from None
        raise


def _cannot_write(path: str, err: OSError) -> KernelError:
    return KernelError(f"export: cannot write {path}: {err.strerror or err}", err.errno or 0)
