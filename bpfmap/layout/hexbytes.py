"""Hex bytes as users type them, for keys and values without a layout and for hex[N] fields."""

from __future__ import annotations

import re

_HEX_TOKEN = re.compile(r"[0-9A-Fa-f]*")


def hex_bytes(text: str) -> bytes | None:
    """``01 00 00 00``, ``0x01000000``, ``01:00:00:00`` (or ``-`` separated) as bytes: two
    hex digits per byte, separators only between bytes; None if ``text`` is not that."""
    s = text.strip()
    if s[:2].lower() == "0x":
        s = s[2:]
    out = bytearray()
    for tok in re.split(r"[\s:\-]+", s):
        if len(tok) % 2 or not _HEX_TOKEN.fullmatch(tok):
            return None
        out += bytes.fromhex(tok)
    return bytes(out)
