"""What the product needs in RT, as data: the queue, custom fields, groups, rights and scrip.

Both ways of applying it read this one description: ``initialdata.render`` (an RT initialdata
file for ``rt-setup-database-5 --action insert``) and ``apply.apply_setup`` (``rollout tracker
init`` against a running RT); ``grants`` turns it into the list of rights both apply. Who may
edit a field is said on the field (``CustomFieldSpec.editors``), what a group may do on the
queue on the group. The scrip's Perl lives beside this file.
"""

from __future__ import annotations

from collections.abc import Sequence
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


# The ticket role of whoever filed the ticket: the technology provider, on their own tickets.
REQUESTOR = "Requestor"

# The worker groups and the bridge's (by name: the rights below refer to them).
QC, SR, ADMIN, BRIDGE, PROVIDERS = (
    "sw-rel-qc", "sw-rel-sr", "sw-rel-admin", "sw-rel-bridge", "sw-rel-providers",
)  # fmt: skip

QUEUE, SYSTEM, FIELD = "queue", "system", "field"  # what a Grant is on
SEE_FIELD = "SeeCustomField"
MODIFY_FIELD = "ModifyCustomField"
SET_INITIAL_FIELD = "SetInitialCustomField"  # set it when filing, not change it later


@dataclass(frozen=True, kw_only=True)
class CustomFieldSpec:
    """A ticket custom field applied to the release queue, and who may change it.

    Seeing the fields is a queue right (``GroupSpec.rights``); changing one is granted on the
    field itself, so each field names its editors.
    """

    name: str
    kind: str  # "select", "freeform", "text" (multi-line)
    description: str
    values: tuple[str, ...] = ()
    default: str | None = None
    max_values: int = 1  # 0: any number of values (a multi-value field)
    # The values are exactly ``values``: others found in RT are removed (kept in sync with the
    # settings). Otherwise values added in RT by hand are kept.
    exact_values: bool = False
    # User-defined groups whose members may change it on every ticket of the queue.
    editors: tuple[str, ...] = ()
    # Ticket roles whose holders may change it on the tickets where they hold the role.
    editor_roles: tuple[str, ...] = ()
    # Groups whose members may set it when they file a ticket and not change it later
    # (SetInitialCustomField, and SeeCustomField on the field: REST2 finds a field named in a
    # new ticket only among those its user may see, and drops the others without a word).
    initial_editors: tuple[str, ...] = ()

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
    # Queue rights an older version of the product granted and this one does not: ``tracker
    # init`` revokes exactly these (never a right the product did not grant).
    retired: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Grant:
    """The rights one principal has on one object, as ``tracker init`` and the initialdata
    grant them. ``principal`` is a user-defined group's name, or a ticket role's when
    ``role`` (on the queue: the queue's role group; on a field: RT's global one)."""

    principal: str
    role: bool = False
    target: str  # QUEUE, SYSTEM or FIELD
    field: str | None = None  # the custom field's name, for FIELD
    rights: tuple[str, ...]
    retired: tuple[str, ...] = ()

    @property
    def who(self) -> str:
        """The principal as a report names it."""
        return f"role {self.principal}" if self.role else self.principal

    @property
    def where(self) -> str:
        """The object as a report names it."""
        return {QUEUE: "queue", SYSTEM: "RT", FIELD: f"field {self.field}"}[self.target]


_SEE = ("SeeQueue", "ShowTicket", "SeeCustomField")
# Changing a field is granted per field (CustomFieldSpec.editors), not here.
_WORK = (
    *_SEE,
    "ShowTicketComments",
    "CommentOnTicket",
    "ReplyToTicket",
    "ModifyTicket",
    "Watch",
)
# Up to issue 13 every worker group could change every field (ModifyCustomField on the queue).
_RETIRED_WORK = (MODIFY_FIELD,)
# The provider's release: what they fill in when filing and may correct on their own tickets.
_RELEASE_EDITORS = (ADMIN, BRIDGE)  # and the Requestor role; PROVIDERS set them when filing

