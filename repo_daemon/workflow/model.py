"""The workflow's vocabulary and shape: states come from ``bridge.records.RolloutState``; the
guards a row may require are data here (what each means, when it holds, what to say when it
does not); a definition is a set of described states and an ordered table of transitions.

The actions a row may name are the registry's (``workflow.actions``). Plain data; no I/O, no
decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bridge.records import RolloutState
from repo_daemon.errors import WorkflowInvalid

__all__ = ["GUARDS", "Definition", "Facts", "Guard", "StateInfo", "Transition", "WorkflowInvalid"]


@dataclass(frozen=True, kw_only=True)
class Facts:
    """What the guards look at, gathered before the engine is asked."""

    emergency: bool = False
    # Other releases of the same major release holding its staged-rollout slot (ticket ids).
    slot_holders: tuple[int, ...] = ()
    # For a release in Failed: the state whose processing failed (where a retry goes).
    failed_target: RolloutState | None = None
    # Who asked (an RT user name) and the workflow roles their RT groups give them; None when
    # the bridge moves a release itself (a Deferred release moving in): then no role is needed.
    actor: str = ""
    actor_roles: frozenset[str] | None = None


def _holders(facts: Facts) -> str:
    return ", ".join(f"#{t}" for t in facts.slot_holders)


@dataclass(frozen=True, kw_only=True)
class Guard:
    """A condition a row may require (``?name``)."""

    name: str
    meaning: str  # what it means when it holds
    refusal: str  # what to say when a row is refused because it does not hold
    holds: Callable[[Facts, RolloutState], bool]  # (facts, the state asked for)
    opposite: str | None = None  # a guard that can never hold together with this one
    only_from_failed: bool = False  # only meaningful on rows from [Failed]
    explain: Callable[[Facts], str] | None = None  # added to the reason when the row is taken


_GUARD_LIST = (
    Guard(
        name="emergency",
        meaning="EmergencyRelease is Yes",
        refusal="only an emergency release (EmergencyRelease = Yes) may do this",
        holds=lambda facts, _asked: facts.emergency,
        opposite="not_emergency",
    ),
    Guard(
        name="not_emergency",
        meaning="EmergencyRelease is No",
        refusal="an emergency release takes another path",
        holds=lambda facts, _asked: not facts.emergency,
        opposite="emergency",
    ),
    Guard(
        name="slot_free",
        meaning="no other release of the major release is in StageRollout",
        refusal="another release of the major release holds the staged-rollout slot",
        holds=lambda facts, _asked: not facts.slot_holders,
        opposite="slot_taken",
    ),
    Guard(
        name="slot_taken",
        meaning="another release of the major release is in StageRollout",
        refusal="the staged-rollout slot is free",
        holds=lambda facts, _asked: bool(facts.slot_holders),
        opposite="slot_free",
        explain=lambda facts: f"the staged-rollout slot is held by {_holders(facts)}",
    ),
    Guard(
        name="retrying",
        meaning="the target is the state whose processing failed",
        refusal="from Failed a release may only be retried into the state whose processing failed",
        holds=lambda facts, asked: facts.failed_target == asked,
        only_from_failed=True,
    ),
)
GUARDS: Mapping[str, Guard] = {g.name: g for g in _GUARD_LIST}


@dataclass(frozen=True, kw_only=True)
class StateInfo:
    """What a state means in a workflow, what people are told when a release enters it (the
    comment's ``news``; the provider's ``reply``, where ``{subject}`` stands for the ticket's
    subject), which groups are Cc on the ticket while it is there, and who owns it then
    (settings may override both)."""

    description: str
    news: str = ""
    reply: str = ""
    cc: tuple[str, ...] = ()
    owner: str = ""  # the RT user who owns the ticket while it is here; "" keeps the owner


@dataclass(frozen=True, kw_only=True)
class Transition:
    """One row: ``[From|From…] - <To> @role… ?guard… {action}… -> [Result]``.

    ``roles`` are who may ask for it (empty: anyone RT lets change RolloutProgress);
    ``actions`` are the row's actions with every named group (``{@group}``) expanded, in
    order; ``written`` is the row's action part as written (for rendering it back)."""

    sources: tuple[RolloutState, ...]
    target: RolloutState
    roles: tuple[str, ...] = ()
    guards: tuple[str, ...]
    actions: tuple[str, ...]
    result: RolloutState
    line: int  # 1-based position in the definition's table, for messages
    written: tuple[str, ...] = ()

    def render(self) -> str:
        """The row as it is written in the definition."""
        sources = "|".join(s.label for s in self.sources)
        roles = "".join(f" @{r}" for r in self.roles)
        guards = "".join(f" ?{g}" for g in self.guards)
        actions = "".join(f" {{{a}}}" for a in (self.written or self.actions))
        return (
            f"[{sources}] - <{self.target.label}>{roles}{guards}{actions} -> [{self.result.label}]"
        )

    def may_be_asked_by(self, roles: frozenset[str] | None) -> bool:
        """Whether someone with ``roles`` may ask for this row (None: the bridge itself)."""
        return roles is None or not self.roles or bool(roles.intersection(self.roles))


@dataclass(frozen=True, kw_only=True)
class Definition:
    """A checked workflow: its states, where it starts and ends, its groups and its table."""

    name: str
    description: str
    initial: RolloutState
    states: Mapping[RolloutState, StateInfo]
    terminal: frozenset[RolloutState]
    transitions: tuple[Transition, ...]
    failure_actions: tuple[str, ...]
    groups: Mapping[str, tuple[str, ...]]
    # The roles rows may name (``@name``) and who they are, in words; settings map each to
    # an RT group.
    roles: Mapping[str, str] = field(default_factory=dict)

    def rows_from(self, state: RolloutState) -> tuple[Transition, ...]:
        """The rows that leave ``state``, in table order."""
        return tuple(t for t in self.transitions if state in t.sources)

    def allowed_targets(self, state: RolloutState) -> tuple[RolloutState, ...]:
        """The states a person may ask for from ``state``, in table order, without repeats."""
        return tuple(dict.fromkeys(t.target for t in self.rows_from(state)))

    def info(self, state: RolloutState) -> StateInfo:
        """What ``state`` means here (an empty description for a state the workflow does not
        use: the engine blocks moves into those)."""
        return self.states.get(state) or StateInfo(description="")
