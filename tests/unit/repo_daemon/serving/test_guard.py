"""One request's access check: credentials read from the header (basic, bearer, token), 401
with a challenge, 403, 503 with Retry-After, public areas never asking RT, a path that lands in
another kind of area than nginx's location refused, allowed reads told to the recorder."""

from __future__ import annotations

import base64

import pytest

from bridge.settings import model
from repo_daemon.serving import access, guard
from tests.support.access_fakes import Clock, make_checker


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


class Seen:
    def __init__(self) -> None:
        self.reads: list[tuple[str, str | None]] = []

    def saw(self, person: access.Person, target: access.Target) -> None:
        self.reads.append((person.name, target.area))


def _guard() -> tuple[guard.AccessGuard, Seen]:
    checker, _, _ = make_checker(Clock())
    seen = Seen()
    policy = access.AccessPolicy(model.DEFAULT_AREA_ROLES, model.DEFAULT_EARLY_ADOPTERS)
    return guard.AccessGuard(policy, checker, seen), seen


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        (basic("qc1", "pw"), ("qc1", "pw")),
        (basic("qc1", "p:w"), ("qc1", "p:w")),
        (basic("qc1", ""), None),
        (basic("", "pw"), None),
        ("Basic !!!", None),
        ("Basic " + base64.b64encode(b"\xff:x").decode(), None),
        ("Bearer 1-14-" + "a" * 32, ("", "1-14-" + "a" * 32)),
        ("token 1-14-" + "a" * 32, ("", "1-14-" + "a" * 32)),
        ("Digest x", None),
    ],
)
def test_read_credentials(header: str | None, expected: tuple[str, str] | None) -> None:
    assert guard.read_credentials(header) == expected


def test_answers() -> None:
    check, seen = _guard()
    anonymous = check.check("/unverified/D/1.0.0/x.rpm", None)
    assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert check.check("/unverified/D/1.0.0/x.rpm", basic("qc1", "wrong")).status == 401
    allowed = check.check("/unverified/D/1.0.0/x.rpm", basic("qc1", "good-qc"))
    assert allowed.allowed and allowed.person is not None and allowed.person.name == "qc1"
    assert check.check("/unverified/D/1.0.0/x.rpm", basic("ea1", "good-ea")).status == 403
    assert check.check("/stagerollout/7/x.rpm", basic("ea1", "good-ea")).status == 204
    assert check.check("/production/7/base/x.rpm", None).status == 204
    assert check.check("/../x", None).status == 404
    assert seen.reads == [("qc1", "unverified/D/1.0.0"), ("ea1", "stagerollout/7")]


def test_public_areas_never_ask_rt() -> None:
    checker, logins, groups = make_checker(Clock())
    policy = access.AccessPolicy(model.DEFAULT_AREA_ROLES, ())
    check = guard.AccessGuard(policy, checker)
    assert check.check("/production/7/base/x.rpm", basic("qc1", "good-qc")).status == 204
    assert logins.calls == [] and groups.reads == 0


def test_a_path_outside_the_location_nginx_matched_is_refused() -> None:
    check, _ = _guard()
    answer = check.check(
        "/stagerollout/../unverified/D/1.0.0/x.rpm", basic("ea1", "good-ea"), kind="stagerollout"
    )
    assert answer.status == 403
    same = check.check("/stagerollout/7/x.rpm", basic("ea1", "good-ea"), kind="stagerollout")
    assert same.status == 204


def test_rt_unavailable_for_someone_never_seen_is_503() -> None:
    checker, logins, _ = make_checker(Clock())
    logins.down = True
    check = guard.AccessGuard(access.AccessPolicy(model.DEFAULT_AREA_ROLES, ()), checker)
    answer = check.check("/unverified/D/1.0.0/", basic("qc1", "good-qc"))
    assert answer.status == 503 and answer.headers["Retry-After"] == "30"


def test_without_a_checker_protected_areas_are_served_to_nobody() -> None:
    check = guard.AccessGuard(access.AccessPolicy(model.DEFAULT_AREA_ROLES, ()), None)
    assert check.check("/unverified/D/1.0.0/", basic("qc1", "good-qc")).status == 401
    assert check.check("/production/7/base/", None).status == 204
