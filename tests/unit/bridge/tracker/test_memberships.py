"""``groups_of`` on an httpx2 mock transport shaped like RT 5.0.3's answers (seen on the real
RT: ``GET /user/:name``, ``POST /groups`` with ``total`` null for an account without SeeGroup,
``GET /group/:id`` with its direct ``Members``): its round trips, nested and disabled groups,
and its error paths. The happy path against the real RT is in
tests/integration/test_rights_rt.py."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx2
import pytest

from bridge import errors
from tests.unit.bridge.tracker.test_client import Script, _client

USERS = {"qc1": 39, "sr1": 40, "nested1": 41, "loner": 42}
# id -> (name, disabled, members); members as RT lists them
GROUPS: dict[int, tuple[str, bool, list[tuple[str, str]]]] = {
    27: ("sw-rel-qc", False, [("user", "qc1"), ("group", "50")]),
    28: ("sw-rel-sr", False, [("user", "sr1")]),
    50: ("qc-team", False, [("user", "nested1")]),
    51: ("old-team", True, [("user", "qc1")]),
}


class FakeRT:
    """Answers the three requests ``groups_of`` makes, as RT 5.0.3 does for the bridge."""

    def __init__(self, groups: dict[int, tuple[str, bool, list[tuple[str, str]]]] = GROUPS):
        self.groups = groups
        self.see_group = True

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path.removeprefix("/REST/2.0/")
        if path.startswith("user/"):
            name = path.removeprefix("user/").lower()  # RT loads users case-insensitively
            if name not in USERS:
                return httpx2.Response(404, json={"message": "Not Found"})
            return httpx2.Response(200, json={"Name": name, "Privileged": 1})
        if path == "groups":
            return self._search(request)
        if path.startswith("group/"):
            if not self.see_group:
                return httpx2.Response(403, json={"message": "Forbidden"})
            group_id = int(path.removeprefix("group/"))
            name, disabled, members = self.groups[group_id]
            return httpx2.Response(
                200,
                json={
                    "id": group_id,
                    "Name": name,
                    "Disabled": "1" if disabled else "0",
                    "Members": [{"type": k, "id": i} for k, i in members],
                },
            )
        raise AssertionError(f"unexpected request {request.method} {request.url}")

    def _search(self, request: httpx2.Request) -> httpx2.Response:
        query: list[dict[str, Any]] = json.loads(request.content or b"[]")
        per_page, page = int(request.url.params["per_page"]), int(request.url.params["page"])
        enabled = [(i, g) for i, g in sorted(self.groups.items()) if not g[1]]
        for limit in query:
            enabled = [(i, g) for i, g in enabled if g[0] in limit["value"]]
        if not self.see_group:
            return httpx2.Response(200, json={"items": [], "total": None, "count": 0})
        shown = enabled[(page - 1) * per_page : page * per_page]
        items = [{"type": "group", "id": str(i), "Name": g[0]} for i, g in shown]
        return httpx2.Response(200, json={"items": items, "total": len(enabled)})


def test_every_group_is_read_and_nested_members_count() -> None:
    client = _client(Script(FakeRT()))
    assert client.groups_of("qc1") == {"sw-rel-qc"}  # old-team is disabled
    assert client.groups_of("nested1") == {"sw-rel-qc", "qc-team"}  # through qc-team
    assert client.groups_of("loner") == frozenset()
    # Each call: the user, one page of groups, then the three enabled groups.
    assert client.round_trips["groups_of"] == 3 * (1 + 1 + 3)


def test_among_reads_only_those_groups_and_their_nested_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = Script(FakeRT())
    client = _client(script)
    among = ["sw-rel-qc", "sw-rel-sr", "sw-rel-nope"]
    assert client.groups_of("nested1", among=among) == {"sw-rel-qc"}
    # the user, one search for the three names, sw-rel-qc, qc-team (nested), sw-rel-sr
    assert client.round_trips["groups_of"] == 5
    assert "sw-rel-nope" in caplog.text
    paths = [r.url.path.rsplit("/", 1)[-1] for r in script.requests]
    assert "51" not in paths  # the group nobody asked about is not read

    assert client.groups_of("sr1", among=["sw-rel-sr"]) == {"sw-rel-sr"}
    assert client.round_trips["groups_of"] == 5 + 2  # names remembered: the user and one group


def test_the_user_is_matched_as_rt_spells_the_name() -> None:
    client = _client(Script(FakeRT()))
    assert client.groups_of("QC1", among=["sw-rel-qc"]) == {"sw-rel-qc"}


def test_groups_are_listed_a_page_at_a_time() -> None:
    many = {100 + n: (f"team-{n:03}", False, [("user", "qc1")]) for n in range(150)}
    client = _client(Script(FakeRT(many)))
    assert len(client.groups_of("qc1")) == 150
    assert client.round_trips["groups_of"] == 1 + 2 + 150


def test_an_unknown_user_is_not_found_at_once() -> None:
    script = Script(FakeRT())
    with pytest.raises(errors.TrackerNotFound, match="no user 'ghost'") as caught:
        _client(script).groups_of("ghost")
    assert not caught.value.transient
    assert len(script.requests) == 1


def test_an_account_without_seegroup_is_told_what_to_grant() -> None:
    rt = FakeRT()
    rt.see_group = False
    for among in (None, ["sw-rel-qc"]):
        script = Script(rt)
        with pytest.raises(errors.TrackerAuthFailed, match="SeeGroup") as caught:
            _client(script).groups_of("qc1", among=among)
        assert not caught.value.transient
        assert len(script.requests) == 2  # the user, the search: no retries


def test_a_group_read_refused_is_an_auth_failure() -> None:
    rt = FakeRT()
    client = _client(Script(rt))
    assert client.groups_of("qc1", among=["sw-rel-qc"]) == {"sw-rel-qc"}  # names known now
    rt.see_group = False
    with pytest.raises(errors.TrackerAuthFailed, match="SeeGroup") as caught:
        client.groups_of("qc1", among=["sw-rel-qc"])
    assert caught.value.status_code == 403


def test_server_errors_are_retried_and_timeouts_reported(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    rt = FakeRT()
    client = _client(Script(httpx2.Response(503, text="busy"), rt), retries=2)
    assert client.groups_of("sr1") == {"sw-rel-sr"}
    assert client.retries["groups_of"] == 1
    assert "RT groups_of failed" in caplog.text

    delays: list[float] = []
    client = _client(Script(httpx2.ReadTimeout("timed out")), retries=2, delays=delays)
    with pytest.raises(errors.TrackerUnavailable) as caught:
        client.groups_of("sr1")
    assert caught.value.transient and caught.value.attempts == 3
    assert caught.value.operation == "groups_of"
    assert delays == [0.5, 1.0]


def test_members_of_reads_each_group_once_for_everybody() -> None:
    client = _client(Script(FakeRT()))
    members = client.members_of(["sw-rel-qc", "sw-rel-sr", "old-team", "sw-rel-nope"])
    assert members == {
        "sw-rel-qc": {"qc1", "nested1"},  # nested through qc-team
        "sw-rel-sr": {"sr1"},
        "old-team": frozenset(),  # disabled: nobody
        "sw-rel-nope": frozenset(),  # unknown: nobody
    }
    # one search for the names, sw-rel-qc, qc-team (nested), sw-rel-sr
    assert client.round_trips["members_of"] == 4
