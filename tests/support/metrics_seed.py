"""A seeded release history for the provisioning metrics: 200 releases over 14 months
(2025-10 to 2026-11), three major releases, emergencies, rejections in verification and in
staged rollout, deferrals, failures retried, and five early-adopter teams in three NGIs that
accept (and sometimes withdraw from) staged rollouts and fetch what they accepted.

``seeded_history()`` builds it deterministically from small arithmetic patterns (no random
numbers); ``write_records`` puts it straight into the tables the metrics read, as the bridge
would have recorded it; ``EXPECTED`` is every figure of docs/metrics.md's definitions for the
whole period, and ``EXPECTED_UMD5`` the monthly ones for UMD-5 alone, worked out from the
stories (not by the product's code) and written down as literals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bridge.store import tables

PERIOD = (datetime(2025, 10, 1), datetime(2026, 12, 1))  # [since, until): 14 months
MAJORS = ("UMD-4", "UMD-5", "CMD-OS-1")
# (team, NGI, RT group, the major releases it adopts)
TEAMS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("de-kit", "NGI_DE", "sw-rel-ea-de-kit", ("UMD-4", "UMD-5")),
    ("de-desy", "NGI_DE", "sw-rel-ea-de-desy", ("UMD-5",)),
    ("it-infn", "NGI_IT", "sw-rel-ea-it-infn", ("UMD-4", "UMD-5", "CMD-OS-1")),
    ("it-cnaf", "NGI_IT", "sw-rel-ea-it-cnaf", ("CMD-OS-1",)),
    ("fr-in2p3", "NGI_FRANCE", "sw-rel-ea-fr-in2p3", ("UMD-5", "CMD-OS-1")),
)
BRIDGE = "rollout-bridge"
ADMIN, QC, SR, PROVIDER = "admin-carl", "qc-anna", "sr-bob", "provider-dora"


@dataclass(frozen=True, kw_only=True)
class Move:
    """The release entered ``state`` at ``at``, moved by ``actor``."""

    at: datetime
    state: str
    actor: str


@dataclass(frozen=True, kw_only=True)
class TeamAcceptance:
    team: str
    ngi: str
    at: datetime
    actor: str
    withdrawn_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class TeamFetch:
    """A member of ``team`` first fetched the release from its staged-rollout area."""

    team: str
    person: str
    at: datetime


@dataclass(frozen=True, kw_only=True)
class Story:
    """One release's life: created (Submitted) at ``created_at``, then ``moves`` in order."""

    ticket_id: int
    created_at: datetime
    major_release: str
    emergency: bool
    moves: tuple[Move, ...]
    acceptances: tuple[TeamAcceptance, ...] = ()
    fetches: tuple[TeamFetch, ...] = ()
    report_at: datetime | None = None

    @property
    def state(self) -> str:
        return self.moves[-1].state if self.moves else "Submitted"


# What happens to the k-th release delivered in a month (k = 0..13), by letter:
#   A: verified, staged rollout, Production          B: as A, Deferred before staged rollout
#   C: rejected in staged rollout                    D: rejected in verification
#   E: verifier waits for the provider once, then A  F: emergency, Production without rollout
#   G: the first processing fails, retried, then A   H: still in verification (open)
#   I: ignored at once
FATES = "AABCDEFAGBCIHA"


def _hours(n: float) -> timedelta:
    return timedelta(hours=n)


