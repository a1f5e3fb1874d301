"""Releases for the publication tests: files written into a scratch tree and the
``ReleaseInfo`` that describes them (what parsing release.xml would give)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from repo_daemon.release_xml import model as release_model


def release_info(
    short: str, version: str, packages: Iterable[release_model.PackageFile], **overrides: Any
) -> release_model.ReleaseInfo:
    """The release ``short`` ``version`` of ``packages`` (Incremental, major release "7", no
    repositories); ``overrides`` replace any field."""
    major, minor, revision = (int(x) for x in version.split("."))
    info = release_model.ReleaseInfo(
        distribution_name=short,
        short_name=short,
        technology_provider="Provider",
        contact="provider@example.org",
        description="",
        keywords=(),
        documentation_links=(),
        iso_date=date(2026, 11, 24),
        major_version=major,
        minor_version=minor,
        revision_version=revision,
        release_notes="",
        change_log="",
        synch_protocol=None,
        synch_url=None,
        release_type="Incremental",
        major_release="7",
        repositories=(),
        packages=tuple(packages),
    )
    return dataclasses.replace(info, **overrides)


def scratch_release(
    scratch: Path, short: str, version: str, files: Mapping[str, bytes]
) -> release_model.ReleaseInfo:
    """Write ``files`` (path → bytes) below ``scratch``; the release of them (``release_info``)."""
    packages = []
    for path, data in files.items():
        target = scratch / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        packages.append(
            release_model.PackageFile(
                path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest()
            )
        )
    return release_info(short, version, packages)
