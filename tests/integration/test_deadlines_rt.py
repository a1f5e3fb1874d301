"""One slow provider stalls nobody (issue 15's must-show), against a real RT 5: two releases
are synced at once, one from a provider whose HTTPS server trickles a byte a second
(``tests/support/trickle_server.py``), one from a normal rsync daemon. The daemon's runner
(several workers, as ``rollout daemon`` runs it) takes the normal one to Unverified in about
the time it takes alone, while the other is still syncing; the trickling one then fails at its
deadline with a comment saying so, and its server sees the connection closed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from bridge import records
from tests.support.trickle_server import TricklingHttpsServer
from tests.support.workflow_harness import PROVIDER, Bridge, running_bridge

pytestmark = pytest.mark.rt

DEADLINE = 40.0  # ROLLOUT_SYNC_DEADLINE_MIN here: longer than a normal release takes


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Bridge, TricklingHttpsServer]]:
    root = tmp_path_factory.mktemp("deadlines")
    (root / "provider").mkdir()
    with TricklingHttpsServer(root / "https", root / "provider", rate=1.0) as trickle:
        changes = {
            "https_ca_file": trickle.ca.file,
            "sync_deadline_min": DEADLINE,
            "sync_min_rate": 1024.0**3,  # the declared size adds next to nothing
        }
        with running_bridge(root, repository_changes=changes) as bridge:
            assert bridge.runner.workers > 1
            yield bridge, trickle


def _wait(what: str, done: Callable[[], bool], timeout: float) -> float:
    """Wait until ``done()``; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s"
        time.sleep(0.1)
    return time.monotonic()


def _state(bridge: Bridge, ticket: int) -> records.RolloutState | None:
    found = bridge.store.get(ticket)
    return found.state if found is not None else None


def _queued(bridge: Bridge, ticket: int) -> bool:
    return any(
        j.request.current is records.RolloutState.UNVERIFIED
        for j in bridge.queue.list_jobs(ticket_id=ticket)
    )


def test_a_trickling_provider_fails_at_its_deadline_while_a_normal_release_goes_on(
    world: tuple[Bridge, TricklingHttpsServer],
) -> None:
    bridge, trickle = world
    # How long a normal release takes to reach Unverified on its own.
    alone = bridge.file_release("DL-1")
    started = time.monotonic()
    bridge.move(alone, "Unverified")
    assert bridge.state(alone) == "Unverified", bridge.comments(alone)
    usual = time.monotonic() - started

    tree, _rsync_url = bridge.provider_tree("DL-2")
    slow = bridge.manager.create_ticket(
        "sw-rel",
        "Release for DL-2",
        "Please publish.",
        custom_fields={
            "AssociatedMajorRelease": "DL-2", "ReleaseType": "Incremental",
            "EmergencyRelease": "No", "Sync-Protocol": "https",
            "Sync-URL": f"{trickle.url}/{tree.root.name}",
        },
        requestors=[PROVIDER],
        attachments=[("release.xml", tree.release_xml, "application/xml")],
    )  # fmt: skip
    normal = bridge.file_release("DL-3")
    bridge.manager.set_custom_fields(slow, {"RolloutProgress": "Unverified"})
    bridge.manager.set_custom_fields(normal, {"RolloutProgress": "Unverified"})
    _wait("both changes queued", lambda: _queued(bridge, slow) and _queued(bridge, normal), 60)

    drained = threading.Thread(target=bridge.runner.drain)
    began = time.monotonic()
    drained.start()
    try:
        # Watched in the bridge's own records, so that the test's polling does not keep RT's
        # two workers from the bridge.
        syncing = _wait("the trickling sync to start", lambda: bool(trickle.opened), DEADLINE)
        reached = _wait("the normal release at Unverified", lambda: _state(bridge, normal)
                        is records.RolloutState.UNVERIFIED, DEADLINE)  # fmt: skip
        # The normal one took about its usual time, and the trickling one is still syncing.
        assert reached - began < 2 * usual + 10, (reached - began, usual)
        assert not trickle.closed and time.monotonic() - syncing < DEADLINE
        assert bridge.queue.list_jobs(ticket_id=slow, statuses=[records.JobStatus.RUNNING])
        assert bridge.state(normal) == "Unverified"
        assert bridge.state(slow) == "Unverified"  # as asked; the bridge has not answered yet
    finally:
        drained.join(DEADLINE + 120)
    assert not drained.is_alive()
    failed_after = time.monotonic() - syncing

    assert bridge.state(slow) == "Failed"
    assert DEADLINE <= failed_after < DEADLINE + 60
    told = "\n".join(bridge.comments(slow))
    assert "did not finish within its deadline of 40 s" in told, told
    assert "The transfer was stopped and its connection closed" in told
    assert trickle.wait(lambda: trickle.closed == trickle.opened, timeout=5), (
        "the trickling server did not see its connection closed"
    )
    assert 0 < trickle.sent < tree.packages[0].size  # it had been trickling all along
    assert bridge.state(normal) == "Unverified"
