"""Files the user names as input (layout files, C headers, BPF objects), read whole but
bounded: a device (``/dev/zero``), a FIFO or a directory is refused before anything is
read, and a regular file over the limit is refused by its size, so a wrong path is a
one-line usage error, never a read without end.  (Streams, where a stream makes sense:
``update --from``, ``send --from``, are opened by open_input and read line by line with
a bound per line: BoundedLines, and LoadError names the line that was bad.)"""

from __future__ import annotations

import os
import stat
import sys
from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol, TextIO

from ..errors import UsageError, Words, quote, words

TEXT_LIMIT = 16 << 20  # layouts and C headers
OBJECT_LIMIT = 256 << 20  # BPF objects (ELF)

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def read_bytes(path: str, what: str, limit: int = OBJECT_LIMIT) -> bytes:
    """The contents of the regular file ``path``, at most ``limit`` bytes; UsageError
    (``what`` names the input: ``C header``, ``layout file``) for anything else."""
    where = f"{what} {quote(path, bare=True)}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # no wait for a FIFO's writer
    except OSError as err:
        raise UsageError(f"{where}: {err.strerror}") from None
    except ValueError:  # a NUL in the path
        raise UsageError(f"{where}: a path cannot hold a NUL byte") from None
    try:
        st = os.fstat(fd)
        for test, kind in _KINDS:
            if test(st.st_mode):
                raise UsageError(f"{where}: is {kind}, not a regular file; give a file")
        if st.st_size > limit:
            raise UsageError(f"{where}: {st.st_size:,} bytes; a {what} over {limit >> 20} MiB is refused")
        chunks = []
        left = limit + 1
        while left > 0:
            try:
                chunk = os.read(fd, min(left, 1 << 20))
            except OSError as err:
                raise UsageError(f"{where}: {err.strerror}") from None
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        if left <= 0:  # /proc-like files report size 0 and may be longer
            raise UsageError(f"{where}: longer than {limit >> 20} MiB; a {what} that big is refused")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: str, what: str, limit: int = TEXT_LIMIT) -> str:
    """As read_bytes, and UTF-8 text without NUL bytes (a binary file is refused)."""
    data = read_bytes(path, what, limit)
    where = f"{what} {quote(path, bare=True)}"
    nul = data.find(b"\0")
    if nul >= 0:
        raise UsageError(f"{where}: a NUL byte at offset {nul}; not a text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(
            f"{where}: byte 0x{data[err.start]:02x} at offset {err.start} is not UTF-8; not a text file"
        ) from None


READ_BYTES = 2 << 20  # what a streamed load reads at once


def open_input(path: str, where: str = "") -> TextIO:
    """The text stream a load reads ``path`` as (``-``: standard input, which the caller
    leaves open): UTF-8, bytes that are not UTF-8 kept as they are (surrogate escapes),
    and no newline translation: a carriage return inside a quoted CSV cell is data, not a
    line end (the line readers take ``\\r\\n`` endings themselves).  UsageError
    (``where``, by default ``input PATH``, then what the system said) when it cannot be
    opened."""
    if path == "-":
        try:
            sys.stdin.reconfigure(newline="", errors="surrogateescape")  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            pass  # not a TextIOWrapper (a test's stdin), or read from already
        return sys.stdin
    try:
        return open(path, encoding="utf-8", errors="surrogateescape", newline="")
    except OSError as err:
        raise UsageError(f"{where or f'input {quote(path, bare=True)}'}: {err.strerror}") from None


class LoadError(UsageError):
    """A bad input line; ``line`` is its number, ``written`` how many entries went in before."""

    def __init__(self, message: str | Words, line: int, written: int) -> None:
        super().__init__(message)
        self.line, self.written = line, written

    def __reduce__(self) -> tuple[Any, ...]:  # copied whole (errors.amended), not from its message alone
        return type(self), (self.args[0], self.line, self.written), self.__dict__

    @classmethod
    def at(
        cls, line: int, problem: str | Words, written: int, what: tuple[str, str] = ("entry", "entries")
    ) -> LoadError:
        """The error of input line ``line``: its ``problem``, and how many of ``what`` (one,
        several) went in before it.  update --from and send --from say a bad line so."""
        return cls(
            words(f"line {line}: ", problem, f"; {written} {what[written != 1]} written before it"), line, written
        )


def line_limit(size: int) -> int:
    """The longest input line taken for an item of ``size`` bytes: generous for the widest
    way to write it (JSON with long field names, ~64 characters a byte), plus 1 MiB."""
    return (1 << 20) + 64 * size


class TextSource(Protocol):
    """What a load reads from: a text stream's ``read``."""

    def read(self, size: int = -1, /) -> str: ...


class LongLine(Exception):
    """A line longer than BoundedLines' limit; ``line`` is its number."""

    def __init__(self, line: int) -> None:
        self.line = line


class BoundedLines:
    """The lines of a text stream (each with its newline), read in chunks, none longer
    than ``limit`` characters: a stream with no newlines (``/dev/zero``, a binary file)
    stops at the limit instead of filling memory.  Iterable (lines the iteration read
    and did not hand out stay for the next call), with ``readlines(hint)``."""

    def __init__(self, stream: TextSource, limit: int) -> None:
        self._stream, self.limit = stream, limit
        self._carry = ""
        self._returned = 0
        self._ahead: deque[str] = deque()  # read by __iter__, not handed out yet

    def read_block(self, hint: int = READ_BYTES) -> tuple[str, int]:
        """(whole lines as one string, how many): at least one line, each ending with a
        newline but the stream's last; ("", 0) at the end."""
        if self._ahead:
            lines = list(self._ahead)
            self._ahead.clear()
            return "".join(lines), len(lines)
        while True:
            chunk = self._stream.read(max(hint, 1))
            if not chunk:
                last, self._carry = self._carry, ""
                self._returned += bool(last)
                return last, int(bool(last))
            text = self._carry + chunk
            cut = text.rfind("\n") + 1
            self._carry = text[cut:]
            if len(self._carry) > self.limit:
                raise LongLine(self._returned + text.count("\n", 0, cut) + 1)
            if cut:
                n = text.count("\n", 0, cut)
                self._returned += n
                return text[:cut], n

    def readlines(self, hint: int = READ_BYTES) -> list[str]:
        return split_lines(self.read_block(hint)[0])

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if not self._ahead:
            self._ahead.extend(self.readlines(65536))
            if not self._ahead:
                raise StopIteration
        return self._ahead.popleft()


def split_lines(block: str) -> list[str]:
    """A block of lines (read_block) as its lines, each with its newline (the last may have none)."""
    parts = block.split("\n")
    last = parts.pop()
    lines = [p + "\n" for p in parts]
    if last:
        lines.append(last)
    return lines
