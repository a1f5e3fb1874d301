"""release.xml documents for the release_xml tests: the valid fixture, edits of it, and the
problems a refused document lists (checking the message's form on the way)."""

from __future__ import annotations

import pytest

from repo_daemon.release_xml import parse, report
from tests.support import paths

FIXTURES = paths.FIXTURES
VALID = (FIXTURES / "release_valid.xml").read_bytes()
DOCTYPE = "release.xml must not contain a DOCTYPE (DTDs and entities are not allowed)"


def problems_of(data: bytes) -> list[str]:
    """The problems ``parse_release`` lists for ``data``, which it must refuse."""
    with pytest.raises(report.ReleaseInvalid) as caught:
        parse.parse_release(data)
    message = str(caught.value)
    assert message == "release.xml is invalid:\n" + "\n".join(
        f"  - {p}" for p in caught.value.problems
    )
    return caught.value.problems


def valid_with(*subs: tuple[str, str]) -> bytes:
    """The valid fixture with each (old, new) replaced once; each ``old`` must be in it."""
    text = VALID.decode()
    for old, new in subs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text.encode()
