"""A running bridge against a sandbox RT, for the workflow tests and the RT-calls benchmark:
the product's scrip posts to the real receiver, the runner processes the queue with the
workflow processor, and helpers read back what RT shows and the mail it sent.

RT has real people in the product's groups, each with the password ``PASSWORD``: ``USERS``
(qc1, sr1 and manager1 staff in QC, staged rollout and the release managers; provider1 and
provider2 technology providers; outsider1 in no group) and the watchers of ``PEOPLE``.
``Bridge.as_user`` is a tracker client logged in as one of them. ``root``, the account of
``Bridge.manager``, is also made a member of sw-rel-qc, sw-rel-sr and sw-rel-admin: it
stands for a person with every role, so tests that move releases as root pass the bridge's
check of roles, while tests of that check act as the people above."""

from __future__ import annotations

import dataclasses
import email
import email.message
import email.policy
import itertools
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

from bridge import secrets
from bridge.intake.receiver import build_server
from bridge.rt_setup.sandbox import Sandbox, SandboxInfo, free_port
from bridge.settings import model as settings_model
from bridge.store import database, queue, releases
from bridge.tracker.client import TrackerClient
from repo_daemon.daemon import runner
from repo_daemon.demo import people
from repo_daemon.workflow import processor as workflow
from tests.support.packages import ProviderTree, build_packages, layout_provider_tree
from tests.support.repo_clients import import_public_key, provider_key, shared_key
from tests.support.rsync_server import RsyncDaemon

PEOPLE = {
    "sw-rel-qc": "qc1@example.org",
    "sw-rel-sr": "sr1@example.org",
    "sw-rel-early-adopters": "site1@example.org",
    "sw-rel-production": "ops1@example.org",
    "sw-rel-admin": "manager1@example.org",
}
PROVIDER = "provider@example.org"
PASSWORD = "rollout-test-pw-1"  # every test user's, on a loopback sandbox
# name -> (groups, privileged): staff use RT's full interface, providers its self-service
USERS: dict[str, tuple[tuple[str, ...], bool]] = {
    "qc1": (("sw-rel-qc",), True),
    "sr1": (("sw-rel-sr",), True),
    "manager1": (("sw-rel-admin",), True),
    "provider1": (("sw-rel-providers",), False),
    "provider2": (("sw-rel-providers",), False),
    "outsider1": ((), False),
}


def email_of(user: str) -> str:
    return f"{user}@example.org"