def _story(i: int, ticket: int, created: datetime, major: str, fate: str) -> Story:
    """The ``i``-th release's life by its fate; every duration is a pattern of ``i``."""
    moves: list[Move] = []
    at = created

    def go(after: timedelta, state: str, actor: str) -> datetime:
        nonlocal at
        at = at + after
        moves.append(Move(at=at, state=state, actor=actor))
        return at

    if fate == "I":
        go(_hours(5), "Ignored", ADMIN)
        return Story(ticket_id=ticket, created_at=created, major_release=major, emergency=False,
                     moves=tuple(moves))  # fmt: skip
    if fate == "G":
        go(_hours(1), "Failed", BRIDGE)
        go(_hours(2 + i % 10), "Unverified", ADMIN)
    else:
        go(_hours(1 + i % 5), "Unverified", ADMIN)
    go(_hours(24 + (i * 7) % 48), "InVerification", QC)
    if fate == "H":
        return Story(ticket_id=ticket, created_at=created, major_release=major, emergency=False,
                     moves=tuple(moves))  # fmt: skip
    if fate == "E":
        go(_hours(24), "WaitingForResponse", QC)
        go(_hours(72 + (i * 5) % 96), "InVerification", PROVIDER)
    verifying = _hours(48 + (i * 13) % 120)
    if fate == "D":
        go(verifying, "Rejected", QC)
        return Story(ticket_id=ticket, created_at=created, major_release=major, emergency=False,
                     moves=tuple(moves))  # fmt: skip
    if fate == "F":
        go(verifying, "Production", ADMIN)
        return Story(ticket_id=ticket, created_at=created, major_release=major, emergency=True,
                     moves=tuple(moves))  # fmt: skip
    if fate == "B":
        go(verifying, "Deferred", BRIDGE)
        entered = go(_hours(24 + (i * 11) % 100), "StageRollout", BRIDGE)
    else:
        entered = go(verifying, "StageRollout", QC)
    acceptances, fetches = _early_adopters(i, major, entered)
    rollout = _hours(120 + (i * 17) % 240)
    if fate == "C":
        go(rollout, "Rejected", SR)
        return Story(ticket_id=ticket, created_at=created, major_release=major, emergency=False,
                     moves=tuple(moves), acceptances=acceptances, fetches=fetches)  # fmt: skip
    production = go(rollout, "Production", SR)
    report = (
        None,
        production + timedelta(days=3, hours=i % 24),
        production + timedelta(days=10),
        production - timedelta(days=1),  # filled in before the acceptance: counts as 0
    )[i % 4]
    return Story(ticket_id=ticket, created_at=created, major_release=major, emergency=False,
                 moves=tuple(moves), acceptances=acceptances, fetches=fetches,
                 report_at=report)  # fmt: skip


def _early_adopters(
    i: int, major: str, entered: datetime
) -> tuple[tuple[TeamAcceptance, ...], tuple[TeamFetch, ...]]:
    """Of the teams adopting ``major``, the j-th accepts unless (i + j) % 3 == 0, withdraws
    when (i + j) % 7 == 0, and fetches when (i + j) is even; when i % 5 == 0 a team that did not
    accept fetches anyway."""
    acceptances: list[TeamAcceptance] = []
    fetches: list[TeamFetch] = []
    adopting = [t for t in TEAMS if major in t[3]]
    for j, (team, ngi, _group, _majors) in enumerate(adopting):
        if (i + j) % 3 == 0:
            if i % 5 == 0:
                fetches.append(
                    TeamFetch(team=team, person=f"{team}-admin", at=entered + _hours(6 + j))
                )
            continue
        accepted = entered + _hours(2 + 3 * j)
        withdrawn = accepted + _hours(5) if (i + j) % 7 == 0 else None
        acceptances.append(
            TeamAcceptance(team=team, ngi=ngi, at=accepted, actor=f"{team}-lead",
                           withdrawn_at=withdrawn)
        )  # fmt: skip
        if (i + j) % 2 == 0:
            fetches.append(
                TeamFetch(team=team, person=f"{team}-admin", at=accepted + _hours(1 + j))
            )
    return tuple(acceptances), tuple(fetches)


