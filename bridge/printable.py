"""Showing text that came from outside (a provider's file names, paths, server output) on a
terminal, in a log line or in a ticket comment without letting it act: every character that
would not show as itself is written as an escape.

Owns the one rule for which characters are "hidden" (``is_hidden``): control characters (C0,
DEL, C1: Unicode category Cc), format characters (Cf: the bidirectional controls such as
U+202E RIGHT-TO-LEFT OVERRIDE, zero-width spaces and joiners, the BOM), line and paragraph
separators (Zl, Zp), spaces other than the plain space (Zs), private-use and unassigned code
points (Co, Cn) and surrogates (Cs, which is how Python carries the bytes of a file name that
is not valid UTF-8). ``release_xml.limits`` refuses these in names; this module only renders.

Escapes: a byte that is not valid UTF-8 (a surrogate-escaped byte) and a character below
U+0100 as ``\\xNN``, others as ``\\uNNNN`` or ``\\UNNNNNNNN``; newline, carriage return and
tab as ``\\n``, ``\\r``, ``\\t``. A backslash stays as it is, so escaping twice changes
nothing (a message built from escaped names may be escaped again as a whole). Pure: no I/O;
it never decides whether a name is acceptable.
"""

from __future__ import annotations

import logging
import unicodedata

HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})
"""Unicode categories whose characters are never shown as they are (the plain space aside)."""

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def is_hidden(char: str) -> bool:
    """Whether ``char`` (one character) would not show as itself: see the module's rule."""
    return char != " " and unicodedata.category(char) in HIDDEN_CATEGORIES


def escape(text: str | bytes) -> str:
    """``text`` (a name, a path, one line) with every hidden character escaped, newlines too.

    Bytes are read as UTF-8; a byte that is not part of valid UTF-8 shows as ``\\xNN``. A
    ``str`` carrying surrogate-escaped bytes (``os.fsdecode`` of a non-UTF-8 name) shows the
    same way."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    return "".join(_escape_char(c) if is_hidden(c) else c for c in text)


def text(message: str) -> str:
    """``message`` (possibly several lines) escaped like ``escape``, but with its line breaks
    (``\\n``) kept: for multi-line messages on a terminal or a ticket."""
    return "\n".join(escape(line) for line in message.split("\n"))


def _escape_char(char: str) -> str:
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not valid UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


class EscapingFilter(logging.Filter):
    """A logging filter that escapes each record's message (``escape``: one line, nothing
    hidden), so that no name from outside can forge or hide log lines. Tracebacks are added
    by the formatter afterwards and are not touched."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        escaped = escape(message)
        if escaped != message:
            record.msg, record.args = escaped, None
        return True
