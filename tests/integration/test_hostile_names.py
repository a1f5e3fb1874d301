"""Every hostile name and shape class through the whole daemon path: release.xml on a ticket
(the fake tracker), the real queue (SQLite) and runner, the workflow processor, validation, a
real sync over rsync (rsync daemon), SFTP (sshd) and HTTPS (a server with a test CA), and
real publication with real metadata tools. Each release is refused at validation with its
line, refused at the sync naming the entry escaped, or published; never a traceback, never a
job left running or dead-lettered, and no comment carries a raw control, invisible or
bidirectional character or a byte that is not UTF-8.

Classes (issue 15): names of 250-255 bytes, paths of ~3,100 and ~4,081 bytes, ~990 nested
directories (declared and not), 10-18-digit version numbers, the bridge's reserved names,
escape sequences and newlines, RLO and zero-width characters, names that are not UTF-8 on the
provider's side, an unknown xsi:type; and the largest shapes the limits allow, which publish.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bridge import printable, records
from bridge.records import RolloutState as S
from bridge.settings import model as settings_model
from bridge.store import database, queue, releases
from bridge.testing import FakeTracker
from repo_daemon.daemon import runner
from repo_daemon.sync import tree as sync_tree
from repo_daemon.workflow import processor as workflow
from repo_daemon.workflow import steps
from tests.support import packages
from tests.support.https_server import HttpsServer
from tests.support.rsync_server import RsyncDaemon
from tests.support.sftp_server import SftpServer, sshd_missing

PROTOCOLS = ("rsync", "sftp", "https")
RPM = "rpms/ok-1.0-1.noarch.rpm"  # every release's one good file
XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
_DIR = os.O_RDONLY | os.O_DIRECTORY


@dataclass(frozen=True, kw_only=True)
class Case:
    """One hostile class: what release.xml declares (paths, besides the good file), what else
    the provider's tree holds (undeclared, as raw bytes), and the outcome per protocol:
    ``validation`` (refused with a line), ``sync`` (refused, the entry named escaped) or
    ``published``; ``words`` must be in the comment."""

    name: str
    declared: tuple[str, ...] = ()
    undeclared: tuple[bytes, ...] = ()
    deep: tuple[int, bytes] | None = None  # (levels, directory name) made below the tree
    version: str = "1.0.0"
    xml_edit: tuple[str, str] | None = None
    outcome: dict[str, str] = field(default_factory=dict)
    words: tuple[str, ...] = ()
    words_over: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per protocol


def _everywhere(outcome: str) -> dict[str, str]:
    return dict.fromkeys(PROTOCOLS, outcome)


# HTTPS fetches only what release.xml names: what else the server holds is never fetched.
_UNDECLARED = {"rsync": "sync", "sftp": "sync", "https": "published"}

CASES = [
    Case(name="name-250-bytes", declared=("rpms/" + "n" * 246 + ".rpm",),
         outcome=_everywhere("validation"), words=("has a component of 250 bytes (at most 249)",
                                                    "line ")),
    Case(name="name-255-bytes", declared=("rpms/" + "n" * 251 + ".rpm",),
         outcome=_everywhere("validation"), words=("has a component of 255 bytes",)),
    Case(name="path-3100-bytes", declared=("/".join(["€" * 80] * 13) + "/x.rpm",),
         outcome=_everywhere("validation"), words=("bytes long (at most 3072)",)),
    Case(name="path-4081-bytes", declared=("/".join(["p" * 239] * 17) + "/x.rpm",),
         outcome=_everywhere("validation"), words=("is not a relative path of 1 to 3072",)),
    Case(name="deep-990-declared", declared=("d/" * 990 + "x.rpm",),
         outcome=_everywhere("validation"), words=("has 991 components (at most 32 levels)",)),
    Case(name="version-10-digits", version="1234567890.0.0",
         outcome=_everywhere("validation"), words=("'1234567890' is larger than 999,999,999",)),
    Case(name="version-18-digits", version="1.999999999999999999.0",
         outcome=_everywhere("validation"), words=("is larger than 999,999,999",)),
    Case(name="reserved-repodata", declared=("repodata/repomd.xml",),
         outcome=_everywhere("validation"), words=("uses the name 'repodata'",)),
    Case(name="reserved-release", declared=("Release",),
         outcome=_everywhere("validation"), words=("uses the name 'Release'",)),
    Case(name="reserved-index-json", declared=("index.json",),
         outcome=_everywhere("validation"), words=("uses the name 'index.json'",)),
    Case(name="reserved-rollout-repo", declared=("rollout.repo",),
         outcome=_everywhere("validation"), words=("uses the name 'rollout.repo'",)),
    Case(name="reserved-key-file", declared=("RPM-GPG-KEY-rollout",),
         outcome=_everywhere("validation"), words=("uses the name 'RPM-GPG-KEY-rollout'",)),
    Case(name="newline-declared", declared=("rpms/a\nb.rpm",),
         outcome=_everywhere("validation"), words=("a\\nb.rpm' contains a control character",)),
    Case(name="csi-declared", declared=("rpms/a\x9b2Jb.rpm",),
         outcome=_everywhere("validation"), words=("a\\x9b2Jb.rpm' contains a control",)),
    Case(name="rlo-declared", declared=("rpms/evil\u202egpj.rpm",),
         outcome=_everywhere("validation"), words=("evil\\u202egpj.rpm' contains a bidi",)),
    Case(name="zero-width-declared", declared=("rpms/a\u200bb.rpm",),
         outcome=_everywhere("validation"), words=("(U+200B ZERO WIDTH SPACE)",)),
    Case(name="xsi-type-unknown",
         xml_edit=("<MajorVersion>", f'<MajorVersion {XSI} xsi:type="Nope">'),
         outcome=_everywhere("validation"), words=("unknown attribute 'xsi:type'",)),
    Case(name="escape-sequence-on-server", undeclared=(b"rpms/evil\x1b]0;pwned\x07\x1b[2J.rpm",),
         outcome=_UNDECLARED, words=("evil\\x1b]0;pwned\\x07\\x1b[2J.rpm",)),
    Case(name="newline-on-server", undeclared=(b"rpms/forged\nline.rpm",),
         outcome=_UNDECLARED, words=("forged\\nline.rpm",)),
    Case(name="rlo-on-server", undeclared=("rpms/evil\u202egpj.rpm".encode(),),
         outcome=_UNDECLARED, words=("evil\\u202egpj.rpm",)),
    Case(name="not-utf8-on-server", undeclared=(b"rpms/caf\xe9-\xff.rpm",),
         outcome=_UNDECLARED, words=("caf\\xe9-\\xff.rpm", "not valid UTF-8")),
    Case(name="name-255-bytes-on-server", undeclared=(b"rpms/" + b"n" * 255,),
         outcome=_UNDECLARED, words=("is 255 bytes long (a name has at most 249)",)),
    Case(name="path-3840-bytes-on-server", deep=(16, b"p" * 239),
         outcome=_UNDECLARED, words=("its path is 3119 bytes long (at most 3072)",)),
    # The provider's own rsync daemon cannot open it (its root in front makes it longer than
    # PATH_MAX): rsync says so, and that is as permanent.
    Case(name="path-4081-bytes-on-server", deep=(17, b"p" * 239),
         outcome=_UNDECLARED, words=("bytes long (at most 3072)",),
         words_over={"rsync": ("File name too long", "exit code 23")}),
    Case(name="deep-990-on-server", deep=(990, b"d"),
         outcome=_UNDECLARED, words=("it lies 33 levels deep (at most 32)",)),
    # The largest shapes the limits allow: published, over every protocol.
    Case(name="largest-allowed", declared=(
        "rpms/" + "n" * 245 + ".rpm",  # a 249-byte name
        "/".join(["€" * 79] * 12) + "/" + "x" * 79 + ".rpm",  # 3,000 bytes
        "deep/" * 31 + "x.rpm",  # 32 levels
    ), version="999999999.0.0", outcome=_everywhere("published")),
]  # fmt: skip


@pytest.fixture(scope="module")
def rpm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    missing = packages.tools_missing()
    assert not missing, f"install {missing} (Debian: dpkg, rpm) to build the test packages"
    workdir = tmp_path_factory.mktemp("built")
    return packages.build_rpm(workdir, "ok").read_bytes()


@pytest.fixture(scope="module")
def providers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    found = tmp_path_factory.mktemp("providers")
    yield found
    sync_tree.remove_tree(found)  # pytest's own clean-up recurses: ~990 levels are too deep for it


@dataclass
class Servers:
    rsync: RsyncDaemon
    sftp: SftpServer
    https: HttpsServer
    providers: Path

    def url(self, protocol: str, tree: Path) -> str:
        if protocol == "rsync":
            return self.rsync.url("rel", tree.name + "/")
        if protocol == "sftp":
            return self.sftp.url(tree)
        return f"{self.https.url}/{tree.name}"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, providers: Path) -> Iterator[Servers]:
    assert sshd_missing() is None, sshd_missing()
    with (
        RsyncDaemon(tmp_path_factory.mktemp("rsyncd"), {"rel": providers}) as rsyncd,
        SftpServer(tmp_path_factory.mktemp("sshd")) as sshd,
        HttpsServer(tmp_path_factory.mktemp("https"), providers) as https,
    ):
        yield Servers(rsync=rsyncd, sftp=sshd, https=https, providers=providers)


@dataclass
class Daemon:
    """The daemon's parts on one SQLite database, with the fake tracker."""

    rt: FakeTracker
    queue: queue.Queue
    runner: runner.Runner
    settings: settings_model.Settings

    def file(self, ticket_id: int, protocol: str, url: str, release_xml: bytes) -> None:
        """A provider's ticket with release.xml attached; a manager moves it to Unverified."""
        self.rt.add_ticket(ticket_id, fields={
            "RolloutProgress": "Submitted", "EmergencyRelease": "No",
            "AssociatedMajorRelease": "UMD-5", "ReleaseType": "NonIncremental",
            "Sync-Protocol": protocol, "Sync-URL": url, "RolloutHistory": (),
            "RepositoryURL": (),
        })  # fmt: skip
        self.rt.attach(ticket_id, "release.xml", release_xml, "application/xml")
        txn = self.rt.change_field(ticket_id, "RolloutProgress", "Unverified", actor="manager")
        self.queue.enqueue(
            records.ReleaseRequest(ticket_id=ticket_id, transaction_id=txn, current=S.UNVERIFIED,
                                   previous=S.SUBMITTED, actor="manager")
        )  # fmt: skip

    def said(self, ticket_id: int) -> list[str]:
        return self.rt.comments.get(ticket_id, []) + self.rt.replies.get(ticket_id, [])


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, servers: Servers) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("bridge")
    settings = settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="http://rt.test/"),
        data_dir=root,
        daemon=settings_model.DaemonSettings(rt_bridge_user="rollout-bridge", retry_max_attempts=2),
        repository=settings_model.RepositorySettings(
            root=root / "repo",
            base_url="http://repo.test/",
            sftp_key_file=servers.sftp.client_key,
            sftp_known_hosts=servers.sftp.known_hosts,
            https_ca_file=servers.https.ca.file,
            sync_hosts=(settings_model.SyncHost(host="127.0.0.1"),),
            sync_timeout=30,
        ),
    )
    engine = database.create_engine(database.default_url(root))
    database.migrate(engine)
    jobs = queue.Queue(engine)
    store = releases.ReleaseStore(engine)
    rt = FakeTracker()
    rt.memberships["manager"] = frozenset({"sw-rel-qc", "sw-rel-sr", "sw-rel-admin"})
    work = steps.RepositoryWork(settings, store, steps.repository(settings))
    processor = workflow.WorkflowProcessor(settings, jobs, store, lambda: rt, repository=work)  # type: ignore[arg-type,return-value]
    run = runner.Runner(jobs, processor, settings.daemon, worker="hostile-names")
    yield Daemon(rt=rt, queue=jobs, runner=run, settings=settings)
    engine.dispose()
    sync_tree.remove_tree(root / "scratch")  # what refused releases left (too deep for pytest)


