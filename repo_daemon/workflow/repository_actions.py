"""The repository work of a transition: fetch and validate release.xml, sync and verify the
packages, publish, promote, regenerate metadata, remove.

Until the release issue lands these steps are recorded on the job (checkpoints) without moving
files; ``check_fields`` already refuses a ticket that lacks what the later steps need.
"""

from __future__ import annotations

from bridge.records import Ticket
from repo_daemon import errors

# Fields the repository work needs on the ticket.
MANDATORY_FIELDS = ("Sync-URL", "Sync-Protocol", "AssociatedMajorRelease", "ReleaseType")

REPOSITORY_ACTIONS = (
    "fetch_release",
    "validate_release",
    "sync_packages",
    "verify_packages",
    "publish_unverified",
    "promote_to_stagerollout",
    "promote_to_production",
    "regenerate_metadata",
    "remove_release",
)


def check_fields(ticket: Ticket) -> str:
    """Raise ``ProcessingFailed`` (permanent) naming every mandatory field that is empty."""
    missing = [name for name in MANDATORY_FIELDS if not ticket.field(name)]
    if missing:
        raise errors.ProcessingFailed(
            f"the ticket lacks {', '.join(missing)}; fill "
            f"{'it' if len(missing) == 1 else 'them'} in on the ticket",
            transient=False,
            ticket_id=ticket.id,
        )
    return "mandatory fields present"


def record_only(action: str) -> str:
    """The detail recorded for a repository step that does not move files yet."""
    return f"{action}: recorded (repository work arrives with the release issue)"