CUSTOM_FIELDS: tuple[CustomFieldSpec, ...] = (
    CustomFieldSpec(
        name="RolloutProgress",
        kind="select",
        description="Where the release is in the rollout workflow",
        values=tuple(s.label for s in records.RolloutState),
        default=records.RolloutState.SUBMITTED.label,
        editors=(QC, SR, ADMIN, BRIDGE),
    ),
    CustomFieldSpec(
        name="EmergencyRelease",
        kind="select",
        description="Yes lets the release skip staged rollout",
        values=("No", "Yes"),
        default="No",
        editors=(ADMIN, BRIDGE),  # release managers own emergencies
    ),
    CustomFieldSpec(
        name="ReleaseType",
        kind="select",
        description="NonIncremental goes to base, Incremental to updates",
        values=("Incremental", "NonIncremental"),
        default="NonIncremental",
        editors=_RELEASE_EDITORS,
        editor_roles=(REQUESTOR,),
        initial_editors=(PROVIDERS,),
    ),
    CustomFieldSpec(
        name="AssociatedMajorRelease",
        kind="freeform",
        description="The major release this release belongs to (e.g. UMD-5, CAs)",
        editors=_RELEASE_EDITORS,
        editor_roles=(REQUESTOR,),
        initial_editors=(PROVIDERS,),
    ),
    CustomFieldSpec(
        name="Sync-Protocol",
        kind="select",
        description="How the repository fetches the packages",
        values=("rsync", "sftp", "https"),
        default="rsync",
        editors=_RELEASE_EDITORS,
        editor_roles=(REQUESTOR,),
        initial_editors=(PROVIDERS,),
    ),
    CustomFieldSpec(
        name="Sync-URL",
        kind="freeform",
        description="Where the packages are fetched from",
        editors=_RELEASE_EDITORS,
        editor_roles=(REQUESTOR,),
        initial_editors=(PROVIDERS,),
    ),
    CustomFieldSpec(
        name="RepositoryURL",
        kind="freeform",
        description="Where the release is published (set by the bridge)",
        editors=(BRIDGE,),
    ),
    CustomFieldSpec(
        name="QualityCriteria Verification Report",
        kind="freeform",
        description="Link to the verification report",
        editors=(QC, ADMIN),
    ),
    CustomFieldSpec(
        name="StageRollout Report",
        kind="freeform",
        description="Link to the staged-rollout report",
        editors=(SR, ADMIN),
    ),
    # Its values are the early-adopter teams of the settings, and the teams' groups are among
    # its editors (``early_adopters.custom_fields``); the bridge takes off a team added by
    # someone who may not add it.
    CustomFieldSpec(
        name="EarlyAdopters",
        kind="select",
        description="The early-adopter teams that accepted the staged rollout",
        max_values=0,
        exact_values=True,
        editors=(SR, BRIDGE),
    ),
    # Replied to the provider when a release is closed (docs/workflow.md): by those who may
    # close it (the workflow's rows to Rejected, Ignored and NotPublished).
    CustomFieldSpec(
        name="Closing Reason",
        kind="text",
        description="Why the release is rejected, ignored or not published (told the provider)",
        editors=(QC, SR, ADMIN),
    ),
    CustomFieldSpec(
        name="RolloutHistory",
        kind="text",
        description="Timeline of RolloutProgress states (written by the bridge)",
        editors=(BRIDGE,),
    ),
)

