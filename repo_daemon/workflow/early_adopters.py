"""Early adopters in the workflow: which teams are told when a release enters staged rollout,
and what adding a team to (or removing it from) the ticket's ``EarlyAdopters`` field means.

The rules, pure: each handler takes the gathered inputs and returns effects (who is told,
who watches, what is recorded, what the ticket says); nothing is written here.

- On entry into staged rollout (the ``tell_early_adopters`` action) the teams of the release's
  major release that have not accepted yet are told: their groups are Cc of that comment only.
- A team accepts by being added to EarlyAdopters — by one of its members or by the
  staged-rollout team: its acceptance is recorded (who added it, when) and its group watches
  the ticket (Cc) in this and every later state. Added by anyone else (RT's rights cannot tell
  one value of the field from another), it is taken off again with a comment.
- A team removed from EarlyAdopters withdraws: its acceptance is marked withdrawn (no longer
  counted) and its group stops watching; added again, it accepts anew.
- A name the settings do not know is commented and ignored; so is an acceptance of a release
  in a final state.
"""

from __future__ import annotations

from collections.abc import Sequence

from bridge.settings import model as settings_model
from repo_daemon.workflow import effects
from repo_daemon.workflow.gather import ChangeInputs, Inputs

FIELD = "EarlyAdopters"


def _names(teams: Sequence[settings_model.EarlyAdopterTeam]) -> str:
    return ", ".join(f"{t.name} ({t.ngi})" if t.ngi else t.name for t in teams)


def tell_early_adopters(inputs: Inputs) -> effects.Result:
    """Tell the early-adopter teams of the release's major release that it is in staged
    rollout and how to take part (teams that accepted already watch the ticket anyway)."""
    major = inputs.ticket.major_release
    accepted = {a.team for a in inputs.accepted}
    teams = [t for t in inputs.early_adopters if t.adopts(major) and t.name not in accepted]
    if not teams:
        return effects.Result(detail=f"no early-adopter team of {major} to tell")
    text = (
        f"Early adopters of {major}: {_names(teams)}. The release is in staged rollout; "
        f"to take part, add your team to the ticket's {FIELD} field (your team then watches "
        "the ticket)."
    )
    return effects.Result(
        detail=f"told {', '.join(t.name for t in teams)}",
        effects=(
            effects.TellGroups(groups=tuple(t.group for t in teams)),
            effects.Comment(text=text),
        ),
    )


def early_adopters_changed(inputs: ChangeInputs) -> effects.Handling:
    """A team added to EarlyAdopters accepts; one removed withdraws (one value per change, as
    RT records a multi-value field)."""
    request = inputs.request
    found: list[effects.Handling] = []
    if request.old_value:
        found.append(_removed(inputs, request.old_value))
    if request.new_value:
        found.append(_added(inputs, request.new_value))
    return effects.Handling(
        detail="; ".join(h.detail for h in found) or "EarlyAdopters: nothing changed",
        effects=tuple(e for h in found for e in h.effects),
    )


def _added(inputs: ChangeInputs, name: str) -> effects.Handling:
    team = inputs.team(name)
    actor = inputs.request.actor or "someone"
    if team is None:
        known = ", ".join(t.name for t in inputs.early_adopters) or "none"
        text = (
            f"{FIELD}: {name!r} (added by {actor}) is not an early-adopter team the bridge knows "
            f"(known: {known}); it is ignored."
        )
        return effects.Handling(detail=f"unknown team {name!r} ignored", effects=_say(text))
    if inputs.final:
        text = (
            f"{FIELD}: {team.name} was added by {actor}, but the release is "
            f"{inputs.release.state.label} (final): too late to take part; not recorded."
        )
        return effects.Handling(detail=f"{team.name} too late", effects=_say(text))
    allowed = (inputs.staged_rollout_group, team.group)
    if not inputs.member_of(allowed):
        return _refused(inputs, team, actor, allowed)
    if any(a.team == team.name for a in inputs.accepted):
        return effects.Handling(detail=f"{team.name} had accepted already")
    record = effects.RecordAcceptance(
        team=team.name,
        ngi=team.ngi,
        major_release=inputs.ticket.major_release,
        actor=inputs.request.actor,
        at=inputs.changed_at,
        transaction_id=inputs.request.transaction_id,
    )
    standing = (*(a.team for a in inputs.accepted), team.name)
    text = (
        f"Early adopters: {_names([team])} takes part in the staged rollout (added by {actor} "
        f"at {inputs.changed_at:%Y-%m-%d %H:%M:%S} UTC); its group {team.group} watches the "
        "ticket from now on."
    )
    return effects.Handling(
        detail=f"{team.name} accepted",
        effects=(record, _watchers(inputs, standing), *_say(text)),
    )


def _refused(
    inputs: ChangeInputs, team: settings_model.EarlyAdopterTeam, actor: str, allowed: Sequence[str]
) -> effects.Handling:
    """Someone neither of the staged-rollout team nor of the team added it: taken off again
    (when RT still shows it), nothing recorded."""
    values = inputs.ticket.ticket.custom_fields.get(FIELD, ())
    put_back = (
        (effects.SetFields(fields={FIELD: tuple(v for v in values if v != team.name)}),)
        if team.name in values
        else ()
    )
    text = (
        f"{FIELD}: only the staged-rollout team ({allowed[0]}) or the members of {team.name}'s "
        f"group ({allowed[1]}) may add {team.name}; {actor} is in neither, so the bridge took "
        "it off again."
    )
    return effects.Handling(
        detail=f"{team.name} added by {actor}, who may not: taken off",
        effects=(*put_back, *_say(text)),
    )


def _removed(inputs: ChangeInputs, name: str) -> effects.Handling:
    team = inputs.team(name)
    if team is None or not any(a.team == name for a in inputs.accepted):
        return effects.Handling(detail=f"{name!r} removed; it had not accepted")
    actor = inputs.request.actor or "someone"
    standing = tuple(a.team for a in inputs.accepted if a.team != name)
    text = (
        f"Early adopters: {_names([team])} no longer takes part in the staged rollout (removed "
        f"by {actor}); its acceptance is withdrawn and its group {team.group} no longer "
        "watches the ticket."
    )
    withdrawal = effects.WithdrawAcceptance(
        team=name,
        actor=inputs.request.actor,
        at=inputs.changed_at,
        transaction_id=inputs.request.transaction_id,
    )
    return effects.Handling(
        detail=f"{name} withdrew", effects=(withdrawal, _watchers(inputs, standing), *_say(text))
    )


def _say(text: str) -> tuple[effects.Effect, ...]:
    return (effects.Comment(text=text),)


def _watchers(inputs: ChangeInputs, standing: Sequence[str]) -> effects.SetWatchers:
    """The ticket's watchers with the teams named in ``standing`` accepted."""
    return effects.SetWatchers(cc=inputs.cc(standing), admin_cc=inputs.people.admin_cc)
