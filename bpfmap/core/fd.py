"""Owning a file descriptor."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self


class FdOwner:
    """Owns a file descriptor: ``fileno``, ``close``, a context manager, closed when collected."""

    _fd: int
    ref: str

    def fileno(self) -> int:
        if self._fd < 0:
            raise ValueError(f"{self.ref}: already closed")
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
