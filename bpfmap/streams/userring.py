"""Writing records into a user ring buffer (BPF_MAP_TYPE_USER_RINGBUF, Linux 6.1): the
producer side, which user space owns, as libbpf's ``user_ring_buffer`` does.

The map's first page holds the consumer position (the kernel's; mapped read-only), the
second the producer position (ours), then the data pages, mapped twice in a row so that a
record that wraps around the end is written in one piece.  Each record is an 8-byte header
(its length, with a busy bit while it is being written) and the data, padded to 8 bytes.
A program reads the records with ``bpf_user_ringbuf_drain``.
"""

from __future__ import annotations

import mmap
import select
import struct
import time
from collections.abc import Callable, Iterable, Iterator

from ..core.maps import Map
from ..errors import MapFull, Param, UsageError, said, translate, words
from ..host.inputs import BoundedLines, LoadError, LongLine, TextSource, line_limit
from ..types import MapType

BUSY = 1 << 31
HDR = 8


class UserRingBuffer:
    """The producer of a user_ringbuf map: :meth:`send` one record or :meth:`send_all`
    many.  Close it (or use ``with``) to unmap the ring."""

    def __init__(self, m: Map) -> None:
        if m.type is not MapType.USER_RINGBUF:
            raise UsageError(
                f"send {m.ref}: {m.type_label} maps take no records from user space; send writes "
                f"to user_ringbuf maps (a ringbuf is read with 'bpfmap events')"
            )
        self.map = m
        self.page = mmap.PAGESIZE
        self.size = m.max_entries
        self.mask = self.size - 1
        try:
            self._cons = mmap.mmap(m.fileno(), self.page, mmap.MAP_SHARED, mmap.PROT_READ, offset=0)
            self._prod = mmap.mmap(
                m.fileno(),
                self.page + 2 * self.size,
                mmap.MAP_SHARED,
                mmap.PROT_READ | mmap.PROT_WRITE,
                offset=self.page,
            )
        except OSError as err:
            raise translate("send", m.ref, err) from err
        self.sent = 0  # records written so far
        self._poll = select.poll()
        self._poll.register(m.fileno(), select.POLLOUT)

    def free(self) -> int:
        """Bytes free in the ring now."""
        cons: int = struct.unpack_from("<Q", self._cons, 0)[0]
        prod: int = struct.unpack_from("<Q", self._prod, 0)[0]
        return self.size - (prod - cons)

    def send(self, record: bytes, timeout: float = 0.0) -> bool:
        """Write one record; when the ring is full, wait up to ``timeout`` seconds for a
        program to drain it.  Returns False if it is still full then."""
        total = (len(record) + HDR + 7) & ~7
        if total > self.size:
            raise UsageError(
                f"send {self.map.ref}: a record of {len(record)} bytes does not fit a ring of {self.size} bytes"
            )
        deadline = time.monotonic() + timeout
        while self.free() < total:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._poll.poll(max(1, int(min(left, 0.1) * 1000)))
        prod = struct.unpack_from("<Q", self._prod, 0)[0]
        at = self.page + (prod & self.mask)
        struct.pack_into("<II", self._prod, at, len(record) | BUSY, 0)
        struct.pack_into("<Q", self._prod, 0, prod + total)  # reserved: the kernel skips it while busy
        self._prod[at + HDR : at + HDR + len(record)] = record  # may run into the second mapping: one piece
        struct.pack_into("<I", self._prod, at, len(record))  # committed
        self.sent += 1
        return True

    def send_all(self, records: Iterable[bytes], timeout: float = 0.0) -> int:
        """Write every record in order; returns how many.  Raises MapFull when the ring
        stays full for ``timeout`` seconds (``sent`` says how many went in)."""
        start = self.sent
        for record in records:
            if not self.send(record, timeout):
                n = self.sent - start
                err = MapFull(
                    words(
                        f"send {self.map.ref}: the ring stayed full for {timeout:g} s after {n} record"
                        f"{'' if n == 1 else 's'} went in; no program drained it (wait longer with ",
                        Param("timeout"),
                        ")",
                    )
                )
                err.done = n
                raise err
        return self.sent - start

    def send_lines(self, stream: TextSource, encode: Callable[[str], bytes], timeout: float = 0.0) -> int:
        """Write a record for every line of ``stream`` that is not blank, made by
        ``encode`` from the line's text, in order; returns how many.  A line ``encode``
        refuses (UsageError) or one longer than a record could be written raises LoadError
        with its number and how many records went in before it, as a bulk load says its
        bad lines; a ring that stays full raises as :meth:`send_all` does."""
        start = self.sent

        def records() -> Iterator[bytes]:
            lines = BoundedLines(stream, line_limit(self.size))
            n = 0
            try:
                for n, line in enumerate(lines, 1):  # noqa: B007  (n: the line a LongLine follows)
                    text = line.rstrip("\r\n")
                    if text.strip():
                        yield encode(text)
            except UsageError as err:
                raise LoadError.at(n, said(err), self.sent - start, ("record", "records")) from None
            except LongLine as long:
                problem = f"longer than {lines.limit:,} characters without a newline, not a record"
                raise LoadError.at(long.line, problem, self.sent - start, ("record", "records")) from None

        return self.send_all(records(), timeout)

    def close(self) -> None:
        for mm in (self._cons, self._prod):
            mm.close()

    def __enter__(self) -> UserRingBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