@dataclass
class Bridge:
    info: SandboxInfo
    settings: settings_model.Settings
    queue: queue.Queue
    store: releases.ReleaseStore
    runner: runner.Runner
    processor: workflow.WorkflowProcessor
    manager: TrackerClient
    rsync: RsyncDaemon
    provider_root: Path  # served by the rsync daemon as module "provider"
    server: Any = None  # the receiver RT's scrip posts to (see stop_receiver)
    thread: threading.Thread | None = None
    _releases: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _clients: dict[str, TrackerClient] = field(default_factory=dict)

    def as_user(self, name: str) -> TrackerClient:
        """A tracker client logged in as ``name`` (password ``PASSWORD``), one per user,
        closed with the bridge."""
        if name not in self._clients:
            self._clients[name] = TrackerClient(
                settings_model.TrackerSettings(
                    url=self.info.web_url, user=name, password=secrets.Secret(PASSWORD)
                )
            )
        return self._clients[name]

    def close_clients(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    @property
    def repo_root(self) -> Path:
        return self.settings.repository.root

    def drain(self) -> None:
        """Process everything queued, including the hooks of the bridge's own writes."""
        for _ in range(20):
            report = self.runner.drain()
            if report.claimed == 0:
                return
        raise AssertionError("the queue did not settle")

    def provider_tree(
        self, major: str, *, release_type: str = "Incremental"
    ) -> tuple[ProviderTree, str]:
        """A provider's tree of real, freshly built .rpm and .deb packages (names unique to
        this release) with its release.xml, and its rsync URL."""
        n = next(self._releases)
        name = f"{major.lower()}-r{n}"
        root = self.provider_root / name
        built = build_packages(
            self.provider_root / ".build" / name, count=1, prefix=name, rpm_key=provider_key()
        )
        url = self.rsync.url("provider", f"{name}/")
        tree = layout_provider_tree(
            root, built, short_name=name, sync_url=url, release_type=release_type,
            major_release=major,
        )  # fmt: skip
        return tree, url

    def file_release(
        self,
        major: str,
        *,
        emergency: bool = False,
        release_type: str = "Incremental",
        tree: tuple[ProviderTree, str] | None = None,
        release_xml: bytes | None = None,
        as_user: str | None = None,
    ) -> int:
        """File a release as a technology provider does: fields, release.xml attached.

        By root for ``PROVIDER`` (who is its requestor), or ``as_user`` (a provider, its
        requestor) with only the fields a provider may set (no EmergencyRelease).
        """
        provider, url = tree or self.provider_tree(major, release_type=release_type)
        fields = {"AssociatedMajorRelease": major, "ReleaseType": release_type, "Sync-URL": url}
        if as_user is None:
            fields["EmergencyRelease"] = "Yes" if emergency else "No"
        else:
            assert not emergency, "only release managers set EmergencyRelease"
        ticket_id = (self.as_user(as_user) if as_user else self.manager).create_ticket(
            "sw-rel",
            f"Release for {major}",
            "Please publish.",
            custom_fields=fields,
            requestors=[email_of(as_user) if as_user else PROVIDER],
            attachments=[("release.xml", release_xml or provider.release_xml, "application/xml")],
        )
        return ticket_id

    def move(self, ticket_id: int, state: str, as_user: str | None = None) -> None:
        """Someone sets RolloutProgress in RT (root, or ``as_user``); then the bridge catches
        up. Raises the tracker's error when RT refuses the change."""
        client = self.as_user(as_user) if as_user else self.manager
        client.set_custom_fields(ticket_id, {"RolloutProgress": state})
        self.drain()

    def stop_receiver(self) -> None:
        """Stop the receiver: RT's scrip cannot deliver its hooks (they are lost) until
        ``start_receiver``."""
        self.server.should_exit = True
        assert self.thread is not None
        self.thread.join(timeout=30)

    def start_receiver(self) -> None:
        """Start a receiver again on the same port."""
        self.server = build_server(self.settings, self.queue, freeze_gc=False)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the receiver did not start"
            time.sleep(0.05)

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

    def mail_texts_since(self, mark: int) -> list[tuple[set[str], str]]:
        """(recipients, plain-text body) of each mail RT wrote to its log after ``mark``,
        decoded (RT sends bodies base64 or quoted-printable)."""
        text = Path(self.info.mail_log).read_text(errors="replace")[mark:]
        mails = []
        for chunk in text.split("\n===\n")[1:]:
            start = re.search(r"^[\w-]+: ", chunk, re.MULTILINE)
            message = email.message_from_string(
                chunk[start.start() :] if start else chunk, policy=email.policy.default
            )
            assert isinstance(message, email.message.EmailMessage)
            recipients = set(
                re.findall(
                    r"[\w.+-]+@[\w.-]+",
                    " ".join(str(message.get(h, "")) for h in ("To", "Cc", "Bcc")),
                )
            )
            part = message.get_body(preferencelist=("plain",))
            mails.append((recipients, str(part.get_content()) if part is not None else ""))
        return mails

    def mail_mark(self) -> int:
        path = Path(self.info.mail_log)
        text = path.read_text(errors="replace") if path.exists() else ""
        return max(0, len(text) - 1)  # keep the newline before the next "==="


def _add_people(info: SandboxInfo) -> None:
    """The users of ``PEOPLE`` and ``USERS`` in their groups; and root, who moves releases in
    most tests, plays every role (the demo's way)."""
    people.root_plays_every_role(info)
    with httpx2.Client(
        base_url=info.rest_url, auth=(info.root_user, info.root_password), timeout=20
    ) as rt:
        found = rt.post("groups", json=[], params={"fields": "Name", "per_page": 100})
        groups = {g["Name"]: g["id"] for g in found.json()["items"]}
        members: dict[str, list[int]] = {}
        staff = {email.split("@")[0]: ((group,), False) for group, email in PEOPLE.items()}
        for name, (in_groups, privileged) in {**staff, **USERS}.items():
            body: dict[str, Any] = {"Name": name, "EmailAddress": email_of(name)}
            if name in USERS:
                body |= {"Password": PASSWORD, "Privileged": int(privileged)}
            rt.post("user", json=body).raise_for_status()
            for group in in_groups:
                members.setdefault(group, []).append(int(rt.get(f"user/{name}").json()["id"]))
        for group, ids in members.items():
            rt.put(f"group/{groups[group]}/members", json=ids).raise_for_status()


@contextmanager
def running_bridge(
    root: Path,
    *,
    repo_url: str = "http://repo.test/",
    signing_key: str | None = None,
    gnupghome: Path | None = None,
    workflow_settings: settings_model.WorkflowSettings | None = None,
    sync_hosts: tuple[settings_model.SyncHost, ...] = (settings_model.SyncHost(host="127.0.0.1"),),
    repository_changes: Mapping[str, Any] | None = None,
) -> Iterator[Bridge]:
    """A sandbox RT whose scrip posts to a real receiver, and a runner with the workflow
    processor, all on loopback; stopped when the block ends. The repository's trees are in
    ``root/repo``, announced at ``repo_url``, signed with ``signing_key`` (in ``gnupghome``)
    when given, else with the process's ``shared_key``. The providers' RPMs are signed with
    ``provider_key``, published as a package key (imported into ``gnupghome``). Syncs may
    reach only ``sync_hosts`` (the provider's rsync daemon is on 127.0.0.1).
    ``repository_changes`` replaces further repository settings (e.g. the sync's deadline)."""
    if signing_key is None:
        signing_key, gnupghome = shared_key().fingerprint, shared_key().home
    elif gnupghome is not None:
        import_public_key(provider_key(), gnupghome)
    provider_root = root / "provider"
    provider_root.mkdir(parents=True, exist_ok=True)
    rsync = RsyncDaemon(root / "rsyncd", {"provider": provider_root})
    rsync.start()
    port = free_port()
    secret = secrets.new_hook_secret()
    box = Sandbox(root / "rt", bridge_url=f"http://127.0.0.1:{port}/hooks/rt", hook_secret=secret)
    info = box.up()
    _add_people(info)
    settings = settings_model.Settings(
        tracker=settings_model.TrackerSettings(
            url=info.web_url, token=secrets.Secret(info.bridge_token())
        ),
        data_dir=root,
        receiver=settings_model.ReceiverSettings(port=port, hook_secret=secrets.Secret(secret)),
        daemon=settings_model.DaemonSettings(rt_bridge_user="rollout-bridge", retry_max_attempts=2),
        repository=settings_model.RepositorySettings(
            root=root / "repo",
            base_url=repo_url,
            signing_key=signing_key,
            gnupghome=gnupghome,
            sync_hosts=sync_hosts,
            package_keys=(provider_key().fingerprint,),
        ),
        workflow=workflow_settings or settings_model.WorkflowSettings(),
    )
    if repository_changes:
        settings = dataclasses.replace(
            settings, repository=dataclasses.replace(settings.repository, **repository_changes)
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
    processor = workflow.workflow_processor(settings, jobs)
    # The manager files releases as providers do, attachments of 100 MB among them (the
    # refusal of one is tested): RT takes its time to store such a ticket, longer than the
    # bridge's own 20 s.
    manager = TrackerClient(
        settings_model.TrackerSettings(
            url=info.web_url,
            user=info.root_user,
            password=secrets.Secret(info.root_password),
            timeout=180.0,
        )
    )
    bridge = Bridge(
        info=info,
        settings=settings,
        queue=jobs,
        store=releases.ReleaseStore(engine),
        runner=runner.Runner(jobs, processor, settings.daemon, worker="test"),
        processor=processor,
        manager=manager,
        rsync=rsync,
        provider_root=provider_root,
        server=server,
        thread=thread,
    )
    try:
        yield bridge
    finally:
        bridge.runner.close()
        bridge.close_clients()
        assert bridge.thread is not None
        _stop(manager, processor, bridge.server, bridge.thread, engine, box)
        rsync.stop()


def _stop(
    manager: TrackerClient,
    processor: workflow.WorkflowProcessor,
    server: Any,
    thread: threading.Thread,
    engine: Any,
    box: Sandbox,
) -> None:
    manager.close()
    processor.close()
    server.should_exit = True
    thread.join(timeout=30)
    engine.dispose()
    box.down()
