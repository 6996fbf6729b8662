"""How text output writes a string so that every text reader reads it back the same."""

from __future__ import annotations

import re

# A string that text output cannot write as it is and read back the same: blank at an
# end (fields are stripped), a control character (tab and newline end fields and
# lines), a comma or bracket (they split and nest fields), a quote (JSON starts there).
_TEXT_UNSAFE = re.compile(r'\A\s|\s\Z|[\x00-\x1f\x7f,\[\]{}"]')

try:  # JSON string escaping that keeps non-ASCII text as it is, at C speed
    from _json import encode_basestring as _json_text_str
except ImportError:  # pragma: no cover  (Pythons without the C accelerator)
    from json.encoder import py_encode_basestring as _json_text_str


def text_string(v: str) -> str:
    """A string as text output writes it: as it is where it reads back as itself, else
    quoted as a JSON string (``"a,b"``, ``" lead"``, ``"tab\\there"``), which every text
    reader (update, --from, lookup) unquotes."""
    return v if _TEXT_UNSAFE.search(v) is None else _json_text_str(v)
