"""Draining a map into an output without losing an entry (``dump --delete``).

A drain reads and deletes a batch in one syscall, then writes it.  From that moment
the batch exists only in this process, so every way the write can fail is handled:

- the output refuses (a full disk, EIO, a reader that closed its pipe): the entries
  that did not reach it are put back in the map (BPF_NOEXIST, so a key a program
  re-created meanwhile is not overwritten; those entries, and any the map refuses,
  go to a rescue file instead, in the hex text that ``update --from`` loads);
- for a pipe, "reached" means read: what still sits unread in the pipe when the reader
  goes away (FIONREAD) was not delivered either;
- SIGINT/SIGTERM (see :class:`HeldSignals`) wait until the batch in hand is written;
  a second one stops the write and puts the rest back;
- SIGKILL cannot be caught: at most the batch in hand is lost, which ``size`` bounds.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import stat
import struct
import sys
import termios
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import IO, TYPE_CHECKING

from .. import _sys
from ..errors import EXIT_INTERRUPTED, EXIT_SYSTEM, BpfmapError

if TYPE_CHECKING:
    from ..core.maps import Map

_F_GETPIPE_SZ = 1032


class DeliveryError(BpfmapError):
    """Entries drained from a map could not all be delivered.  ``delivered`` entries were
    written, ``restored`` put back in the map, ``rescued`` saved to ``rescue_path``.
    ``cause`` is the OSError of the output (None when interrupted)."""

    exit_code = EXIT_SYSTEM

    def __init__(
        self,
        message: str,
        delivered: int,
        restored: int,
        rescued: int,
        rescue_path: str | None,
        cause: BaseException | None,
    ) -> None:
        super().__init__(message)
        self.delivered, self.restored, self.rescued = delivered, restored, rescued
        self.rescue_path, self.cause = rescue_path, cause

    @property
    def reader_gone(self) -> bool:
        """The output was a pipe whose reader went away (``| head``)."""
        return isinstance(self.cause, OSError) and self.cause.errno == errno.EPIPE


class DrainInterrupted(DeliveryError):
    """A second SIGINT/SIGTERM stopped the write of the batch in hand."""

    exit_code = EXIT_INTERRUPTED


class Sink:
    """Bytes to a stream's file descriptor, counting what write(2) took.  A stream without
    one (an in-memory stream in tests) is written through, and counts as delivered."""

    def __init__(self, stream: IO[str]) -> None:
        stream.flush()
        self.written = 0
        self._stream = stream
        self._encoding = getattr(stream, "encoding", None) or "utf-8"
        self._errors = getattr(stream, "errors", None) or "strict"
        try:
            self._fd: int | None = stream.fileno()
            self._pipe = stat.S_ISFIFO(os.fstat(self._fd).st_mode)
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
            self._fd, self._pipe = None, False

    def encode(self, text: str) -> bytes:
        return text.encode(self._encoding, self._errors)

    def write(self, data: bytes) -> None:
        """Write all of ``data``; on an error ``written`` counts what went out before it."""
        if self._fd is None:
            self._stream.write(data.decode(self._encoding, self._errors))
            self._stream.flush()
            self.written += len(data)
            return
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            self.written += n
            view = view[n:]

    def try_write(self, data: bytes, timeout: float) -> bool:
        """Write ``data`` if the output takes it within ``timeout`` seconds (poll, then
        writes no bigger than the room poll promised); whether all of it went."""
        if self._fd is None:
            self.write(data)
            return True
        import select

        poller = select.poll()
        poller.register(self._fd, select.POLLOUT)
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                return False
            try:
                n = os.write(self._fd, view[: select.PIPE_BUF])  # POLLOUT on a pipe: PIPE_BUF bytes free
            except OSError:
                return False
            self.written += n
            view = view[n:]
        return True

    def pipe_size(self) -> int:
        if not self._pipe:
            return 0
        try:
            return fcntl.fcntl(self._fd, _F_GETPIPE_SZ)  # type: ignore[arg-type]
        except OSError:
            return 1 << 20  # the most an unprivileged reader may set

    def unread(self) -> int:
        """Bytes written that no reader has taken yet (still in the pipe)."""
        if not self._pipe:
            return 0
        try:
            got = fcntl.ioctl(self._fd, termios.FIONREAD, b"\0\0\0\0")  # type: ignore[arg-type]
            waiting: int = struct.unpack("i", got)[0]
            return min(waiting, self.written)
        except OSError:
            return min(self.pipe_size(), self.written)  # not knowing, assume the pipe was full

    def settled(self) -> int:
        """Bytes that are surely past the point where a failing reader could lose them."""
        return self.written - self.pipe_size()


class _Batch:
    """Entries drained and not yet known to be delivered: raw keys and values, and where
    each entry ends in the output (None until formatted)."""

    __slots__ = ("keys", "values", "count", "ends", "data")

    def __init__(self, keys: bytes, values: bytes, count: int) -> None:
        self.keys, self.values, self.count = keys, values, count
        self.ends: list[int] | None = None
        self.data = b""  # the output bytes of the entries, ending at ends[-1]


Formatter = Callable[[bytes, bytes, int], Sequence[str]]


def drain(
    m: Map,
    texts: Formatter,
    sink: Sink,
    end: Callable[[], str] = lambda: "",
    size: int | None = None,
    stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int], None] | None = None,
    batches: Iterable[tuple[bytes, bytes, int]] | None = None,
    action: str = "drain",
) -> int:
    """Drain ``m`` into ``sink``: ``texts(keys, values, count)`` gives each entry's text of
    a raw batch (see Map.batches), ``end()`` what closes the output.  ``stop`` is asked
    after each batch is written (HeldSignals.caught).  Returns how many entries were
    written.  ``batches``: the raw batches already taken out of ``m`` another way (the
    entries a filtered delete removed), instead of every entry; ``action`` starts the
    error's message.

    Raises DeliveryError (DrainInterrupted) when the output fails (or a second signal
    comes) after entries were deleted: the undelivered ones are put back in the map
    first, and the message says how many went where.  Errors before any entry was
    taken (a map that cannot be drained) raise as from Map.batches."""
    pending: deque[_Batch] = deque()  # drained, not yet surely delivered
    delivered = 0
    try:
        for keys, values, count in m.batches(delete=True, size=size) if batches is None else batches:
            batch = _Batch(keys, values, count)
            pending.append(batch)
            batch.data, batch.ends = _encode(sink, texts(keys, values, count))
            sink.write(batch.data)
            delivered += _settle(pending, sink.settled())
            if progress is not None:
                progress(count)
            if stop():
                break
        sink.write(sink.encode(end()))
        return delivered + sum(b.count for b in pending)
    except BaseException as exc:
        if not pending:
            raise
        raise _put_back(m, pending, sink, exc, delivered, action) from exc


def _encode(sink: Sink, texts: Sequence[str]) -> tuple[bytes, list[int]]:
    pos = sink.written
    ends = []
    parts = []
    for text in texts:
        b = sink.encode(text)
        pos += len(b)
        ends.append(pos)
        parts.append(b)
    return b"".join(parts), ends


def _settle(pending: deque[_Batch], settled: int) -> int:
    """Forget the batches wholly delivered; returns how many entries that was."""
    n = 0
    while pending and pending[0].ends is not None and (not pending[0].ends or pending[0].ends[-1] <= settled):
        n += pending.popleft().count
    return n


def _put_back(
    m: Map, pending: deque[_Batch], sink: Sink, exc: BaseException, delivered: int, action: str = "drain"
) -> DeliveryError:
    """Put the undelivered entries back (BPF_NOEXIST), rescue what the map refuses; the
    error that says so.  ``delivered``: entries written before the pending batches.

    What sits in a pipe is delivered while its reader lives (it reads on after we go),
    lost when the reader has gone (EPIPE).  An entry cut in two by an interrupted write
    is finished if the output takes the rest within a second, else put back."""
    reader_gone = isinstance(exc, OSError) and exc.errno == errno.EPIPE
    if not reader_gone and not isinstance(exc, OSError):
        _finish_entry(pending[-1], sink)
    reached = sink.written - sink.unread() if reader_gone else sink.written
    ks, vs = m.key_size, m.shape.entry
    fd = m.fileno()
    restored = 0
    refused: list[tuple[bytes, bytes, str]] = []
    for batch in pending:
        for i in range(batch.count):
            if batch.ends is not None and batch.ends[i] <= reached:
                delivered += 1
                continue
            key, value = batch.keys[i * ks : (i + 1) * ks], batch.values[i * vs : (i + 1) * vs]
            try:
                _sys.map_elem(_sys.Cmd.MAP_UPDATE_ELEM, fd, _sys.buffer(key), _sys.buffer(value), _sys.BPF_NOEXIST)
                restored += 1
            except OSError as err:
                why = "a program re-created the key" if err.errno == errno.EEXIST else os.strerror(err.errno or 0)
                refused.append((key, value, why))
    rescue_path, rescue_error = None, None
    if refused:
        try:
            rescue_path = _rescue(m, refused)
        except OSError as err:
            rescue_error = err
    interrupted = not isinstance(exc, OSError)
    if interrupted:
        what = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"failed ({type(exc).__name__}: {exc})"
    elif exc.errno == errno.EPIPE:  # type: ignore[attr-defined]
        what = "the reader closed the output"
    else:
        what = f"writing the output failed ({exc.strerror or exc})"  # type: ignore[attr-defined]
    msg = f"{action} {m.ref}: {what}; {delivered} entries were written"
    if restored:
        msg += f", {restored} not written were put back in the map"
    if refused and rescue_path:
        reasons = sorted({why for _k, _v, why in refused})
        msg += (
            f", {len(refused)} could not be put back ({'; '.join(reasons)}) and were saved to {rescue_path}; "
            f"restore them with 'bpfmap update {m.ref} --from {rescue_path} --layout -:-'"
        )
    elif refused:
        msg += f"; {len(refused)} could not be put back and saving them failed too ({rescue_error}): they are lost"
    cls = DrainInterrupted if isinstance(exc, KeyboardInterrupt) else DeliveryError
    return cls(msg, delivered, restored, len(refused), rescue_path, None if interrupted else exc)


def _finish_entry(batch: _Batch, sink: Sink) -> None:
    """Complete the entry a write stopped in the middle of, if the output takes it soon."""
    if not batch.ends:
        return
    base = batch.ends[-1] - len(batch.data)  # where the batch's first byte went
    cut, begin = sink.written, base
    for end in batch.ends:
        if begin < cut < end:
            sink.try_write(batch.data[cut - base : end - base], timeout=1.0)
            return
        begin = end


def _rescue(m: Map, entries: list[tuple[bytes, bytes, str]]) -> str:
    """Write ``entries`` as hex text lines (KEY<TAB>VALUE, per-CPU KEY<TAB>CPU0<TAB>...,
    what ``dump --layout -:-`` writes) to a new file; returns its path.  The directory:
    $BPFMAP_RESCUE_DIR, else the current one, else the temp directory."""
    import tempfile

    def hexb(b: bytes) -> str:
        return b.hex(" ")

    lines = []
    for key, value, _why in entries:
        slots = m.shape.split(value)
        lines.append("\t".join([hexb(key), *map(hexb, slots if isinstance(slots, list) else [slots])]) + "\n")
    name = f"bpfmap-rescue-{time.strftime('%Y%m%d-%H%M%S')}-"
    dirs = [os.environ.get("BPFMAP_RESCUE_DIR"), os.getcwd(), tempfile.gettempdir()]
    last: OSError | None = None
    for d in filter(None, dirs):
        try:
            fd, path = tempfile.mkstemp(prefix=name, suffix=".txt", dir=d)
        except OSError as err:
            last = err
            continue
        try:
            with os.fdopen(fd, "w") as f:
                f.writelines(lines)
                f.flush()
                os.fsync(f.fileno())
            return path
        except OSError as err:
            last = err
            try:
                os.unlink(path)
            except OSError:
                pass
    raise last or OSError(errno.ENOENT, "no directory to write a rescue file")


class HeldSignals:
    """Within ``with``, SIGINT and SIGTERM are held: the first sets ``caught`` (the
    signal number) and prints ``note`` on stderr; the code checks ``caught`` at a safe
    point.  A second one raises KeyboardInterrupt there and then; later ones are
    ignored, so that the cleanup the second one starts is not cut short.  Outside the
    main thread this does nothing (Python runs handlers only there)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, note: str = "") -> None:
        self.caught: int | None = None
        self.note = note
        self._seen = 0
        self._old: dict[int, object] = {}

    def _handler(self, signum: int, _frame: object) -> None:
        self._seen += 1
        if self._seen == 2:
            raise KeyboardInterrupt()
        if self._seen > 2:
            return
        self.caught = signum
        if self.note:
            try:
                sys.stderr.write(f"bpfmap: {self.note}\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def __enter__(self) -> HeldSignals:
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