_tickets = itertools.count(100)


def _short(case: Case, protocol: str) -> str:
    """The release's DistributionShortName: one unverified area per case and protocol."""
    return f"h-{case.name}-{protocol}"


def _release_xml(case: Case, paths: list[tuple[str, bytes]], url: str, protocol: str) -> bytes:
    major, minor, revision = case.version.split(".")
    release = ET.Element("Release")

    def text(parent: ET.Element, tag: str, value: str) -> None:
        ET.SubElement(parent, tag).text = value

    for tag, value in [
        ("DistributionName", "Hostile names"), ("DistributionShortName", _short(case, protocol)),
        ("TechnologyProvider", "Tests"), ("Contact", "provider@example.org"),
        ("Description", "A release of hostile names."), ("ISODate", "2024-05-17"),
        ("MajorVersion", major), ("MinorVersion", minor), ("RevisionVersion", revision),
        ("ReleaseNotes", "None."), ("ChangeLog", "None."), ("SynchProtocol", protocol),
        ("SynchURL", url), ("ReleaseType", "NonIncremental"), ("MajorRelease", "UMD-5"),
    ]:  # fmt: skip
        text(release, tag, value)
    ET.SubElement(release, "Keywords")
    ET.SubElement(release, "DocumentationLinks")
    repository = ET.SubElement(ET.SubElement(release, "Repositories"), "Repository")
    for tag, value in [("Identifier", "all"), ("Name", "All"), ("Type", "YUM")]:
        text(repository, tag, value)
    ET.SubElement(repository, "RelativePath")  # the root: createrepo_c indexes every .rpm
    listed = ET.SubElement(release, "Packages")
    for path, data in paths:
        package = ET.SubElement(listed, "Package")
        text(package, "Name", "ok")
        text(package, "Version", "1.0-1")
        text(package, "Path", path)
        text(package, "Size", str(len(data)))
        text(package, "SHA256", hashlib.sha256(data).hexdigest())
    data = ET.tostring(release, encoding="unicode").replace("\x9b", "&#x9b;")
    if case.xml_edit is not None:
        data = data.replace(*case.xml_edit, 1)
    return data.encode()


