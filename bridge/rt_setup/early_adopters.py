"""The early adopters' part of the RT set-up, from the settings' teams: the ``EarlyAdopters``
field's values (the team names, exactly) and editors (the teams' groups), and a group per team.

Both ways of applying the set-up (``apply``, ``initialdata``) take the fields and groups from
here. Data only: it reads no settings itself and talks to no RT.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from bridge import rt_setup
from bridge.settings import model as settings_model

FIELD = "EarlyAdopters"
Teams = Sequence[settings_model.EarlyAdopterTeam]

# A team's members see the release queue and its tickets (TEAM_RIGHTS, on the queue), and add
# their team to (or remove it from) EarlyAdopters: ModifyCustomField on that field only (its
# editors). RT's rights cannot tell one team's value from another's: the bridge checks who adds
# which team (a member of it, or the staged-rollout team).
TEAM_RIGHTS = ("SeeQueue", "ShowTicket", "SeeCustomField")
# Before fields named their editors, teams had ModifyCustomField on the queue (every field).
TEAM_RETIRED = ("ModifyCustomField",)


def custom_fields(
    teams: Teams = settings_model.DEFAULT_EARLY_ADOPTERS,
) -> tuple[rt_setup.CustomFieldSpec, ...]:
    """The product's custom fields, EarlyAdopters offering exactly the teams' names and
    changed by the teams' groups besides its own editors."""
    names = tuple(t.name for t in teams)
    return tuple(
        dataclasses.replace(
            cf,
            values=names,
            editors=tuple(dict.fromkeys((*cf.editors, *(t.group for t in teams)))),
        )
        if cf.name == FIELD
        else cf
        for cf in rt_setup.CUSTOM_FIELDS
    )


def groups(
    teams: Teams = settings_model.DEFAULT_EARLY_ADOPTERS,
) -> tuple[rt_setup.GroupSpec, ...]:
    """The product's groups and one per team (a team's group that is a product group already
    gets the team's rights besides its own)."""
    team_of = {t.group: t for t in teams}
    result = []
    for spec in rt_setup.GROUPS:
        if spec.name in team_of:
            rights = tuple(dict.fromkeys((*spec.rights, *TEAM_RIGHTS)))
            retired = tuple(dict.fromkeys((*spec.retired, *TEAM_RETIRED)))
            spec = dataclasses.replace(spec, rights=rights, retired=retired)
        result.append(spec)
    known = {g.name for g in rt_setup.GROUPS}
    for team in teams:
        if team.group in known:
            continue
        known.add(team.group)
        where = f" ({team.ngi})" if team.ngi else ""
        result.append(
            rt_setup.GroupSpec(
                name=team.group,
                description=f"Early-adopter team {team.name}{where}",
                rights=TEAM_RIGHTS,
                retired=TEAM_RETIRED,
            )
        )
    return tuple(result)
