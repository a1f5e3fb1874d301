"""The handlers of the actions that change the repository or the bridge's records of it:
release.xml frozen and checked, packages synced and verified, publication, promotion, removal,
withdrawal from production, the staged-rollout slot, and the follow-up that moves the next
Deferred release in.

Each handler does its one piece of work through ``Services`` (the I/O seams, passed in) and
returns effects; what the ticket is told and what follows the commit are effects, applied by
the processor once. RepositoryURL is not an action: the write-back always mirrors where the
release record says the release is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bridge.store import releases
from bridge.tracker.client import TrackerClient
from repo_daemon import errors
from repo_daemon.release_xml import model as release_model
from repo_daemon.workflow import effects
from repo_daemon.workflow.gather import Inputs, TicketView


class RepositorySteps(Protocol):
    """The repository work the handlers call (``steps.RepositoryWork``; a fake in tests).
    Each returns a line for the job's checkpoint and, maybe, a note for the ticket."""

    def check_sync_source(self, ticket: TicketView) -> Step: ...

    def freeze_release_xml(self, tracker: TrackerClient, ticket: TicketView) -> Step: ...

    def check_release_xml_unchanged(self, tracker: TrackerClient, ticket: TicketView) -> Step: ...

    def read_release_xml(self, ticket: TicketView) -> release_model.ReleaseInfo: ...

    def sync_packages(self, ticket: TicketView, info: release_model.ReleaseInfo) -> Step: ...

    def publish_unverified(self, ticket: TicketView, info: release_model.ReleaseInfo) -> Step: ...

    def promote_to_stagerollout(
        self, ticket: TicketView, info: release_model.ReleaseInfo, major_release: str
    ) -> Step: ...

    def promote_to_production(
        self, ticket: TicketView, info: release_model.ReleaseInfo, major_release: str
    ) -> Step: ...

    def remove_release(self, ticket: TicketView) -> Step: ...

    def withdraw_release(self, ticket: TicketView) -> Step: ...

    def url_of(self, ticket_id: int) -> str | None: ...


@dataclass(frozen=True, kw_only=True)
class Step:
    """What a repository step did (``detail``) and what the ticket should be told (``note``)."""

    detail: str
    note: str = ""

    def result(self) -> effects.Result:
        notes = (effects.Comment(text=self.note),) if self.note else ()
        return effects.Result(detail=self.detail, effects=notes)


@dataclass(frozen=True, kw_only=True)
class Services:
    """The I/O seams the handlers use, for one transition."""

    tracker: TrackerClient
    store: releases.ReleaseStore
    repository: RepositorySteps


def _major(inputs: Inputs) -> str:
    major = inputs.ticket.major_release
    if not major:
        raise errors.TicketIncomplete(
            "the ticket has no AssociatedMajorRelease, so the bridge cannot tell which major "
            "release (and staged-rollout slot, and production area) it belongs to",
            ticket_id=inputs.ticket.id,
        )
    return major


def check_sync_url(inputs: Inputs, services: Services) -> effects.Result:
    return services.repository.check_sync_source(inputs.ticket).result()


def freeze_release_xml(inputs: Inputs, services: Services) -> effects.Result:
    return services.repository.freeze_release_xml(services.tracker, inputs.ticket).result()


def check_release_xml_unchanged(inputs: Inputs, services: Services) -> effects.Result:
    return services.repository.check_release_xml_unchanged(services.tracker, inputs.ticket).result()


def validate_release(inputs: Inputs, services: Services) -> effects.Result:
    info = inputs.release_xml  # parsing checks it against the XSD and the ticket
    return effects.Result(detail=f"valid: {info.short_name} {info.version}")


def sync_packages(inputs: Inputs, services: Services) -> effects.Result:
    if "publish_unverified" in inputs.checkpoints:  # a resumed job: scratch is published
        return effects.Result(detail="already published; nothing to sync")
    return services.repository.sync_packages(inputs.ticket, inputs.release_xml).result()


def publish_unverified(inputs: Inputs, services: Services) -> effects.Result:
    return services.repository.publish_unverified(inputs.ticket, inputs.release_xml).result()


def promote_to_stagerollout(inputs: Inputs, services: Services) -> effects.Result:
    return services.repository.promote_to_stagerollout(
        inputs.ticket, inputs.release_xml, _major(inputs)
    ).result()


def promote_to_production(inputs: Inputs, services: Services) -> effects.Result:
    return services.repository.promote_to_production(
        inputs.ticket, inputs.release_xml, _major(inputs)
    ).result()


def remove_release(inputs: Inputs, services: Services) -> effects.Result:
    return services.repository.remove_release(inputs.ticket).result()


def withdraw_release(inputs: Inputs, services: Services) -> effects.Result:
    return services.repository.withdraw_release(inputs.ticket).result()


def take_stage_slot(inputs: Inputs, services: Services) -> effects.Result:
    major = _major(inputs)
    if not services.store.take_slot(major, inputs.ticket.id, emergency=inputs.facts.emergency):
        # Another daemon took it since the decision: decide again at once; it will defer.
        raise errors.DecisionOutdated(
            f"the {major} staged-rollout slot was taken meanwhile; deciding again",
            ticket_id=inputs.ticket.id,
        )
    return effects.Result(detail=f"holds the {major} slot")


def free_stage_slot(inputs: Inputs, services: Services) -> effects.Result:
    major = inputs.ticket.major_release
    freed = bool(major) and services.store.free_slot(major or "", inputs.ticket.id)
    return effects.Result(detail=f"freed the {major} slot" if freed else "held no slot")


def promote_next_deferred(inputs: Inputs, services: Services) -> effects.Result:
    major = inputs.ticket.major_release
    if not major:
        return effects.Result(detail="no major release, so no Deferred release to move in")
    return effects.Result(
        detail=f"after the commit: the oldest Deferred {major} release moves in if the slot "
        "is free",
        effects=(effects.MoveNextDeferredIn(major_release=major),),
    )
