"""The release workflow end to end against a real RT 5: the product's scrip posts to the real
receiver, the runner processes the queue with the workflow processor, and every outcome is read
back from RT — fields, watchers, status, comments, and the mail RT sent (its ``testfile`` log).

One sandbox RT and one receiver for the module; each test uses tickets of its own major
release, so tests do not share staged-rollout slots.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from bridge import config, database, queue, releases
from bridge.receiver import build_server
from bridge.sandbox import Sandbox, SandboxInfo, free_port, new_hook_secret
from bridge.tracker import TrackerClient
from repo_daemon import runner, transitions

pytestmark = pytest.mark.rt

PEOPLE = {
    "sw-rel-qc": "qc1@example.org",
    "sw-rel-sr": "sr1@example.org",
    "sw-rel-early-adopters": "site1@example.org",
    "sw-rel-production": "ops1@example.org",
    "sw-rel-admin": "manager1@example.org",
}
PROVIDER = "provider@example.org"
_majors = itertools.count(1)


@dataclass
class Bridge:
    info: SandboxInfo
    settings: config.Settings
    queue: queue.Queue
    store: releases.ReleaseStore
    runner: runner.Runner
    processor: transitions.WorkflowProcessor
    manager: TrackerClient

    def drain(self) -> None:
        """Process everything queued, including the hooks of the bridge's own writes."""
        for _ in range(20):
            report = self.runner.drain()
            if report.claimed == 0:
                return
        raise AssertionError("the queue did not settle")

    def file_release(self, major: str, *, emergency: bool = False) -> int:
        ticket_id = self.manager.create_ticket(
            "sw-rel",
            f"Release for {major}",
            "Please publish.",
            custom_fields={
                "AssociatedMajorRelease": major,
                "ReleaseType": "Incremental",
                "Sync-URL": "rsync://127.0.0.1/demo/x/",
                "EmergencyRelease": "Yes" if emergency else "No",
            },
            requestors=[PROVIDER],
        )
        return ticket_id

    def move(self, ticket_id: int, state: str) -> None:
        """A release manager sets RolloutProgress in RT; then the bridge catches up."""
        self.manager.set_custom_fields(ticket_id, {"RolloutProgress": state})
        self.drain()

    def state(self, ticket_id: int) -> str | None:
        return self.manager.get_ticket(ticket_id).field("RolloutProgress")

    def comments(self, ticket_id: int) -> list[str]:
        """The text of the bridge's comments and replies on the ticket, oldest first."""
        history = self.manager.transactions_of(ticket_id)
        ids = [
            int(t["id"])
            for t in history
            if t["Type"] in ("Comment", "Correspond") and t["Creator"]["id"] == "rollout-bridge"
        ]
        texts = []
        with httpx2.Client(auth=(self.info.root_user, self.info.root_password), timeout=20) as h:
            for txn in ids:
                items = h.get(
                    f"{self.info.rest_url}transaction/{txn}/attachments",
                    params={"fields": "Content,ContentType"},
                ).json()["items"]
                texts += [str(i["Content"]) for i in items if i.get("ContentType") == "text/plain"]
        return texts

    def mails_since(self, mark: int) -> list[tuple[set[str], str]]:
        """(recipients, subject) of each mail RT wrote to its log after ``mark`` bytes.

        RT's ``testfile`` mailer writes each message after a ``===`` line; recipients are in
        its To, Cc and Bcc headers.
        """
        text = Path(self.info.mail_log).read_text(errors="replace")[mark:]
        mails = []
        for chunk in text.split("\n===\n")[1:]:
            headers = chunk.split("\n\n", 2)[1] if chunk.count("\n\n") >= 2 else chunk
            recipients: set[str] = set()
            for match in re.finditer(r"^(?:to|cc|bcc):(.*)$", headers, re.I | re.M):
                recipients |= set(re.findall(r"[\w.+-]+@[\w.-]+", match.group(1)))
            subject = re.search(r"^Subject: (.*)$", headers, re.MULTILINE)
            mails.append((recipients, subject.group(1) if subject else ""))
        return mails

    def mail_mark(self) -> int:
        path = Path(self.info.mail_log)
        text = path.read_text(errors="replace") if path.exists() else ""
        return max(0, len(text) - 1)  # keep the newline before the next "==="


def _add_people(info: SandboxInfo) -> None:
    with httpx2.Client(auth=(info.root_user, info.root_password), timeout=20) as rt:
        for group, email in PEOPLE.items():
            user = rt.post(
                f"{info.rest_url}user",
                json={"Name": email.split("@")[0], "EmailAddress": email},
            )
            user.raise_for_status()
            found = rt.post(
                f"{info.rest_url}groups", json=[{"field": "Name", "value": group}]
            ).json()
            group_id = found["items"][0]["id"]
            principal = rt.post(
                f"{info.rest_url}users",
                json=[{"field": "Name", "value": email.split("@")[0]}],
                params={"fields": "id,Name"},
            ).json()["items"][0]["id"]
            rt.put(
                f"{info.rest_url}group/{group_id}/members", json=[int(principal)]
            ).raise_for_status()


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    root = tmp_path_factory.mktemp("workflow-rt")
    port = free_port()
    secret = new_hook_secret()
    box = Sandbox(root / "rt", bridge_url=f"http://127.0.0.1:{port}/hooks/rt", hook_secret=secret)
    info = box.up()
    _add_people(info)
    settings = config.Settings(
        tracker=config.TrackerSettings(url=info.web_url, token=config.Secret(info.bridge_token())),
        data_dir=root,
        receiver=config.ReceiverSettings(port=port, hook_secret=config.Secret(secret)),
        daemon=config.DaemonSettings(rt_bridge_user="rollout-bridge", retry_max_attempts=2),
    )
    engine = database.create_engine(settings.database())
    database.migrate(engine)
    jobs = queue.Queue(engine)
    server = build_server(settings, jobs, freeze_gc=False)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the receiver did not start"
        time.sleep(0.05)
    processor = transitions.workflow_processor(settings, jobs)
    manager = TrackerClient(
        config.TrackerSettings(
            url=info.web_url, user=info.root_user, password=config.Secret(info.root_password)
        )
    )
    yield Bridge(
        info=info,
        settings=settings,
        queue=jobs,
        store=releases.ReleaseStore(engine),
        runner=runner.Runner(jobs, processor, settings.daemon, worker="test"),
        processor=processor,
        manager=manager,
    )
    manager.close()
    processor.close()
    server.should_exit = True
    thread.join(timeout=30)
    engine.dispose()
    box.down()


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
    assert set(after.cc_groups()) == {"sw-rel-sr", "sw-rel-early-adopters"}
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
    skipped = bridge.queue.events(kind=runner.OWN_WRITE_EVENT, ticket_id=ticket)
    assert len(skipped) == 1
    assert all(j.status.label == "done" for j in jobs)
    assert bridge.state(ticket) == "InVerification"
