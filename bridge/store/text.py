"""Text the store can always hold: what a failure says is recorded whatever it quotes.

A message may quote a provider's file name that was not valid UTF-8 (Python keeps such bytes as
lone surrogates, ``surrogateescape``), or a NUL character; SQLite's and PostgreSQL's drivers
refuse both, and a failure whose text cannot be stored would never be recorded. ``storable``
escapes them (``\\xff`` for an undecodable byte, ``\\x00`` for NUL, ``\\udXXX`` for any other
lone surrogate) and cuts the text to the column's length. Pure: no I/O; it decides nothing
about what a message says.
"""

from __future__ import annotations

import re

MAX_CHARS = 4000  # the longest error or event detail kept

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    char = match[0]
    code = ord(char)
    if code == 0:
        return "\\x00"
    if 0xDC80 <= code <= 0xDCFF:  # a byte surrogateescape kept: show the byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def storable(text: str, limit: int | None = MAX_CHARS) -> str:
    """``text`` with what no database column takes escaped, at most ``limit`` characters
    (``None``: uncut). Text that is already storable comes back unchanged (but cut)."""
    escaped = _UNSTORABLE.sub(_escape, text)
    if limit is not None and len(escaped) > limit:
        escaped = escaped[: limit - 1] + "…"
    return escaped
