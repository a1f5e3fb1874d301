"""Reading a technology provider's release.xml into ``model.ReleaseInfo``: the entry points
(``parse_release``, ``validate_file``, ``release_sha256``) and the building of the model.

``parse_release`` runs the checks in order: ``safe_xml`` (size, no DOCTYPE, well-formed, root),
then ``xsd`` and ``paths`` (the schema and what it cannot say), collecting every problem in one
``report.ReleaseInvalid``; only a document that passes them all becomes a model. Pure: bytes in,
model out. It does not fetch release.xml (the ticket side does) nor any package (``sync``
does); only ``validate_file`` reads a file, the one it is given. The agreement with the
ticket's fields is ``ticket_fields``'s.
"""

from __future__ import annotations

import hashlib
import logging
import textwrap
from datetime import date
from pathlib import Path
from typing import Any

from repo_daemon.release_xml import model as manifest
from repo_daemon.release_xml import paths, report, safe_xml, xsd

logger = logging.getLogger(__name__)


def release_sha256(data: bytes) -> str:
    """The SHA-256 (lower-case hex) of release.xml as received: what the bridge froze."""
    return hashlib.sha256(data).hexdigest()


def validate_file(path: Path) -> manifest.ReleaseInfo:
    """Read the release.xml at ``path`` (never more than the size limit) and parse it.

    Raises ``report.ReleaseInvalid``, also when the file cannot be read.
    """
    limit = safe_xml.MAX_RELEASE_XML_BYTES
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
            size = path.stat().st_size if len(data) > limit else len(data)
    except OSError as exc:
        raise report.ReleaseInvalid(
            [f"cannot read {path} ({exc.strerror})"], source=str(path)
        ) from exc
    if size > limit:
        raise report.ReleaseInvalid([safe_xml.too_large(max(size, len(data)))], source=str(path))
    return parse_release(data, source=str(path))


def parse_release(data: bytes, *, source: str = "release.xml") -> manifest.ReleaseInfo:
    """Check release.xml completely and return the release it describes.

    In order: the size limit (nothing larger than ``safe_xml.MAX_RELEASE_XML_BYTES`` is
    parsed), no DOCTYPE, well-formed XML (parsed with entities, DTD loading and network off),
    root element ``Release``; then the schema and the checks beyond it, all problems collected
    together. ``source`` names the document in logs and on the error. Raises
    ``report.ReleaseInvalid``.
    """
    tree = safe_xml.read_tree(data, source)
    root = tree.getroot()
    problems = report.Problems(tree)
    stopped = False
    try:
        xsd.check(tree, problems)
        paths.check(root, problems)
    except report.TooMany:
        stopped = True
    if problems:
        logger.info("release refused", extra={"source": source, "problems": len(problems)})
        raise report.ReleaseInvalid(problems.sorted(), source=source, stopped=stopped)
    return _model(root)


def _model(root: Any) -> manifest.ReleaseInfo:
    def token(elem: Any, tag: str) -> str:
        found = elem.find(tag)
        return " ".join((found.text or "").split()) if found is not None else ""

    def optional(tag: str) -> str | None:
        return token(root, tag) or None

    def block(tag: str) -> str:
        return textwrap.dedent((root.find(tag).text or "").strip("\n")).strip()

    return manifest.ReleaseInfo(
        distribution_name=token(root, "DistributionName"),
        short_name=token(root, "DistributionShortName"),
        technology_provider=token(root, "TechnologyProvider"),
        contact=token(root, "Contact"),
        description=block("Description"),
        keywords=tuple(" ".join((k.text or "").split()) for k in root.iterfind("Keywords/*")),
        documentation_links=tuple(
            (link.text or "").strip() for link in root.iterfind("DocumentationLinks/*")
        ),
        iso_date=date.fromisoformat(token(root, "ISODate")),
        major_version=int(token(root, "MajorVersion")),
        minor_version=int(token(root, "MinorVersion")),
        revision_version=int(token(root, "RevisionVersion")),
        release_notes=block("ReleaseNotes"),
        change_log=block("ChangeLog"),
        synch_protocol=optional("SynchProtocol"),
        synch_url=optional("SynchURL"),
        release_type=optional("ReleaseType"),
        major_release=optional("MajorRelease"),
        repositories=tuple(
            manifest.RepositorySpec(
                identifier=token(repo, "Identifier"),
                name=token(repo, "Name"),
                type=token(repo, "Type"),
                relative_path=(repo.find("RelativePath").text or "").strip().removesuffix("/"),
            )
            for repo in root.iterfind("Repositories/Repository")
        ),
        packages=tuple(
            manifest.PackageFile(
                path=(package.find("Path").text or "").strip(),
                size=int(token(package, "Size")),
                sha256=token(package, "SHA256").lower(),
            )
            for package in root.iterfind("Packages/Package")
        ),
    )
