"""The release workflow end to end against a real RT 5: the product's scrip posts to the real
receiver, the runner processes the queue with the workflow processor, and every outcome is read
back from RT — fields, watchers, status, comments, and the mail RT sent (its ``testfile`` log).

One sandbox RT and one receiver for the module; each test uses tickets of its own major
release, so tests do not share staged-rollout slots.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator

import httpx2
import pytest

from bridge.intake import refusals, webhooks
from bridge.intake.receiver import require_secret
from bridge.store import events
from tests.support.daemon_helpers import wait_for
from tests.support.workflow_harness import PEOPLE, PROVIDER, Bridge, running_bridge

pytestmark = pytest.mark.rt

_majors = itertools.count(1)


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    with running_bridge(tmp_path_factory.mktemp("workflow-rt")) as running:
        yield running


def test_a_new_submission_reaches_the_release_managers_at_once(bridge: Bridge) -> None:
    # sw-rel-admin is AdminCc of the queue (rollout tracker init): before any processed move.
    mark = bridge.mail_mark()
    ticket = bridge.file_release(f"TEST-{next(_majors)}")
    told = set().union(*(to for to, _ in bridge.mails_since(mark)))
    assert PEOPLE["sw-rel-admin"] in told, bridge.mails_since(mark)
    assert bridge.state(ticket) in (None, "Submitted")


def test_a_release_walks_to_production_with_the_right_people_told(bridge: Bridge) -> None:
    major = f"TEST-{next(_majors)}"
    ticket = bridge.file_release(major)

    mark = bridge.mail_mark()
    bridge.move(ticket, "Unverified")
    after = bridge.manager.get_ticket(ticket)
    assert after.field("RolloutProgress") == "Unverified"
    assert after.cc_groups() == ("sw-rel-qc",)
    assert after.admin_cc_groups() == ("sw-rel-admin",)
    assert "Submitted → Unverified" in bridge.comments(ticket)[-1]
    mails = bridge.mails_since(mark)
    told = set().union(*(to for to, _ in mails))
    assert PEOPLE["sw-rel-qc"] in told  # QC hears of a release to verify (a comment to Cc)
    assert PEOPLE["sw-rel-admin"] in told
    assert PROVIDER not in told  # the provider is not mailed about internal steps

    bridge.move(ticket, "InVerification")
    mark = bridge.mail_mark()
    bridge.move(ticket, "StageRollout")
    after = bridge.manager.get_ticket(ticket)
    # No teams configured: the global early-adopters group is told, and does not watch on.
    assert set(after.cc_groups()) == {"sw-rel-sr"}
    told = set().union(*(to for to, _ in bridge.mails_since(mark)))
    assert {PEOPLE["sw-rel-sr"], PEOPLE["sw-rel-early-adopters"]} <= told
    assert PEOPLE["sw-rel-qc"] not in told  # the Cc list was replaced, not appended to

    mark = bridge.mail_mark()
    bridge.move(ticket, "Production")
    after = bridge.manager.get_ticket(ticket)
    assert after.field("RolloutProgress") == "Production"
    assert after.status == "resolved"
    assert after.cc_groups() == ("sw-rel-production",)
    told = set().union(*(to for to, _ in bridge.mails_since(mark)))
    assert PROVIDER in told  # the provider hears of Production (a reply)
    assert PEOPLE["sw-rel-production"] in told

    history = after.field("RolloutHistory") or ""
    assert [line.split()[3] for line in history.splitlines()] == [
        "Submitted", "Unverified", "InVerification", "StageRollout", "Production",
    ]  # fmt: skip
    assert [s.state.label for s in bridge.store.history(ticket)][-1] == "Production"


def test_a_second_release_is_deferred_and_moves_in_by_itself(bridge: Bridge) -> None:
    major = f"TEST-{next(_majors)}"
    first, second = bridge.file_release(major), bridge.file_release(major)
    for state in ("Unverified", "InVerification"):
        bridge.move(first, state)
        bridge.move(second, state)
    bridge.move(first, "StageRollout")
    bridge.move(second, "StageRollout")
    assert bridge.state(second) == "Deferred"
    assert any(f"held by #{first}" in c for c in bridge.comments(second))

    bridge.move(first, "Production")
    assert bridge.state(first) == "Production"
    assert bridge.state(second) == "StageRollout"
    assert "(automatically)" in bridge.comments(second)[-1]
    assert bridge.store.slot_holders(major) == (second,)


def test_an_emergency_release_skips_staged_rollout(bridge: Bridge) -> None:
    major = f"TEST-{next(_majors)}"
    ticket = bridge.file_release(major, emergency=True)
    for state in ("Unverified", "InVerification", "Production"):
        bridge.move(ticket, state)
    after = bridge.manager.get_ticket(ticket)
    assert (after.field("RolloutProgress"), after.status) == ("Production", "resolved")


def test_an_illegal_move_is_put_back_with_a_comment(bridge: Bridge) -> None:
    major = f"TEST-{next(_majors)}"
    ticket = bridge.file_release(major)
    for state in ("Unverified", "InVerification", "StageRollout"):
        bridge.move(ticket, state)
    bridge.move(ticket, "InVerification")
    assert bridge.state(ticket) == "StageRollout"
    assert bridge.comments(ticket)[-1].startswith(
        "Blocked: RolloutProgress cannot go from StageRollout to InVerification"
    )


def test_the_bridges_own_writes_never_become_work(bridge: Bridge) -> None:
    major = f"TEST-{next(_majors)}"
    ticket = bridge.file_release(major)
    bridge.move(ticket, "Unverified")
    bridge.move(ticket, "InVerification")
    bridge.move(ticket, "Production")  # blocked: the bridge puts it back
    jobs = bridge.queue.list_jobs(ticket_id=ticket)
    own = [j for j in jobs if j.request.actor == "rollout-bridge"]
    assert len(own) == 1  # the put-back made one hook, skipped
    skipped = bridge.queue.events(kind=events.EventKind.JOB_SKIPPED_OWN_WRITE, ticket_id=ticket)
    assert len(skipped) == 1
    assert all(j.status.label == "done" for j in jobs)
    assert bridge.state(ticket) == "InVerification"


def test_a_refused_hook_that_names_a_ticket_is_explained_on_it(bridge: Bridge) -> None:
    ticket = bridge.file_release(f"TEST-{next(_majors)}")
    body = json.dumps(
        {"ticket_id": ticket, "transaction_id": 999_000 + ticket, "current": "Shipped",
         "previous": "Submitted", "emergency": False, "actor": "root"}
    ).encode()  # fmt: skip
    headers = webhooks.signed_headers(
        require_secret(bridge.settings), str(999_000 + ticket), int(time.time()), body
    )
    answer = httpx2.post(
        f"http://127.0.0.1:{bridge.settings.receiver.port}/hooks/rt",
        content=body,
        headers={**headers, "Content-Type": "application/json"},
        timeout=20,
    )
    assert answer.status_code == 422
    assert "unknown RolloutProgress value 'Shipped'" in answer.json()["error"]

    assert refusals.RefusalCommenter(bridge.queue, bridge.processor._client()).run() == 1
    (comment,) = [c for c in bridge.comments(ticket) if "Shipped" in c]
    assert "unknown RolloutProgress value 'Shipped'" in comment
    assert refusals.RefusalCommenter(bridge.queue, bridge.processor._client()).run() == 0


def test_a_refused_delivery_replayed_30_times_is_commented_once(bridge: Bridge) -> None:
    ticket = bridge.file_release(f"TEST-{next(_majors)}")
    txn = 998_000 + ticket
    body = json.dumps(
        {"ticket_id": ticket, "transaction_id": txn, "current": "Shipped",
         "previous": "Submitted", "emergency": False, "actor": "root"}
    ).encode()  # fmt: skip
    headers = webhooks.signed_headers(
        require_secret(bridge.settings), str(txn), int(time.time()), body
    )
    url = f"http://127.0.0.1:{bridge.settings.receiver.port}/hooks/rt"
    commenter = refusals.RefusalCommenter(bridge.queue, bridge.processor._client())

    def replay(times: int, recorded: int) -> None:
        for _ in range(times):
            answer = httpx2.post(
                url, content=body, headers={**headers, "Content-Type": "application/json"},
                timeout=20,
            )  # fmt: skip
            assert answer.status_code == 422
        wait_for(
            lambda: (
                len(bridge.queue.events(kind=events.EventKind.HOOK_REFUSED, ticket_id=ticket))
                >= recorded
            ),
            timeout=30,
            what=f"{recorded} refusals recorded",
        )

    replay(20, 20)  # captured and replayed before the bridge commented
    assert commenter.run() == 1
    replay(10, 30)  # and after
    assert commenter.run() == 0
    assert bridge.queue.pending_comments() == []
    shipped = [c for c in bridge.comments(ticket) if "Shipped" in c]
    assert len(shipped) == 1, shipped
