"""The workflow's vocabulary and shape: states come from ``bridge.records.RolloutState``; the
actions and guards a definition may name are listed here with what they mean; a definition
is a set of states and an ordered table of transitions. Plain data; no I/O, no decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bridge.records import RolloutState
from repo_daemon.errors import WorkflowInvalid

__all__ = ["ACTIONS", "GUARDS", "Definition", "Transition", "WorkflowInvalid"]

# What the repository does on a transition. The loader refuses any other name.
ACTIONS: Mapping[str, str] = {
    "check_fields": "check the ticket's mandatory fields (Sync-URL, AssociatedMajorRelease, …)",
    "fetch_release": "download release.xml from the ticket once and freeze it with its SHA-256",
    "validate_release": "validate release.xml against schemas/release.xsd",
    "sync_packages": "sync the packages from Sync-URL into scratch space",
    "verify_packages": "check every file's size and SHA-256 against release.xml",
    "publish_unverified": "publish to unverified/<DistributionShortName>/<Version>/",
    "set_repository_url": "set RepositoryURL on the ticket to where the release now is",
    "take_stage_slot": "take the major release's staged-rollout slot",
    "promote_to_stagerollout": "promote into stagerollout/<major>/… by hard links",
    "free_stage_slot": "free the major release's staged-rollout slot",
    "promote_next_deferred": "move the major release's oldest Deferred release into StageRollout",
    "promote_to_production": "promote into the major release's production area (base or updates)",
    "regenerate_metadata": "regenerate the repository metadata of the trees that changed",
    "remove_release": "remove the release from unverified/ and stagerollout/",
    "notify_watchers": "set the Cc groups for the new state and tell them",
    "comment_deferred": "comment which release holds the staged-rollout slot",
    "comment_outcome": "comment what was done, for the release managers",
    "reply_provider": "reply to the technology provider (requestors) with the outcome",
    "comment_failure": "comment what failed and what a person can do about it",
    "resolve_ticket": "resolve the ticket",
}

# Conditions a transition row may require (``?name``), and what to say when one is not met.
GUARDS: Mapping[str, tuple[str, str]] = {
    "emergency": (
        "EmergencyRelease is Yes",
        "only an emergency release (EmergencyRelease = Yes) may do this",
    ),
    "not_emergency": ("EmergencyRelease is No", "an emergency release takes another path"),
    "slot_free": (
        "no other release of the major release is in StageRollout",
        "another release of the major release holds the staged-rollout slot",
    ),
    "slot_taken": (
        "another release of the major release is in StageRollout",
        "the staged-rollout slot is free",
    ),
    "retrying": (
        "the target is the state whose processing failed",
        "from Failed a release may only be retried into the state whose processing failed",
    ),
}


@dataclass(frozen=True, kw_only=True)
class Transition:
    """One row: ``[From|From…] - <To> ?guard… {action}… -> [Result]``."""

    sources: tuple[RolloutState, ...]
    target: RolloutState
    guards: tuple[str, ...]
    actions: tuple[str, ...]
    result: RolloutState
    line: int  # 1-based position in the definition's table, for messages

    def render(self) -> str:
        """The row as it is written in the definition."""
        sources = "|".join(s.label for s in self.sources)
        guards = "".join(f" ?{g}" for g in self.guards)
        actions = "".join(f" {{{a}}}" for a in self.actions)
        return f"[{sources}] - <{self.target.label}>{guards}{actions} -> [{self.result.label}]"


@dataclass(frozen=True, kw_only=True)
class Definition:
    """A checked workflow: which states it uses, where it starts and ends, and its table."""

    name: str
    description: str
    initial: RolloutState
    states: Mapping[RolloutState, str]  # state -> what it means in this workflow
    terminal: frozenset[RolloutState]
    transitions: tuple[Transition, ...]
    failure_actions: tuple[str, ...]

    def rows_from(self, state: RolloutState) -> tuple[Transition, ...]:
        """The rows that leave ``state``, in table order."""
        return tuple(t for t in self.transitions if state in t.sources)

    def allowed_targets(self, state: RolloutState) -> tuple[RolloutState, ...]:
        """The states a person may ask for from ``state``, in table order, without repeats."""
        return tuple(dict.fromkeys(t.target for t in self.rows_from(state)))
