"""The agreement between a checked release.xml and its ticket's ReleaseType and
AssociatedMajorRelease fields.

Pure: it compares a ``model.ReleaseInfo`` with two strings the caller read from the ticket; it
neither reads the ticket nor parses release.xml.
"""

from __future__ import annotations

from repo_daemon.release_xml import model as manifest
from repo_daemon.release_xml import paths, report

RELEASE_TYPES = ("Incremental", "NonIncremental")


def check_against_ticket(
    info: manifest.ReleaseInfo, *, release_type: str | None, major_release: str | None
) -> None:
    """Check release.xml's ReleaseType / MajorRelease against the ticket's fields.

    ``release_type`` is the ticket's ReleaseType, ``major_release`` its AssociatedMajorRelease
    (None or empty when unset). Where both state one they must agree; the major release must
    be stated by at least one of the two (a release type nobody states is the major
    release's default, see ``RepositorySettings.release_type_for``). The ticket's major
    release must be safe as a directory name. The value to use is the ticket's when set,
    else release.xml's. Raises ``report.ReleaseInvalid``.
    """
    problems: list[str] = []
    ticket_type = (release_type or "").strip() or None
    ticket_major = (major_release or "").strip() or None
    if ticket_type is not None and ticket_type not in RELEASE_TYPES:
        problems.append(
            f"the ticket's ReleaseType is {report.quote(ticket_type)}; it must be one of "
            + ", ".join(RELEASE_TYPES)
        )
    elif ticket_type and info.release_type and ticket_type != info.release_type:
        problems.append(
            f"release.xml says ReleaseType {info.release_type}, the ticket says {ticket_type}"
        )
    if ticket_major is not None and not paths.SAFE_NAME.fullmatch(ticket_major):
        problems.append(
            f"the ticket's AssociatedMajorRelease is {report.quote(ticket_major)}; it must be "
            + paths.SAFE_NAME_WORDS
        )
    elif ticket_major and info.major_release and ticket_major != info.major_release:
        problems.append(
            f"release.xml says MajorRelease {info.major_release}, "
            f"the ticket says {ticket_major} (AssociatedMajorRelease)"
        )
    elif not ticket_major and not info.major_release:
        problems.append(
            "neither the ticket's AssociatedMajorRelease field nor release.xml (MajorRelease) "
            "says the major release: set AssociatedMajorRelease on the ticket (e.g. UMD-5)"
        )
    if problems:
        raise report.ReleaseInvalid(problems)