def seeded_history() -> tuple[Story, ...]:
    """The 200 releases, by ticket id (1001 on) in the order they were delivered: 14 a month
    on days 1, 3, ..., 27, and four emergencies on the 28th of 2026-01, -04, -07 and -10."""
    stories: list[Story] = []
    i = 0
    for m in range(14):
        year, month = 2025 + (9 + m) // 12, (9 + m) % 12 + 1
        fates = FATES + ("F" if m in (3, 6, 9, 12) else "")
        for k, fate in enumerate(fates):
            day = 28 if k == 14 else 1 + 2 * k
            created = datetime(year, month, day, 9 + k % 8, (m * 7 + k * 3) % 60)
            stories.append(_story(i, 1001 + i, created, MAJORS[(m + k) % 3], fate))
            i += 1
    return tuple(stories)


def write_records(engine: sa.Engine, stories: Iterable[Story]) -> None:
    """The stories as the bridge records them: ``releases``, one ``state_history`` row per
    stay, ``early_adopter_acceptances`` and ``release_fetches`` (bulk inserts, one
    transaction)."""
    releases: list[dict[str, Any]] = []
    stays: list[dict[str, Any]] = []
    accepted: list[dict[str, Any]] = []
    fetched: list[dict[str, Any]] = []
    txn = 0
    for story in stories:
        releases.append({
            "ticket_id": story.ticket_id, "state": story.state,
            "major_release": story.major_release, "emergency": story.emergency,
            "updated_at": story.moves[-1].at if story.moves else story.created_at,
            "stage_report_at": story.report_at,
        })  # fmt: skip
        entries = [("Submitted", story.created_at, PROVIDER), *[
            (m.state, m.at, m.actor) for m in story.moves]]  # fmt: skip
        for n, (state, at, actor) in enumerate(entries):
            txn += 1
            left = entries[n + 1][1] if n + 1 < len(entries) else None
            stays.append({
                "ticket_id": story.ticket_id, "state": state, "entered_at": at, "left_at": left,
                "transaction_id": txn, "actor": actor,
            })  # fmt: skip
        for a in story.acceptances:
            txn += 1
            accepted.append({
                "ticket_id": story.ticket_id, "team": a.team, "ngi": a.ngi,
                "major_release": story.major_release, "accepted_by": a.actor,
                "accepted_at": a.at, "transaction_id": txn,
                "withdrawn_by": a.actor if a.withdrawn_at else None,
                "withdrawn_at": a.withdrawn_at,
                "withdrawn_transaction_id": txn + 100_000 if a.withdrawn_at else None,
            })  # fmt: skip
        teams_of = {f.person: f.team for f in story.fetches}
        for f in story.fetches:
            fetched.append({
                "ticket_id": story.ticket_id, "person": f.person, "teams": teams_of[f.person],
                "area": f"stagerollout/{story.major_release}", "first_at": f.at,
            })  # fmt: skip
    with engine.begin() as conn:
        for table, rows in (
            (tables.releases, releases),
            (tables.state_history, stays),
            (tables.early_adopter_acceptances, accepted),
            (tables.release_fetches, fetched),
        ):
            if rows:
                conn.execute(table.insert(), rows)


