"""Which references name a saved file (``FILE``) or a map in one (``FILE:NAME``), told by
the file's magic number alone: what ``Map.open`` asks of every reference, kept apart from
the reader (``core/saved.py``) so that opening a pin does not load it."""

from __future__ import annotations

MAGIC = b"\x89BPFMAP\r\n\x1a\n"  # PNG's trick: a high byte, CR LF, ^Z and LF catch text-mode damage


def is_saved(path: str) -> bool:
    """Whether ``path`` is a regular file that starts with a saved file's magic number
    (a pin on a bpffs never is: it cannot be read as a file)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def split_ref(ref: str) -> tuple[str, str | None] | None:
    """(file, map name or None) when ``ref`` names a saved file (``FILE``) or a map in one
    (``FILE:NAME``); None otherwise.  ``X:NAME`` is a map in a file only when X is a saved
    file, so pin paths that hold ``:`` still mean their pins."""
    if is_saved(ref):
        return ref, None
    at = ref.rfind(":")
    while at > 0:
        if is_saved(ref[:at]):
            return ref[:at], ref[at + 1 :]
        at = ref.rfind(":", 0, at)
    return None
