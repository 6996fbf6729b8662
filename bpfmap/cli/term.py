"""Terminal helpers of the verbs: a progress bar on stderr for long operations (shown only
when stderr is a terminal) and single key presses for live screens (colour and the
rich console live in output.py)."""

import os
import sys
import time
from typing import Any, Optional

from ..output import console


class Progress:
    """A progress bar on stderr, drawn only when stderr is a terminal and the operation
    has run for ``delay`` seconds (quick commands never flash a bar).  ``total`` None
    shows a count and a rate.  Cheap to call per batch; a no-op when not shown."""

    def __init__(
        self,
        what: str,
        total: Optional[int] = None,
        unit: str = "entries",
        enabled: bool = True,
        delay: float | None = None,
    ) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.enabled = enabled and _stderr_tty()
        self.done = 0
        self._start = time.monotonic()
        # BPFMAP_PROGRESS_DELAY: seconds before the bar shows (tests set 0)
        self._delay = delay if delay is not None else float(os.environ.get("BPFMAP_PROGRESS_DELAY", "0.5"))
        self._bar: Any = None  # a rich Progress once shown
        self._task: Any = None

    def advance(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        if self._bar is None:
            if time.monotonic() - self._start < self._delay:
                return
            self._open()
        self._bar.update(self._task, completed=self.done)

    def count_batches(self, batches, raw: bool = False):
        """Pass batches through, counting entries: decoded (keys, values), or ``raw``
        (keys, values, count) as the kernel gives them."""
        for batch in batches:
            self.advance(batch[2] if raw else len(batch[0]))
            yield batch

    def _open(self) -> None:
        from rich import progress as rp

        columns: list[rp.ProgressColumn] = [rp.TextColumn("{task.description}")]
        if self.total is not None:
            columns += [rp.BarColumn(), rp.TaskProgressColumn()]
        else:
            columns += [rp.SpinnerColumn()]
        if self.unit == "bytes":
            columns += [rp.DownloadColumn(), rp.TransferSpeedColumn()]
        else:
            columns += [
                rp.MofNCompleteColumn() if self.total is not None else rp.TextColumn("{task.completed:,.0f}"),
                rp.TextColumn(self.unit),
            ]
        columns += [rp.TimeElapsedColumn()]
        self._bar = rp.Progress(*columns, console=console(sys.stderr), transient=True)
        self._task = self._bar.add_task(self.what, total=self.total, completed=self.done)
        self._bar.start()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _stderr_tty() -> bool:
    try:
        return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


class ReadCounter:
    """A text stream whose reads advance a Progress by the characters read (about the
    bytes, for the ASCII that dumps are made of)."""

    def __init__(self, stream, progress: Progress) -> None:
        self._stream, self._progress = stream, progress

    def read(self, size: int = -1) -> str:
        text = self._stream.read(size)
        self._progress.advance(len(text))
        return text

    def readlines(self, hint: int = -1) -> list[str]:
        lines = self._stream.readlines(hint)
        self._progress.advance(sum(map(len, lines)))
        return lines

    def readline(self, size: int = -1) -> str:
        line = self._stream.readline(size)
        self._progress.advance(len(line))
        return line

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class Keys:
    """Single key presses from a terminal stdin (cbreak mode, restored on exit)."""

    def __init__(self) -> None:
        self.fd: Optional[int] = None
        self._saved: Any = None
        try:
            if sys.stdin.isatty():
                import termios
                import tty

                self.fd = sys.stdin.fileno()
                self._saved = termios.tcgetattr(self.fd)
                tty.setcbreak(self.fd)
        except (OSError, ValueError, AttributeError):
            self.fd = None

    def wait(self, seconds: float) -> bytes:
        """Sleep ``seconds``, or less if a key is pressed; returns the key (b"" if none)."""
        import select

        if self.fd is None:
            time.sleep(max(0.0, seconds))
            return b""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, seconds))
        return os.read(self.fd, 1) if ready else b""

    def close(self) -> None:
        if self.fd is not None and self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)


def every(interval: float, count: Optional[int], step: Any, keys: Optional[Keys] = None) -> None:
    """Run ``step()`` now and then every ``interval`` seconds (a steady clock: a slow step
    does not push the next one back), ``count`` times (None: until stopped); with
    ``keys``, ``q`` stops it between steps."""
    n = 0
    deadline = time.monotonic()
    while True:
        step()
        n += 1
        if count is not None and n >= count:
            return
        deadline += interval
        if keys is None:
            time.sleep(max(0.0, deadline - time.monotonic()))
            continue
        while (left := deadline - time.monotonic()) > 0:
            if keys.wait(left) in (b"q", b"Q"):
                return