# Every figure for the whole PERIOD, worked out from the stories by a separate count over the
# Story objects (never the product's code or the tables), by the rules of docs/metrics.md; two
# checked by hand: 1001 (i=0, UMD-4: de-kit does not accept but fetches as i % 5 == 0, it-infn
# accepts and does not fetch: (1, 1)) and 1002 (i=1, UMD-5: de-kit, de-desy and fr-in2p3
# accept, de-desy and fr-in2p3 fetch: (3, 2)). Monthly figures list every month of the period in
# order; M.SA1.3-6/7 list only months with at least one release; durations are (n, median, p90)
# in seconds; time_in_state lists the states with at least one stay ending in the period.
EXPECTED: dict[str, Any] = {
    "months": (
        "2025-10",
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
        "2026-03",
        "2026-04",
        "2026-05",
        "2026-06",
        "2026-07",
        "2026-08",
        "2026-09",
        "2026-10",
        "2026-11",
    ),
    "monthly": {
        "M.REPO-1": (14, 14, 14, 15, 14, 14, 15, 14, 14, 15, 14, 14, 15, 14),
        "M.REPO-2": (10, 11, 11, 11, 12, 12, 10, 12, 11, 11, 12, 11, 11, 12),
        "M.REPO-3": (3, 9, 7, 10, 6, 8, 8, 8, 8, 8, 8, 8, 9, 7),
        "M.SA1.3-2": (3, 9, 7, 10, 6, 8, 8, 8, 8, 8, 8, 8, 9, 7),
        "M.SA1.3-3": (1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2),
    },
    # ticket -> (teams whose acceptance stands, teams whose members fetched it)
    "M.SA1.3-1": {
        1001: (1, 1),
        1002: (3, 2),
        1003: (2, 2),
        1004: (1, 1),
        1006: (1, 1),
        1008: (2, 2),
        1009: (2, 2),
        1010: (1, 1),
        1011: (3, 2),
        1014: (2, 2),
        1015: (2, 2),
        1016: (2, 2),
        1017: (2, 1),
        1018: (3, 1),
        1020: (2, 1),
        1022: (2, 1),
        1023: (2, 1),
        1024: (3, 1),
        1025: (2, 1),
        1028: (1, 1),
        1029: (1, 1),
        1030: (1, 0),
        1031: (2, 3),
        1032: (2, 1),
        1034: (1, 1),
        1036: (0, 1),
        1037: (2, 1),
        1038: (2, 1),
        1039: (1, 1),
        1042: (1, 0),
        1043: (1, 0),
        1044: (3, 2),
        1045: (2, 2),
        1046: (1, 2),
        1048: (1, 0),
        1050: (2, 2),
        1051: (2, 3),
        1052: (1, 1),
        1053: (3, 1),
        1056: (2, 3),
        1058: (2, 1),
        1059: (2, 1),
        1060: (1, 0),
        1061: (2, 3),
        1063: (1, 1),
        1065: (2, 1),
        1066: (1, 1),
        1067: (2, 1),
        1068: (2, 1),
        1071: (1, 2),
        1072: (2, 0),
        1073: (1, 0),
        1074: (3, 2),
        1075: (2, 2),
        1077: (2, 1),
        1079: (1, 0),
        1080: (3, 2),
        1081: (2, 3),
        1082: (1, 1),
        1085: (1, 0),
        1086: (2, 1),
        1087: (3, 2),
        1088: (2, 1),
        1089: (2, 1),
        1091: (1, 2),
        1093: (3, 2),
        1094: (2, 1),
        1095: (2, 1),
        1096: (2, 2),
        1099: (2, 2),
        1101: (3, 2),
        1102: (2, 0),
        1103: (1, 0),
        1104: (3, 2),
        1106: (1, 2),
        1108: (2, 0),
        1109: (1, 0),
        1110: (2, 2),
        1111: (1, 3),
        1114: (2, 0),
        1115: (2, 1),
        1116: (2, 1),
        1117: (2, 2),
        1118: (1, 1),
        1120: (2, 1),
        1122: (2, 1),
        1123: (3, 2),
        1124: (2, 1),
        1125: (2, 1),
        1128: (2, 1),
        1129: (1, 1),
        1130: (2, 1),
        1131: (2, 2),
        1132: (1, 0),
        1134: (1, 1),
        1136: (2, 3),
        1137: (2, 1),
        1138: (1, 0),
        1139: (1, 1),
        1142: (2, 1),
        1144: (3, 1),
        1145: (2, 1),
        1146: (2, 1),
        1147: (3, 2),
        1149: (2, 1),
        1151: (2, 2),
        1152: (2, 1),
        1153: (2, 2),
        1154: (1, 1),
        1157: (2, 1),
        1158: (2, 1),
        1159: (1, 1),
        1160: (1, 1),
        1161: (1, 2),
        1163: (2, 1),
        1165: (1, 1),
        1166: (2, 3),
        1167: (2, 1),
        1168: (1, 0),
        1171: (1, 2),
        1172: (1, 1),
        1173: (2, 1),
        1174: (1, 0),
        1175: (0, 0),
        1177: (2, 2),
        1179: (3, 1),
        1180: (2, 0),
        1181: (1, 1),
        1182: (2, 2),
        1185: (3, 1),
        1187: (2, 1),
        1188: (2, 1),
        1189: (1, 1),
        1190: (2, 1),
        1192: (1, 0),
        1194: (2, 1),
        1195: (1, 1),
        1196: (1, 3),
        1197: (1, 1),
    },
    "M.SA1.3-4": (107, 835200.0, 1213200.0),
    "M.SA1.3-5": (80, 298800.0, 864000.0),
    "M.SA1.3-6": {
        "de-desy": {
            "2025-10": 3,
            "2025-12": 3,
            "2026-01": 3,
            "2026-02": 3,
            "2026-03": 2,
            "2026-05": 2,
            "2026-06": 1,
            "2026-07": 3,
            "2026-08": 1,
            "2026-09": 3,
            "2026-10": 2,
            "2026-11": 3,
        },
        "de-kit": {
            "2025-10": 2,
            "2025-11": 6,
            "2025-12": 2,
            "2026-01": 3,
            "2026-02": 4,
            "2026-03": 3,
            "2026-04": 6,
            "2026-05": 2,
            "2026-06": 6,
            "2026-07": 4,
            "2026-08": 6,
            "2026-09": 3,
            "2026-10": 4,
            "2026-11": 4,
        },
        "fr-in2p3": {
            "2025-10": 5,
            "2025-11": 7,
            "2025-12": 1,
            "2026-01": 5,
            "2026-02": 1,
            "2026-03": 6,
            "2026-04": 5,
            "2026-05": 5,
            "2026-06": 5,
            "2026-08": 6,
            "2026-09": 1,
            "2026-10": 4,
            "2026-11": 1,
        },
        "it-cnaf": {
            "2025-11": 3,
            "2025-12": 3,
            "2026-02": 3,
            "2026-03": 1,
            "2026-04": 2,
            "2026-06": 3,
            "2026-07": 3,
            "2026-08": 2,
            "2026-09": 3,
            "2026-11": 3,
        },
        "it-infn": {
            "2025-10": 5,
            "2025-11": 7,
            "2025-12": 4,
            "2026-01": 6,
            "2026-02": 6,
            "2026-03": 6,
            "2026-04": 7,
            "2026-05": 7,
            "2026-06": 7,
            "2026-07": 5,
            "2026-08": 6,
            "2026-09": 5,
            "2026-10": 5,
            "2026-11": 5,
        },
    },
    "M.SA1.3-7": {
        "NGI_DE": {
            "2025-10": 3,
            "2025-11": 6,
            "2025-12": 5,
            "2026-01": 4,
            "2026-02": 7,
            "2026-03": 3,
            "2026-04": 6,
            "2026-05": 2,
            "2026-06": 6,
            "2026-07": 7,
            "2026-08": 7,
            "2026-09": 6,
            "2026-10": 4,
            "2026-11": 6,
        },
        "NGI_FRANCE": {
            "2025-10": 5,
            "2025-11": 7,
            "2025-12": 1,
            "2026-01": 5,
            "2026-02": 1,
            "2026-03": 6,
            "2026-04": 5,
            "2026-05": 5,
            "2026-06": 5,
            "2026-08": 6,
            "2026-09": 1,
            "2026-10": 4,
            "2026-11": 1,
        },
        "NGI_IT": {
            "2025-10": 5,
            "2025-11": 10,
            "2025-12": 5,
            "2026-01": 6,
            "2026-02": 6,
            "2026-03": 7,
            "2026-04": 9,
            "2026-05": 7,
            "2026-06": 10,
            "2026-07": 6,
            "2026-08": 8,
            "2026-09": 6,
            "2026-10": 5,
            "2026-11": 6,
        },
    },
    "time_in_state": {
        "Deferred": (28, 270000.0, 428400.0),
        "Failed": (14, 25200.0, 39600.0),
        "InVerification": (185, 363600.0, 561600.0),
        "StageRollout": (134, 822600.0, 1148400.0),
        "Submitted": (200, 10800.0, 18000.0),
        "Unverified": (186, 169200.0, 237600.0),
        "WaitingForResponse": (14, 459000.0, 590400.0),
    },
    "lead_time": (125, 1422000.0, 1940400.0),
}
EXPECTED_UMD5: dict[str, Any] = {
    "monthly": {
        "M.REPO-1": (5, 5, 4, 5, 5, 4, 5, 5, 4, 5, 5, 4, 5, 5),
        "M.REPO-2": (3, 5, 3, 3, 5, 3, 3, 5, 3, 3, 5, 3, 3, 5),
        "M.REPO-3": (1, 3, 2, 4, 2, 2, 3, 3, 2, 3, 3, 2, 3, 3),
        "M.SA1.3-2": (1, 3, 2, 4, 2, 2, 3, 3, 2, 3, 3, 2, 3, 3),
        "M.SA1.3-3": (0, 2, 0, 0, 2, 0, 0, 2, 0, 0, 2, 0, 0, 2),
    },
    "M.SA1.3-4": (36, 840600.0, 1227600.0),
    "M.SA1.3-5": (28, 291600.0, 864000.0),
    "M.SA1.3-6": {
        "de-desy": {
            "2025-10": 3,
            "2025-12": 3,
            "2026-01": 3,
            "2026-02": 3,
            "2026-03": 2,
            "2026-05": 2,
            "2026-06": 1,
            "2026-07": 3,
            "2026-08": 1,
            "2026-09": 3,
            "2026-10": 2,
            "2026-11": 3,
        },
        "de-kit": {
            "2025-10": 2,
            "2025-11": 3,
            "2026-01": 2,
            "2026-02": 1,
            "2026-03": 3,
            "2026-04": 3,
            "2026-05": 2,
            "2026-06": 3,
            "2026-08": 3,
            "2026-10": 3,
            "2026-11": 1,
        },
        "fr-in2p3": {
            "2025-10": 3,
            "2025-11": 4,
            "2026-01": 3,
            "2026-02": 1,
            "2026-03": 3,
            "2026-04": 2,
            "2026-05": 3,
            "2026-06": 2,
            "2026-08": 3,
            "2026-10": 2,
            "2026-11": 1,
        },
        "it-infn": {
            "2025-11": 3,
            "2025-12": 2,
            "2026-02": 3,
            "2026-04": 3,
            "2026-05": 1,
            "2026-06": 3,
            "2026-07": 2,
            "2026-08": 3,
            "2026-09": 2,
            "2026-11": 3,
        },
    },
    "M.SA1.3-7": {
        "NGI_DE": {
            "2025-10": 3,
            "2025-11": 3,
            "2025-12": 3,
            "2026-01": 3,
            "2026-02": 4,
            "2026-03": 3,
            "2026-04": 3,
            "2026-05": 2,
            "2026-06": 3,
            "2026-07": 3,
            "2026-08": 4,
            "2026-09": 3,
            "2026-10": 3,
            "2026-11": 3,
        },
        "NGI_FRANCE": {
            "2025-10": 3,
            "2025-11": 4,
            "2026-01": 3,
            "2026-02": 1,
            "2026-03": 3,
            "2026-04": 2,
            "2026-05": 3,
            "2026-06": 2,
            "2026-08": 3,
            "2026-10": 2,
            "2026-11": 1,
        },
        "NGI_IT": {
            "2025-11": 3,
            "2025-12": 2,
            "2026-02": 3,
            "2026-04": 3,
            "2026-05": 1,
            "2026-06": 3,
            "2026-07": 2,
            "2026-08": 3,
            "2026-09": 2,
            "2026-11": 3,
        },
    },
    "lead_time": (41, 1494000.0, 1940400.0),
}
