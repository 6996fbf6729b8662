"""The two threads bpfmap runs beside the main one.  ctypes releases the GIL during
bpf(2), so the kernel works on one batch while Python formats or parses the next.

- ``prefetch``: a dump reads one batch ahead;
- ``WriterThread``: a bulk load hands batches to a thread that writes them in order.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..errors import BpfmapError, amended

if TYPE_CHECKING:
    import queue

T = TypeVar("T")


class MapWriter(Protocol):
    """What the writer thread needs of a map (bpfmap.Map has it)."""

    def update_batch(self, keys: bytes, values: bytes, count: int, mode: Any = ...) -> int: ...


def prefetch(it: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Run ``it`` in a thread, ``depth`` items ahead: ctypes releases the GIL during
    bpf(2), so the kernel fills the next batch while the caller formats this one.

    When the caller stops early, the thread is told to stop and joined before this
    generator returns, so it never touches the map's fd after the caller closes it."""
    ready: deque[Any] = deque()  # the items read ahead (a deque and a condition: no queue module to load)
    cond = threading.Condition()
    stopped = False
    done = object()

    def put(item: object) -> bool:
        with cond:
            while len(ready) >= depth and not stopped:
                cond.wait()
            if stopped:
                return False
            ready.append(item)
            cond.notify()
            return True

    def run() -> None:
        try:
            while not stopped:
                try:
                    item = next(it)
                except StopIteration:
                    put(done)
                    return
                if not put(item):
                    return
        except BaseException as exc:  # handed to the caller
            put(_Raised(exc))

    thread = threading.Thread(target=run, name="bpfmap-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            with cond:
                while not ready:
                    cond.wait()
                item = ready.popleft()
                cond.notify()
            if item is done:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        with cond:
            stopped = True
            cond.notify()
        thread.join()


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class WriterThread:
    """One thread that writes batches in order and counts exactly what the kernel took."""

    def __init__(self, m: MapWriter, mode: str) -> None:
        self.map, self.mode = m, mode
        self.written = 0
        self.error: BaseException | None = None
        import queue  # here: a dump's start-up needs neither it nor signal

        self._q: queue.Queue[tuple[bytes, bytes, int] | None] = queue.Queue(1)
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bpfmap-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import signal

        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # Ctrl-C goes to the main thread
        while True:
            item = self._q.get()
            if item is None or self._abort.is_set():
                return
            if self.error is not None:
                continue  # drain what was queued after a failure
            keys, values, count = item
            try:
                self.written += self.map.update_batch(keys, values, count, self.mode)
            except BaseException as err:
                self.written += getattr(err, "done", 0)
                self.error = err

    def submit(self, keys: bytes, values: bytes, count: int) -> None:
        self._raise()
        self._q.put((keys, values, count))

    def close(self, abort: bool = False) -> None:
        if abort:
            self._abort.set()
        self._q.put(None)
        self._thread.join()
        if not abort:
            self._raise()

    def _raise(self) -> None:
        """Raise the writer's error, saying (and carrying as ``written``) how many entries
        went in: nothing is written after an error, so the count is final."""
        if self.error is not None:
            err, self.error = self.error, None
            if isinstance(err, BpfmapError):
                n = self.written
                raise amended(err, f"; {n} entries written", written=n) from err
            raise err
