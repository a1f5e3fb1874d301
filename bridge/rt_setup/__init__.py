"""What the product needs in RT, as data: the queue, custom fields, groups, rights and scrip.

Both ways of applying it read this one description: ``initialdata.render`` (an RT initialdata
file for ``rt-setup-database-5 --action insert``) and ``apply.apply_setup`` (``rollout tracker
init`` against a running RT). The scrip's Perl lives beside this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from bridge import records

SCRIP_DESCRIPTION = "Rollout bridge: tell the bridge when a release's fields or status change"
# What the scrip was called when it reported RolloutProgress only: ``tracker init`` finds it by
# that name too and brings it up to date, so an upgraded RT never runs both.
FORMER_SCRIP_DESCRIPTIONS = ("Rollout bridge: tell the bridge when RolloutProgress changes",)
# RT's default scrips mail a comment to AdminCc only. The bridge's comments on a state change
# are meant for the groups it makes Cc (QC, staged rollout, production), not the provider:
# this scrip mails comments to Cc too. Replies (for the provider) still mail everyone.
COMMENT_SCRIP_DESCRIPTION = "Rollout bridge: On Comment Notify Ccs as Comment"
COMMENT_SCRIP = {
    "condition": "On Comment",
    "action": "Notify Ccs as Comment",
    "template": "Admin Comment in HTML",
}


@dataclass(frozen=True, kw_only=True)
class CustomFieldSpec:
    """A ticket custom field applied to the release queue."""

    name: str
    kind: str  # "select", "freeform", "text" (multi-line)
    description: str
    values: tuple[str, ...] = ()
    default: str | None = None
    max_values: int = 1  # 0: any number of values (a multi-value field)
    # The values are exactly ``values``: others found in RT are removed (kept in sync with the
    # settings). Otherwise values added in RT by hand are kept.
    exact_values: bool = False

    @property
    def rt_type(self) -> str:
        """RT's Type column."""
        return {"select": "Select", "freeform": "Freeform", "text": "Text"}[self.kind]


@dataclass(frozen=True, kw_only=True)
class GroupSpec:
    """A user-defined group and the rights its members have on the release queue."""

    name: str
    description: str
    rights: tuple[str, ...]
    system_rights: tuple[str, ...] = ()
    # A queue watcher role the group holds (e.g. "AdminCc"): then it hears of every ticket
    # of the queue from its creation, before the bridge has processed any change.
    queue_role: str | None = None


_SEE = ("SeeQueue", "ShowTicket", "SeeCustomField")
_WORK = (
    *_SEE,
    "ShowTicketComments",
    "CommentOnTicket",
    "ReplyToTicket",
    "ModifyTicket",
    "ModifyCustomField",
    "Watch",
)

CUSTOM_FIELDS: tuple[CustomFieldSpec, ...] = (
    CustomFieldSpec(
        name="RolloutProgress",
        kind="select",
        description="Where the release is in the rollout workflow",
        values=tuple(s.label for s in records.RolloutState),
        default=records.RolloutState.SUBMITTED.label,
    ),
    CustomFieldSpec(
        name="EmergencyRelease",
        kind="select",
        description="Yes lets the release skip staged rollout",
        values=("No", "Yes"),
        default="No",
    ),
    CustomFieldSpec(
        name="ReleaseType",
        kind="select",
        description="NonIncremental goes to base, Incremental to updates",
        values=("Incremental", "NonIncremental"),
        default="NonIncremental",
    ),
    CustomFieldSpec(
        name="AssociatedMajorRelease",
        kind="freeform",
        description="The major release this release belongs to (e.g. UMD-5, CAs)",
    ),
    CustomFieldSpec(
        name="Sync-Protocol",
        kind="select",
        description="How the repository fetches the packages",
        values=("rsync", "sftp", "https"),
        default="rsync",
    ),
    CustomFieldSpec(
        name="Sync-URL", kind="freeform", description="Where the packages are fetched from"
    ),
    CustomFieldSpec(
        name="RepositoryURL",
        kind="freeform",
        description="Where the release is published (set by the bridge)",
    ),
    CustomFieldSpec(
        name="QualityCriteria Verification Report",
        kind="freeform",
        description="Link to the verification report",
    ),
    CustomFieldSpec(
        name="StageRollout Report", kind="freeform", description="Link to the staged-rollout report"
    ),
    # Its values are the early-adopter teams of the settings (``early_adopters.custom_fields``).
    CustomFieldSpec(
        name="EarlyAdopters",
        kind="select",
        description="The early-adopter teams that accepted the staged rollout",
        max_values=0,
        exact_values=True,
    ),
    CustomFieldSpec(
        name="RolloutHistory",
        kind="text",
        description="Timeline of RolloutProgress states (written by the bridge)",
    ),
)

GROUPS: tuple[GroupSpec, ...] = (
    # OwnTicket: the workflow may make a QC or SR member the owner of a phase (owners).
    GroupSpec(
        name="sw-rel-qc",
        description="Quality control: verifies releases",
        rights=(*_WORK, "OwnTicket"),
    ),
    GroupSpec(name="sw-rel-sr", description="Staged-rollout team", rights=(*_WORK, "OwnTicket")),
    GroupSpec(
        name="sw-rel-production", description="Told when a release reaches production", rights=_SEE
    ),
    GroupSpec(
        name="sw-rel-admin",
        description="Release managers (AdminCc on every release)",
        rights=(*_WORK, "OwnTicket", "TakeTicket", "StealTicket", "ModifyQueueWatchers"),
        queue_role="AdminCc",
    ),
    GroupSpec(
        name="sw-rel-early-adopters",
        description="Sites that install from staged rollout",
        rights=("SeeQueue",),
    ),
    GroupSpec(
        name="sw-rel-bridge",
        description="Service accounts of the Rollout bridge",
        # ReassignTicket: handing a ticket from one phase's owner to the next (owners).
        rights=(*_WORK, "ModifyQueueWatchers", "ReassignTicket"),
        # Ticket JSON names watcher groups by id; the bridge looks their names up.
        system_rights=("SeeGroup",),
    ),
)


def scrip_code(part: str) -> str:
    """The scrip's Perl: ``condition`` (is-applicable) or ``action`` (commit)."""
    return resources.files(__name__).joinpath(f"scrip_{part}.pl").read_text(encoding="utf-8")
