"""Files the user names as input (layout files, C headers, BPF objects), read whole but
bounded: a device (``/dev/zero``), a FIFO or a directory is refused before anything is
read, and a regular file over the limit is refused by its size, so a wrong path is a
one-line usage error, never a read without end.  (Streams, where a stream makes sense:
``update --from``, are read line by line with a bound per line, in bulk.py.)"""

from __future__ import annotations

import os
import stat

from .errors import UsageError, quote

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