def _make(top: Path, rel: bytes, data: bytes) -> None:
    """``top/rel`` written by descriptors (no PATH_MAX limit), its directories made."""
    fd = os.open(top, _DIR)
    try:
        *dirs, name = rel.split(b"/")
        for part in dirs:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, dir_fd=fd)
            child = os.open(part, _DIR, dir_fd=fd)
            os.close(fd)
            fd = child
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=fd)
        os.write(out, data)
        os.close(out)
    finally:
        os.close(fd)


def _provider_tree(servers: Servers, case: Case, protocol: str, rpm: bytes) -> tuple[Path, list]:
    tree = servers.providers / f"{case.name}-{protocol}"
    tree.mkdir()
    files = [(RPM, rpm), *((p, rpm) for p in case.declared)]
    for path, data in files:
        _make(tree, path.encode(), data)
    for raw in case.undeclared:
        _make(tree, raw, b"undeclared")
    if case.deep is not None:
        levels, name = case.deep
        _make(tree, b"/".join([name] * levels) + b"/leaf.rpm", b"deep")
    return tree, files


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_hostile_name_is_refused_with_its_place_or_published(
    daemon: Daemon, servers: Servers, rpm: bytes, case: Case, protocol: str
) -> None:
    tree, files = _provider_tree(servers, case, protocol, rpm)
    url = servers.url(protocol, tree)
    ticket_id = next(_tickets)
    daemon.file(ticket_id, protocol, url, _release_xml(case, files, url, protocol))

    report = daemon.runner.drain()

    # Never a job left running, retried or dead-lettered: processed once, to an outcome.
    assert (report.done, report.retried, report.dead, report.failed) == (1, 0, 0, 0), report
    jobs = daemon.queue.list_jobs(ticket_id=ticket_id)
    assert [j.status for j in jobs] == [records.JobStatus.DONE]
    said = daemon.said(ticket_id)
    for text in said:  # nothing raw reaches the ticket, and all of it can be recorded
        text.encode("utf-8")
        assert printable.text(text) == text, text
    state = daemon.rt.tickets[ticket_id].field("RolloutProgress")
    expected = case.outcome[protocol]
    if expected == "published":
        assert state == "Unverified", said
        area = daemon.settings.repository.root / "unverified" / _short(case, protocol)
        version = area / case.version
        for path, _data in files:
            assert (version / path).is_file()
        assert (version / "repodata" / "repomd.xml").is_file()
        return
    assert state == "Failed", said
    reply = "\n".join(said)
    for words in case.words_over.get(protocol, case.words):
        assert words in reply, reply
    if expected == "validation":
        assert "release.xml is invalid:" in reply and "line " in reply, reply
    elif protocol not in case.words_over:
        assert "not accepted" in reply, reply
    assert not (daemon.settings.repository.root / "unverified" / _short(case, protocol)).exists()


def test_the_table_covers_every_class_over_every_protocol() -> None:
    """A refused class over every protocol, and the undeclared ones published only by HTTPS
    (which fetches exactly what release.xml names)."""
    assert all(set(c.outcome) == set(PROTOCOLS) for c in CASES)
    assert {c.outcome["https"] for c in CASES if c.undeclared or c.deep} == {"published"}
