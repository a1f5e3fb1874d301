"""Every release can always be closed (DESIGN invariant 10), against a real RT 5 and a real
rsync daemon: from every open state — Failed after an invalid release.xml and Failed after
release.xml disagreed with the ticket included — Rejected, Ignored and NotPublished succeed,
the ticket ends resolved, the release is gone from unverified and stagerollout, and its
staged-rollout slot is free. Removal works from what the bridge recorded, never by re-reading
the release's input."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest

from tests.support import paths
from tests.support.workflow_harness import Bridge, running_bridge

pytestmark = pytest.mark.rt

FIXTURES = paths.ROOT / "fixtures"
_majors = itertools.count(1)


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    with running_bridge(tmp_path_factory.mktemp("closing")) as running:
        yield running


def _walk(bridge: Bridge, ticket: int, *states: str) -> None:
    for state in states:
        bridge.move(ticket, state)
        assert bridge.state(ticket) == state, bridge.comments(ticket)[-1]


# Each opener files a release and brings it to one open state; it returns the ticket and the
# name its files are published under (None when nothing was ever published).
Opener = Callable[[Bridge, str], tuple[int, str | None]]


def _valid(bridge: Bridge, major: str, *states: str) -> tuple[int, str | None]:
    tree, url = bridge.provider_tree(major)
    ticket = bridge.file_release(major, tree=(tree, url))
    _walk(bridge, ticket, *states)
    return ticket, tree.root.name


def _deferred(bridge: Bridge, major: str) -> tuple[int, str | None]:
    holder, _ = _valid(bridge, major, "Unverified", "InVerification", "StageRollout")
    ticket, name = _valid(bridge, major, "Unverified", "InVerification")
    bridge.move(ticket, "StageRollout")
    assert bridge.state(ticket) == "Deferred"
    assert bridge.store.slot_holders(major) == (holder,)
    return ticket, name


def _failed_invalid(bridge: Bridge, major: str) -> tuple[int, str | None]:
    data = (FIXTURES / "release_missing_version.xml").read_bytes()
    ticket = bridge.file_release(major, release_xml=data)
    bridge.move(ticket, "Unverified")
    assert bridge.state(ticket) == "Failed"
    return ticket, None


def _failed_disagreeing(bridge: Bridge, major: str) -> tuple[int, str | None]:
    # release.xml says one major release, the ticket another: refused at intake.
    tree, url = bridge.provider_tree(f"{major}-OTHER")
    ticket = bridge.file_release(major, tree=(tree, url))
    bridge.move(ticket, "Unverified")
    assert bridge.state(ticket) == "Failed", bridge.comments(ticket)[-1]
    return ticket, tree.root.name


OPEN_STATES: dict[str, Opener] = {
    "Submitted": lambda b, m: _valid(b, m),
    "Unverified": lambda b, m: _valid(b, m, "Unverified"),
    "InVerification": lambda b, m: _valid(b, m, "Unverified", "InVerification"),
    "WaitingForResponse": lambda b, m: _valid(
        b, m, "Unverified", "InVerification", "WaitingForResponse"
    ),
    "StageRollout": lambda b, m: _valid(b, m, "Unverified", "InVerification", "StageRollout"),
    "Deferred": _deferred,
    "Failed-invalid-release-xml": _failed_invalid,
    "Failed-ticket-disagrees": _failed_disagreeing,
}


def _published(bridge: Bridge, name: str) -> list[str]:
    hits = []
    for area in ("unverified", "stagerollout"):
        for top, _dirs, files in os.walk(bridge.repo_root / area, followlinks=True):
            hits += [f"{top}/{f}" for f in files if name in f"{top}/{f}"]
    return hits


@pytest.mark.parametrize("closing", ["Rejected", "Ignored", "NotPublished"])
@pytest.mark.parametrize("opened", list(OPEN_STATES))
def test_every_open_release_can_be_closed(bridge: Bridge, opened: str, closing: str) -> None:
    major = f"CLOSE-{next(_majors)}"
    ticket, name = OPEN_STATES[opened](bridge, major)
    bridge.move(ticket, closing)
    after = bridge.manager.get_ticket(ticket)
    assert (after.field("RolloutProgress"), after.status) == (closing, "resolved"), bridge.comments(
        ticket
    )[-3:]
    assert after.field("RepositoryURL") in (None, "")
    if name is not None:
        assert _published(bridge, name) == []
    assert ticket not in bridge.store.slot_holders(major)
    assert bridge.store.published_areas(ticket) == ()
