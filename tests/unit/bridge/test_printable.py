"""Names from outside shown safely: every character that would not show as itself is
escaped, non-UTF-8 bytes as \\xNN, and escaping twice changes nothing."""

from __future__ import annotations

import logging

import pytest

from bridge import printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain-1.0.rpm", "plain-1.0.rpm"),
        ("é ü €.rpm", "é ü €.rpm"),  # letters and the plain space show as they are
        ("a\x1b[2J\x1b]0;pwned\x07.rpm", "a\\x1b[2J\\x1b]0;pwned\\x07.rpm"),
        ("line\nforged: ok", "line\\nforged: ok"),
        ("a\rb\tc", "a\\rb\\tc"),
        ("del\x7f c1\x85\x9b", "del\\x7f c1\\x85\\x9b"),
        ("evil\u202egpj.exe", "evil\\u202egpj.exe"),
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("iso\u2066late\u2069", "iso\\u2066late\\u2069"),
        ("nbsp\u00a0sep\u2028", "nbsp\\xa0sep\\u2028"),
        ("private\U000f0000", "private\\U000f0000"),
        (b"caf\xe9-\xff.rpm", "caf\\xe9-\\xff.rpm"),
        ("caf\udce9.rpm", "caf\\xe9.rpm"),  # os.fsdecode of the same bytes
        (b"ok-\xc3\xa9.rpm", "ok-é.rpm"),
        ("back\\slash", "back\\slash"),
    ],
)
def test_hidden_characters_are_escaped(raw: str | bytes, shown: str) -> None:
    assert printable.escape(raw) == shown
    assert printable.escape(shown) == shown  # idempotent
    assert all(c == " " or not printable.is_hidden(c) for c in printable.escape(raw))


def test_text_keeps_line_breaks_only() -> None:
    message = "2 files refused:\n  - a\x1b[31m.rpm\n  - b\u202e.rpm\r"
    assert printable.text(message) == "2 files refused:\n  - a\\x1b[31m.rpm\n  - b\\u202e.rpm\\r"


def test_the_log_filter_escapes_messages(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.printable")
    logger.addFilter(printable.EscapingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="tests.printable"):
            logger.info("synced %s", "x\n2026-01-01 INFO forged\x1b[0m")
    finally:
        logger.filters.clear()
    assert caplog.messages == ["synced x\\n2026-01-01 INFO forged\\x1b[0m"]
