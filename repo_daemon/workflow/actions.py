"""The registry of workflow actions: the one place that says which actions exist, what each
means, what kind it is, whether it runs again when a job resumes, and which handler does it.

The loader refuses a definition that names anything else; the processor runs a row by looking
each name up here. Adding an action is one entry here and one handler (see
docs/architecture.md). No I/O at import; no decisions.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from repo_daemon.workflow import early_adopters as adopters
from repo_daemon.workflow import effects, mail_intake
from repo_daemon.workflow import repository_actions as repo
from repo_daemon.workflow import ticket_actions as people
from repo_daemon.workflow.gather import Inputs
from repo_daemon.workflow.repository_actions import Services

Handler = Callable[[Inputs, Services], effects.Result]


class ActionKind(enum.Enum):
    """What an action touches."""

    CHECK = "check"  # reads the gathered inputs; refuses or passes
    REPOSITORY = "repository"  # files in the trees, scratch or the frozen release.xml
    SLOT = "slot"  # the staged-rollout slot in the bridge's records
    PEOPLE = "people"  # what the ticket says and who hears of it (effects only)
    FOLLOW_UP = "follow-up"  # work queued after the transition is committed


@dataclass(frozen=True, kw_only=True)
class Action:
    """One registered action."""

    name: str
    kind: ActionKind
    description: str
    handler: Handler
    # Pure actions (effects only) run again when a job resumes, so the write-back is whole;
    # work with lasting results is checkpointed and skipped instead.
    rerun_on_resume: bool
    resolves_ticket: bool = False  # a row that ends in a final state must have one

    @property
    def checkpointed(self) -> bool:
        """Whether its result is saved on the job (work with lasting results, and checks);
        what only tells people is rebuilt on every attempt instead."""
        return self.kind not in (ActionKind.PEOPLE, ActionKind.FOLLOW_UP)


def _pure(handler: Callable[[Inputs], effects.Result]) -> Handler:
    def run(inputs: Inputs, _services: Services) -> effects.Result:
        return handler(inputs)

    run.__doc__ = handler.__doc__
    return run


_ACTIONS = (
    Action(
        name="check_fields",
        kind=ActionKind.CHECK,
        description="check the ticket's mandatory fields (Sync-URL, AssociatedMajorRelease, …)",
        handler=_pure(people.check_fields),
        rerun_on_resume=False,
    ),
    Action(
        name="check_major_release",
        kind=ActionKind.CHECK,
        description="check the ticket's AssociatedMajorRelease is a known major release "
        "(settings: major_releases; any name when none are listed)",
        handler=_pure(people.check_major_release),
        rerun_on_resume=False,
    ),
    Action(
        name="check_sync_url",
        kind=ActionKind.CHECK,
        description="check Sync-Protocol and Sync-URL before anything connects: a protocol "
        "the bridge speaks, a URL it accepts, a host the settings allow (sync_hosts; any "
        "host when none are listed), naming the allowed hosts when not",
        handler=repo.check_sync_url,
        rerun_on_resume=False,
    ),
    Action(
        name="fill_in_fields",
        kind=ActionKind.PEOPLE,
        description="write back the release fields the bridge filled in from the provider's "
        "mail or release.xml (docs/mail-intake.md), saying where each came from",
        handler=_pure(mail_intake.fill_in_fields),
        rerun_on_resume=True,
    ),
    Action(
        name="freeze_release_xml",
        kind=ActionKind.REPOSITORY,
        description="download release.xml from the ticket and freeze it with its SHA-256",
        handler=repo.freeze_release_xml,
        rerun_on_resume=False,
    ),
    Action(
        name="check_release_xml_unchanged",
        kind=ActionKind.REPOSITORY,
        description="keep the frozen release.xml; say so on the ticket if a newer one was "
        "attached since (freeze it now if it was never frozen)",
        handler=repo.check_release_xml_unchanged,
        rerun_on_resume=False,
    ),
    Action(
        name="validate_release",
        kind=ActionKind.CHECK,
        description="validate the frozen release.xml against schemas/release.xsd and the ticket",
        handler=repo.validate_release,
        rerun_on_resume=False,
    ),
    Action(
        name="sync_packages",
        kind=ActionKind.REPOSITORY,
        description="sync the packages from Sync-URL into scratch and verify each file's size "
        "and SHA-256 against release.xml (again when a job resumes before publication)",
        handler=repo.sync_packages,
        rerun_on_resume=True,
    ),
    Action(
        name="publish_unverified",
        kind=ActionKind.REPOSITORY,
        description="publish to unverified/<DistributionShortName>/<Version>/ (with metadata)",
        handler=repo.publish_unverified,
        rerun_on_resume=False,
    ),
    Action(
        name="take_stage_slot",
        kind=ActionKind.SLOT,
        description="take the major release's staged-rollout slot",
        handler=repo.take_stage_slot,
        rerun_on_resume=False,
    ),
    Action(
        name="promote_to_stagerollout",
        kind=ActionKind.REPOSITORY,
        description="promote into stagerollout/<major>/… by hard links (with metadata)",
        handler=repo.promote_to_stagerollout,
        rerun_on_resume=False,
    ),
    Action(
        name="promote_to_production",
        kind=ActionKind.REPOSITORY,
        description="promote into the major release's production area, base or updates "
        "(with metadata)",
        handler=repo.promote_to_production,
        rerun_on_resume=False,
    ),
    Action(
        name="remove_release",
        kind=ActionKind.REPOSITORY,
        description="remove the release from unverified/ and stagerollout/ (with metadata)",
        handler=repo.remove_release,
        rerun_on_resume=False,
    ),
    Action(
        name="withdraw_release",
        kind=ActionKind.REPOSITORY,
        description="withdraw the release from production (and any area it is still in): the "
        "area's next snapshot goes without its files, the previous one is kept (with metadata)",
        handler=repo.withdraw_release,
        rerun_on_resume=False,
    ),
    Action(
        name="free_stage_slot",
        kind=ActionKind.SLOT,
        description="free the major release's staged-rollout slot",
        handler=repo.free_stage_slot,
        rerun_on_resume=False,
    ),
    Action(
        name="promote_next_deferred",
        kind=ActionKind.FOLLOW_UP,
        description="after the commit, queue the major release's oldest Deferred release into "
        "StageRollout if the slot is free",
        handler=repo.promote_next_deferred,
        rerun_on_resume=True,
    ),
    Action(
        name="notify_watchers",
        kind=ActionKind.PEOPLE,
        description="set the Cc groups of the new state and tell them what happened",
        handler=_pure(people.notify_watchers),
        rerun_on_resume=True,
    ),
    Action(
        name="tell_early_adopters",
        kind=ActionKind.PEOPLE,
        description="tell the early-adopter teams of the major release (settings: "
        "early_adopters) how to take part; Cc of that comment only",
        handler=_pure(adopters.tell_early_adopters),
        rerun_on_resume=True,
    ),
    Action(
        name="comment_deferred",
        kind=ActionKind.PEOPLE,
        description="comment which release holds the staged-rollout slot",
        handler=_pure(people.comment_deferred),
        rerun_on_resume=True,
    ),
    Action(
        name="comment_outcome",
        kind=ActionKind.PEOPLE,
        description="comment the outcome, for the release managers",
        handler=_pure(people.comment_outcome),
        rerun_on_resume=True,
    ),
    Action(
        name="reply_provider",
        kind=ActionKind.PEOPLE,
        description="reply to the technology provider (requestors) with the outcome",
        handler=_pure(people.reply_provider),
        rerun_on_resume=True,
    ),
    Action(
        name="comment_failure",
        kind=ActionKind.PEOPLE,
        description="comment what failed and what a person can do about it",
        handler=_pure(people.comment_failure),
        rerun_on_resume=True,
    ),
    Action(
        name="reply_failure",
        kind=ActionKind.PEOPLE,
        description="reply to the technology provider what failed, when it is theirs to fix "
        "(release.xml, Sync-URL, their files, the ticket's fields)",
        handler=_pure(people.reply_failure),
        rerun_on_resume=True,
    ),
    Action(
        name="resolve_ticket",
        kind=ActionKind.PEOPLE,
        description="resolve the ticket",
        handler=_pure(people.resolve_ticket),
        rerun_on_resume=True,
        resolves_ticket=True,
    ),
)

REGISTRY: Mapping[str, Action] = {a.name: a for a in _ACTIONS}
