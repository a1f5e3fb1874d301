"""What a release consists of, as read from its release.xml: plain frozen data shared by the
parser (``parse``), the sync and its verification (``sync``) and publication (``publish``).
No I/O, no parsing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, kw_only=True)
class PackageFile:
    """One file of the release: where it is below the release's root, its size and SHA-256.

    ``path`` is relative, with ``/`` separators, and checked by the parser: no ``..``, no
    leading ``/``, no empty or hidden components, no control characters.
    """

    path: str
    size: int
    sha256: str  # lower-case hex


@dataclass(frozen=True, kw_only=True)
class RepositorySpec:
    """A package repository the release's files belong to (release.xml ``Repository``)."""

    identifier: str
    name: str
    type: str  # "YUM" or "APT"
    relative_path: str  # below the release's root, checked like PackageFile.path ("" = root)


@dataclass(frozen=True, kw_only=True)
class ReleaseInfo:
    """A parsed, validated release.xml."""

    distribution_name: str
    short_name: str  # DistributionShortName, checked to be safe as one path component
    technology_provider: str
    contact: str
    description: str
    keywords: tuple[str, ...]
    documentation_links: tuple[str, ...]
    iso_date: date
    major_version: int
    minor_version: int
    revision_version: int
    release_notes: str
    change_log: str
    synch_protocol: str | None
    synch_url: str | None
    release_type: str | None  # "Incremental" / "NonIncremental" when release.xml states it
    major_release: str | None  # when release.xml states it
    repositories: tuple[RepositorySpec, ...]
    packages: tuple[PackageFile, ...]

    @property
    def version(self) -> str:
        """``Major.Minor.Revision``, the release's directory name."""
        return f"{self.major_version}.{self.minor_version}.{self.revision_version}"

    @property
    def total_size(self) -> int:
        """Bytes of all the release's files."""
        return sum(p.size for p in self.packages)
