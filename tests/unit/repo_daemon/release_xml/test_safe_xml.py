"""Reading untrusted bytes: no DOCTYPE in any encoding (so no entity is ever expanded or file
read), well-formed XML with the root <Release>, and nothing above the size limit parsed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from repo_daemon.release_xml import parse, safe_xml
from tests.support.release_xml_samples import DOCTYPE, FIXTURES, VALID, problems_of, valid_with


def _passwd_lines() -> list[str]:
    try:
        text = Path("/etc/passwd").read_text(encoding="utf-8")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("second_line_only", [False, True], ids=["prescan", "parsed-docinfo"])
def test_external_entity_never_reads_the_file(
    monkeypatch: pytest.MonkeyPatch, second_line_only: bool
) -> None:
    if second_line_only:  # what libxml2 itself does when the look before parsing misses it
        monkeypatch.setattr(safe_xml, "_has_doctype", lambda data: False)
    problems = problems_of((FIXTURES / "release_external_entity.xml").read_bytes())
    message = "\n".join(problems)
    assert problems == [DOCTYPE]
    for line in _passwd_lines():
        assert line not in message
    assert "root:" not in message


@pytest.mark.timeout(30)
@pytest.mark.parametrize("second_line_only", [False, True], ids=["prescan", "parsed"])
def test_billion_laughs_is_refused_without_expanding(
    monkeypatch: pytest.MonkeyPatch, second_line_only: bool
) -> None:
    if second_line_only:
        monkeypatch.setattr(safe_xml, "_has_doctype", lambda data: False)
    started = time.monotonic()
    problems = problems_of((FIXTURES / "release_billion_laughs.xml").read_bytes())
    # Expanding it would take gigabytes and minutes; refusing it takes milliseconds.
    assert time.monotonic() - started < 10
    if second_line_only:  # libxml2 stops it as an entity amplification, or we see the DTD
        assert problems == [DOCTYPE] or "entity" in problems[0].lower()
    else:
        assert problems == [DOCTYPE]
    assert "lollol" not in "\n".join(problems)


def test_utf16_document_is_read() -> None:
    data = VALID.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert parse.parse_release(data) == parse.parse_release(VALID)


@pytest.mark.parametrize(
    "prolog",
    [
        b'<?xml version="1.0"?>\n<!-- a comment -->\n<?pi x?>\n<!DOCTYPE Release>\n',
        b"\xef\xbb\xbf<!DOCTYPE Release>",
        b'<!DOCTYPE Release SYSTEM "http://example.org/release.dtd">',
        b'<!DOCTYPE Release PUBLIC "-//X//DTD//EN" "release.dtd">',
    ],
    ids=["after-comment-and-pi", "utf8-bom", "external-system", "external-public"],
)
def test_any_doctype_is_refused(prolog: bytes) -> None:
    body = VALID.split(b"-->\n", 1)[1]
    assert problems_of(prolog + body) == [DOCTYPE]


def test_doctype_in_utf16_is_refused() -> None:
    text = (FIXTURES / "release_with_dtd.xml").read_text(encoding="utf-8")
    data = text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert problems_of(data) == [DOCTYPE]


def test_undeclared_entity_is_not_xml() -> None:
    problems = problems_of(valid_with(("<Description>A grid", "<Description>&xxe; A grid")))
    (problem,) = problems  # the column varies with libxml2's version
    assert problem.startswith("it is not well-formed XML (line 8, column ")
    assert problem.endswith(": Entity 'xxe' not defined)")


def test_root_in_a_namespace_is_refused() -> None:
    problems = problems_of(valid_with(("<Release>", '<Release xmlns="urn:example:release">')))
    assert problems == [
        "the root element <Release> is in the namespace 'urn:example:release'; "
        "release.xml uses no namespace (remove the xmlns attribute)"
    ]


def test_empty_document_is_refused() -> None:
    assert problems_of(b"  \n") == ["it is empty"]


def test_a_100_mb_document_is_refused_without_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("parsed a document above the size limit")

    monkeypatch.setattr(safe_xml, "_has_doctype", never)
    monkeypatch.setattr(safe_xml, "_parse_xml", never)
    data = b"<Release>".ljust(100 * 1024 * 1024, b" ")
    problems = problems_of(data)
    assert problems == [f"it is {len(data)} bytes (100.00 MiB); the limit is 1048576 bytes (1 MiB)"]


def test_a_document_at_the_limit_is_read() -> None:
    padding = safe_xml.MAX_RELEASE_XML_BYTES - len(VALID)
    assert parse.parse_release(VALID + b" " * padding).short_name == "arc-ce"
    assert "the limit is 1048576 bytes" in problems_of(VALID + b" " * (padding + 1))[0]