GROUPS: tuple[GroupSpec, ...] = (
    # OwnTicket: the workflow may make a QC or SR member the owner of a phase (owners).
    GroupSpec(
        name=QC,
        description="Quality control: verifies releases",
        rights=(*_WORK, "OwnTicket"),
        retired=_RETIRED_WORK,
    ),
    GroupSpec(
        name=SR,
        description="Staged-rollout team",
        rights=(*_WORK, "OwnTicket"),
        retired=_RETIRED_WORK,
    ),
    GroupSpec(
        name="sw-rel-production", description="Told when a release reaches production", rights=_SEE
    ),
    GroupSpec(
        name=ADMIN,
        description="Release managers (AdminCc on every release)",
        rights=(*_WORK, "OwnTicket", "TakeTicket", "StealTicket", "ModifyQueueWatchers"),
        queue_role="AdminCc",
        retired=_RETIRED_WORK,
    ),
    # The default early-adopter team's group (``early_adopters.groups`` adds the team's rights;
    # as a team it had ModifyCustomField on the queue before fields named their editors).
    GroupSpec(
        name="sw-rel-early-adopters",
        description="Sites that install from staged rollout",
        rights=("SeeQueue",),
        retired=_RETIRED_WORK,
    ),
    # They see and answer their own tickets as the tickets' Requestor (QUEUE_ROLE_RIGHTS).
    GroupSpec(
        name=PROVIDERS,
        description="Technology providers: file releases",
        rights=("SeeQueue", "CreateTicket"),
    ),
    GroupSpec(
        name=BRIDGE,
        description="Service accounts of the Rollout bridge",
        # ReassignTicket: handing a ticket from one phase's owner to the next (owners).
        rights=(*_WORK, "ModifyQueueWatchers", "ReassignTicket"),
        # SeeGroup: ticket JSON names watcher groups by id, and the bridge reads who is in which
        # group to check the role of whoever moved a release (``groups_of``).
        system_rights=("SeeGroup",),
        retired=_RETIRED_WORK,
    ),
)

# Rights of a ticket role on the queue, for the tickets where one holds it: a provider sees,
# and answers on, the tickets they filed (they change their fields: CustomFieldSpec.editor_roles).
QUEUE_ROLE_RIGHTS: dict[str, tuple[str, ...]] = {
    REQUESTOR: ("ShowTicket", "SeeCustomField", "ReplyToTicket"),
}


def grants(
    groups: Sequence[GroupSpec] = GROUPS, fields: Sequence[CustomFieldSpec] = CUSTOM_FIELDS
) -> list[Grant]:
    """Every right the set-up grants, one ``Grant`` per principal and object: the groups' on
    the queue (with the rights they lose) and on RT, the roles' on the queue, and each field's
    editors. ``groups`` and ``fields`` are those of the settings (``early_adopters`` adds the
    teams' groups, and makes them editors of EarlyAdopters).
    """
    found: list[Grant] = []
    for spec in groups:
        found.append(
            Grant(principal=spec.name, target=QUEUE, rights=spec.rights, retired=spec.retired)
        )
        if spec.system_rights:
            found.append(Grant(principal=spec.name, target=SYSTEM, rights=spec.system_rights))
    for role, role_rights in QUEUE_ROLE_RIGHTS.items():
        found.append(Grant(principal=role, role=True, target=QUEUE, rights=role_rights))
    for cf in fields:
        rights: dict[tuple[str, bool], list[str]] = {}
        for group in cf.editors:
            rights.setdefault((group, False), []).append(MODIFY_FIELD)
        for group in cf.initial_editors:
            rights.setdefault((group, False), []).extend((SEE_FIELD, SET_INITIAL_FIELD))
        for role in cf.editor_roles:
            rights.setdefault((role, True), []).append(MODIFY_FIELD)
        found += [
            Grant(
                principal=name,
                role=role,
                target=FIELD,
                field=cf.name,
                rights=tuple(dict.fromkeys(granted)),
            )
            for (name, role), granted in rights.items()
        ]
    return found


def scrip_code(part: str) -> str:
    """The scrip's Perl: ``condition`` (is-applicable) or ``action`` (commit)."""
    return resources.files(__name__).joinpath(f"scrip_{part}.pl").read_text(encoding="utf-8")
