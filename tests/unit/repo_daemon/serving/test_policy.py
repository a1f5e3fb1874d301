"""What is served and how: content types (the embedded server and nginx share them)."""

from __future__ import annotations

import pytest

from repo_daemon.serving import policy


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("tool-1.0-1.noarch.rpm", "application/x-rpm"),
        ("tool_1.0-1_all.deb", "application/vnd.debian.binary-package"),
        ("repomd.xml", "application/xml"),
        ("primary.xml.gz", "application/gzip"),
        ("Packages.xz", "application/x-xz"),
        ("index.json", "application/json; charset=utf-8"),
        ("index.html", "text/html; charset=utf-8"),
        ("Release", "text/plain; charset=utf-8"),
        ("Packages", "text/plain; charset=utf-8"),
        (".rollout-serial", "text/plain; charset=utf-8"),
        (".rollout-manifest.json", "application/json; charset=utf-8"),
        ("README", "application/octet-stream"),
    ],
)
def test_content_types(name: str, kind: str) -> None:
    assert policy.content_type(name) == kind
