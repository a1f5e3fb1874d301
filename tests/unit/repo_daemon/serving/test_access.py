"""The access decision, as a table: path → area → the roles that may read it → allow, 401, 403."""

from __future__ import annotations

import pytest

from bridge.settings import model
from repo_daemon.serving import access
from repo_daemon.serving.access import Person, Verdict

TEAMS = (
    model.EarlyAdopterTeam(
        name="desy", ngi="NGI_DE", group="sw-rel-ea-desy", major_releases=("7",)
    ),
    model.EarlyAdopterTeam(
        name="infn", ngi="NGI_IT", group="sw-rel-ea-infn", major_releases=("8",)
    ),
)
POLICY = access.AccessPolicy(model.DEFAULT_AREA_ROLES, TEAMS)

QC = Person(name="qc1", roles=frozenset({"qc"}))
SR = Person(name="sr1", roles=frozenset({"sr"}))
ADMIN = Person(name="manager1", roles=frozenset({"admin"}))
PROVIDER = Person(name="provider1", roles=frozenset({"provider"}))
DESY = Person(name="site-de", teams=frozenset({"desy"}))
INFN = Person(name="site-it", teams=frozenset({"infn"}))
NOBODY = Person(name="outsider1")

CASES = [
    ("/production/7/updates/rpms/x.rpm", None, Verdict.ALLOW),
    ("/production/7/updates/rpms/x.rpm", NOBODY, Verdict.ALLOW),
    ("/", None, Verdict.ALLOW),
    ("/unverified/", None, Verdict.LOGIN),
    ("/unverified/Dist/1.0.0/x.rpm", None, Verdict.LOGIN),
    ("/unverified/Dist/1.0.0/x.rpm", QC, Verdict.ALLOW),
    ("/unverified/Dist/1.0.0/x.rpm", SR, Verdict.ALLOW),
    ("/unverified/Dist/1.0.0/x.rpm", ADMIN, Verdict.ALLOW),
    ("/unverified/Dist/1.0.0/x.rpm", DESY, Verdict.FORBIDDEN),
    ("/unverified/Dist/1.0.0/x.rpm", PROVIDER, Verdict.FORBIDDEN),
    ("/unverified/Dist/1.0.0/x.rpm", NOBODY, Verdict.FORBIDDEN),
    ("/stagerollout/7/rpms/x.rpm", None, Verdict.LOGIN),
    ("/stagerollout/7/rpms/x.rpm", DESY, Verdict.ALLOW),
    ("/stagerollout/7/rpms/x.rpm", INFN, Verdict.FORBIDDEN),  # another major release's team
    ("/stagerollout/8/rpms/x.rpm", INFN, Verdict.ALLOW),
    ("/stagerollout/", DESY, Verdict.ALLOW),  # the list of major releases: any team
    ("/stagerollout/7/", QC, Verdict.ALLOW),
    ("/stagerollout/7/", SR, Verdict.ALLOW),
    ("/stagerollout/7/", ADMIN, Verdict.ALLOW),
    ("/stagerollout/7/", NOBODY, Verdict.FORBIDDEN),
    # Normalised as nginx does: a path that climbs into another area is judged there.
    ("/stagerollout/../unverified/Dist/1.0.0/x.rpm", DESY, Verdict.FORBIDDEN),
    ("/stagerollout/7/%2e%2e/%2e%2e/unverified/Dist/1.0.0/x.rpm", DESY, Verdict.FORBIDDEN),
    ("/production/%2e%2e/unverified/Dist/", None, Verdict.LOGIN),
    ("//unverified//Dist/./1.0.0/", None, Verdict.LOGIN),
    ("/unverified%2fDist/1.0.0/", None, Verdict.LOGIN),
    ("/../etc/passwd", None, Verdict.NOT_FOUND),
    ("/unverified/%ff/", QC, Verdict.NOT_FOUND),
    ("/unverified/%00/", QC, Verdict.NOT_FOUND),
    ("/unverified/Dist/1.0.0/x.rpm?/production/", None, Verdict.LOGIN),
]


@pytest.mark.parametrize(
    ("path", "person", "verdict"),
    CASES,
    ids=[f"{p}-{who.name if who else 'anonymous'}" for p, who, _ in CASES],
)
def test_decision(path: str, person: Person | None, verdict: Verdict) -> None:
    assert POLICY.decide_path(path, person) is verdict


def test_the_default_team_adopts_every_major_release() -> None:
    policy = access.AccessPolicy(model.DEFAULT_AREA_ROLES, model.DEFAULT_EARLY_ADOPTERS)
    member = Person(name="site1", teams=frozenset({"early-adopters"}))
    assert policy.decide_path("/stagerollout/anything/x.rpm", member) is Verdict.ALLOW
    assert policy.decide_path("/unverified/Dist/1.0.0/", member) is Verdict.FORBIDDEN


def test_areas_are_configurable_per_kind() -> None:
    policy = access.AccessPolicy(
        {"unverified": ("qc",), "stagerollout": ("anyone",), "production": ("admin",)}, TEAMS
    )
    assert policy.protected_kinds == ("unverified", "production")
    assert policy.decide_path("/stagerollout/7/x", None) is Verdict.ALLOW
    assert policy.decide_path("/unverified/D/1.0.0/x", SR) is Verdict.FORBIDDEN
    assert policy.decide_path("/production/7/base/x", None) is Verdict.LOGIN
    assert policy.decide_path("/production/7/base/x", ADMIN) is Verdict.ALLOW
    nobody = access.AccessPolicy({"unverified": ()}, TEAMS)
    assert nobody.decide_path("/unverified/D/1.0.0/x", ADMIN) is Verdict.FORBIDDEN


def test_targets_name_the_area() -> None:
    assert (
        access.target_of(("unverified", "D", "1.0.0", "rpms", "x.rpm")).area == "unverified/D/1.0.0"
    )
    assert access.target_of(("unverified", "D")).area is None
    staged = access.target_of(("stagerollout", "7", "x.rpm"))
    assert (staged.kind, staged.major_release, staged.area) == (
        "stagerollout",
        "7",
        "stagerollout/7",
    )
    assert access.target_of(("production", "7", "base")).kind == "production"
    assert access.target_of(()).kind == "production"
    assert POLICY.needs_login("/unverified/") and not POLICY.needs_login("/production/7/")
