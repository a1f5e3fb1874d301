"""The workflow engine: given a definition, where a release is, what a person asked for and the
facts that matter, decide what happens. Pure: no database, RT, clock or files.

``decide`` answers MOVE (run these actions, end in this state), STAY (nothing to do: the release
is already there) or BLOCK (put RolloutProgress back and say why, naming what is allowed, and
for a move by someone whose roles the row does not name, who may make it).
``on_failure`` says what a processing failure does.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from bridge.records import RolloutState
from repo_daemon.workflow import model

Facts = model.Facts


class Outcome(enum.Enum):
    """What the decision is."""

    MOVE = "move"
    STAY = "stay"
    BLOCK = "block"


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The engine's answer. ``state`` is where RolloutProgress must end up."""

    outcome: Outcome
    state: RolloutState
    actions: tuple[str, ...] = ()
    reason: str = ""
    transition: model.Transition | None = None


def _holds(guard: str, asked: RolloutState, facts: Facts) -> bool:
    return model.GUARDS[guard].holds(facts, asked)  # the loader refuses unknown guards


def _allowed(definition: model.Definition, state: RolloutState) -> str:
    targets = definition.allowed_targets(state)
    if not targets:
        return f"{state.label} is final: nothing follows it"
    return f"from {state.label} it may go to: {', '.join(t.label for t in targets)}"


def who_may(definition: model.Definition, roles: tuple[str, ...], groups: Mapping[str, str]) -> str:
    """The people of ``roles`` in words, e.g. "release managers (@admin, RT group
    sw-rel-admin)"."""
    named = []
    for role in roles:
        where = f", RT group {groups[role]}" if role in groups else ""
        named.append(f"{definition.roles.get(role, role)} (@{role}{where})")
    if len(named) <= 1:
        return "".join(named)
    return ", ".join(named[:-1]) + " or " + named[-1]


def decide(
    definition: model.Definition,
    *,
    at: RolloutState,
    asked: RolloutState,
    facts: Facts,
    role_groups: Mapping[str, str] | None = None,
) -> Decision:
    """What happens when a person sets RolloutProgress to ``asked`` while the release is
    ``at`` (where the bridge last put it). A row is taken only when its guards hold and the
    actor has one of its roles (``facts.actor_roles``); ``role_groups`` (role -> RT group)
    only words the refusal."""
    current, requested = at, asked
    if requested == current:
        return Decision(outcome=Outcome.STAY, state=current, reason=f"already {current.label}")

    def block(reason: str) -> Decision:
        allowed = _allowed(definition, current)
        return Decision(
            outcome=Outcome.BLOCK,
            state=current,
            reason=f"{reason}; RolloutProgress stays {current.label} ({allowed})",
        )

    # A final state resolves the ticket; only the rows the definition has may leave it.
    if current in definition.terminal and not definition.rows_from(current):
        return block(f"{current.label} is final")
    if requested not in definition.states:
        return block(f"the {definition.name} workflow does not use {requested.label}")
    candidates = [t for t in definition.rows_from(current) if t.target == requested]
    if not candidates:
        return block(f"RolloutProgress cannot go from {current.label} to {requested.label}")
    not_theirs: list[model.Transition] = []
    for row in candidates:
        if all(_holds(g, requested, facts) for g in row.guards):
            if not row.may_be_asked_by(facts.actor_roles):
                not_theirs.append(row)
                continue
            reason = f"{current.label} → {row.result.label}"
            if row.result != requested:
                reason += f" (asked for {requested.label})"
            explained = [explain(facts) for g in row.guards if (explain := model.GUARDS[g].explain)]
            if explained:
                reason += ": " + "; ".join(explained)
            return Decision(
                outcome=Outcome.MOVE,
                state=row.result,
                actions=row.actions,
                reason=reason,
                transition=row,
            )
    if not_theirs:
        roles = tuple(dict.fromkeys(r for row in not_theirs for r in row.roles))
        actor = facts.actor or "whoever made this change"
        return block(
            f"{current.label} → {requested.label} may only be asked for by "
            f"{who_may(definition, roles, role_groups or {})}, and {actor} is not one of them"
        )
    first_unmet = next(g for g in candidates[0].guards if not _holds(g, requested, facts))
    return block(
        f"{current.label} → {requested.label} is not allowed now: "
        f"{model.GUARDS[first_unmet].refusal}"
    )


def on_failure(
    definition: model.Definition, *, at: RolloutState, attempted: RolloutState, error: str
) -> Decision:
    """A processing failure while moving from ``at`` towards ``attempted``."""
    current = at
    return Decision(
        outcome=Outcome.MOVE,
        state=RolloutState.FAILED,
        actions=definition.failure_actions,
        reason=(
            f"{current.label} → {attempted.label} failed: {error}. Fix the cause, then set "
            f"RolloutProgress to {attempted.label} to retry, or to Rejected"
        ),
    )
