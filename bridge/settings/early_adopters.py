"""Reading the early-adopter teams from the settings (``early_adopters``: a TOML array of
tables, or ``NAME:NGI:GROUP:MAJOR+MAJOR,…`` in the environment).

Part of ``load``: it adds what is wrong to the problem list and connects to nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.settings import major_releases, model, readers

_TEAM_KEYS = ("name", "ngi", "group", "major_releases")


def _team_tables(value: Any, problems: list[str]) -> list[Mapping[str, Any]]:
    """The teams as tables: a TOML array of tables, or ``name:NGI:group:MAJOR+MAJOR,…``."""
    if isinstance(value, list):
        tables = [item for item in value if isinstance(item, Mapping)]
        if len(tables) != len(value):
            problems.append("early_adopters: each team is a table ([[early_adopters]])")
        return tables
    tables = []
    for item in str(value).split(","):
        if not item.strip():
            continue
        parts = [p.strip() for p in item.split(":")]
        if len(parts) != 4:
            problems.append(
                f"early_adopters: {item.strip()!r} is not NAME:NGI:GROUP:MAJOR+MAJOR (GROUP may "
                "be empty)"
            )
            continue
        name, ngi, group, majors = parts
        tables.append(
            {"name": name, "ngi": ngi, "group": group, "major_releases": majors.split("+")}
        )
    return tables


def early_adopters(
    value: Any, majors: tuple[str, ...], problems: list[str]
) -> tuple[model.EarlyAdopterTeam, ...]:
    """The early-adopter teams; the built-in default (the one global group) when none are set."""
    if value is None or value == "" or value == []:
        return model.DEFAULT_EARLY_ADOPTERS
    teams: list[model.EarlyAdopterTeam] = []
    for table in _team_tables(value, problems):
        name = str(table.get("name") or "").strip()
        where = f"early_adopters: team {name!r}" if name else "early_adopters: a team"
        unknown = sorted(set(map(str, table)) - set(_TEAM_KEYS))
        if unknown:
            problems.append(
                f"{where}: unknown key {', '.join(unknown)} (known: {', '.join(_TEAM_KEYS)})"
            )
        if not major_releases.SAFE_NAME.match(name):
            problems.append(
                f"{where}: the name must be 1-64 letters, digits, '.', '_', '+' or '-' (it is a "
                "value of the EarlyAdopters field)"
            )
            continue
        ngi = str(table.get("ngi") or "").strip()
        if not ngi or len(ngi) > 100 or not ngi.isprintable():
            problems.append(f"{where}: ngi must name the team's NGI (at most 100 characters)")
        group = str(table.get("group") or "").strip() or f"sw-rel-ea-{name}"
        if len(group) > 200 or not group.isprintable():
            problems.append(f"{where}: group {group!r} is not an RT group name")
        adopted = readers.names(table.get("major_releases"), f"{where}: major_releases", problems)
        if not adopted:
            problems.append(f"{where}: major_releases must name the major releases it adopts")
        unknown_majors = [m for m in adopted if majors and m not in majors]
        if unknown_majors:
            problems.append(
                f"{where}: {', '.join(unknown_majors)} not among major_releases "
                f"({', '.join(majors)})"
            )
        teams.append(
            model.EarlyAdopterTeam(name=name, ngi=ngi, group=group, major_releases=adopted)
        )
    for label, key in (("name", "name"), ("group", "group")):
        seen = [getattr(t, key) for t in teams]
        twice = sorted({v for v in seen if seen.count(v) > 1})
        if twice:
            problems.append(
                f"early_adopters: the {label} {', '.join(twice)} is used by more than one team"
            )
    return tuple(teams)
