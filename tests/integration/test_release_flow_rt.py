"""Releases end to end against a real RT 5 and a real rsync daemon: real .rpm and .deb
packages built by the tests travel from the provider's tree to production byte for byte, and
every bad release — bad release.xml, a symlink, a checksum mismatch, an extra file — is refused
with a comment naming the problem, the ticket set to Failed, and nothing published."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import paths
from tests.support.workflow_harness import PROVIDER, Bridge, running_bridge

pytestmark = pytest.mark.rt

FIXTURES = paths.ROOT / "fixtures"
_majors = itertools.count(1)


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    with running_bridge(tmp_path_factory.mktemp("release-flow")) as running:
        yield running


def _files(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every package file (.rpm, .deb) below ``root``: the
    repository adds its metadata and index beside them."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".rpm", ".deb"):
            found[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _published_anywhere(bridge: Bridge, short_name: str) -> list[str]:
    """Paths below the repository's areas that mention the release (nothing for a refused one)."""
    hits = []
    for area in ("unverified", "stagerollout", "production"):
        for top, _dirs, files in os.walk(bridge.repo_root / area, followlinks=True):
            hits += [f"{top}/{name}" for name in files if short_name in f"{top}/{name}"]
    return hits


def test_real_packages_reach_production_byte_for_byte(bridge: Bridge) -> None:
    major = f"FLOW-{next(_majors)}"
    tree, url = bridge.provider_tree(major, release_type="Incremental")
    ticket = bridge.file_release(major, tree=(tree, url))
    provider_files = _files(tree.root)
    assert any(p.endswith(".rpm") for p in provider_files)
    assert any(p.endswith(".deb") for p in provider_files)
    short = tree.root.name

    bridge.move(ticket, "Unverified")
    after = bridge.manager.get_ticket(ticket)
    assert after.field("RolloutProgress") == "Unverified", bridge.comments(ticket)[-1]
    unverified = bridge.repo_root / "unverified" / short / "1.0.0"
    assert unverified.is_symlink()  # an atomic swap, never a tree edited in place
    assert _files(unverified) == provider_files
    assert after.field("RepositoryURL") == f"http://repo.test/unverified/{short}/1.0.0/"
    steps = [bridge.store.steps_done(job.id) for job in bridge.queue.list_jobs(ticket_id=ticket)]
    # Hashed once, as the sync receives each file: the sync's own step says so.
    synced = [s["sync_packages"] for s in steps if "sync_packages" in s]
    assert len(synced) == 1 and synced[0].startswith("synced and verified "), steps

    bridge.move(ticket, "InVerification")
    bridge.move(ticket, "StageRollout")
    staged = bridge.repo_root / "stagerollout" / major
    assert _files(staged) == provider_files
    assert bridge.manager.get_ticket(ticket).field("RepositoryURL") == (
        f"http://repo.test/stagerollout/{major}/"
    )

    bridge.move(ticket, "Production")
    production = bridge.repo_root / "production" / major / "updates"  # Incremental
    assert _files(production) == provider_files
    after = bridge.manager.get_ticket(ticket)
    assert after.field("RepositoryURL") == f"http://repo.test/production/{major}/updates/"
    assert not (bridge.repo_root / "unverified" / short / "1.0.0").exists()
    assert _files(staged) == {}
    # The area is a repository apt and dnf accept, with an index for mirrors.
    assert (production / "index.json").is_file() and (production / "index.html").is_file()
    assert (production / "rpms" / "noarch" / "repodata" / "repomd.xml").is_file()
    assert "Packages" in (production / "debs" / "Release").read_text()
    # Promotion copied no bytes: production's files are the pool's inodes.
    for rel in provider_files:
        inode = (production / rel).stat().st_ino
        pooled = bridge.repo_root / ".pool" / provider_files[rel][:2] / provider_files[rel]
        assert pooled.stat().st_ino == inode


def test_a_nonincremental_release_goes_to_base(bridge: Bridge) -> None:
    major = f"FLOW-{next(_majors)}"
    tree, url = bridge.provider_tree(major, release_type="NonIncremental")
    ticket = bridge.file_release(major, tree=(tree, url), release_type="NonIncremental",
                                 emergency=True)  # fmt: skip
    for state in ("Unverified", "InVerification", "Production"):
        bridge.move(ticket, state)
    assert _files(bridge.repo_root / "production" / major / "base") == _files(tree.root)


def test_rejection_removes_the_release(bridge: Bridge) -> None:
    major = f"FLOW-{next(_majors)}"
    tree, url = bridge.provider_tree(major)
    ticket = bridge.file_release(major, tree=(tree, url))
    for state in ("Unverified", "InVerification", "StageRollout"):
        bridge.move(ticket, state)
    assert _published_anywhere(bridge, tree.root.name)
    bridge.move(ticket, "Rejected")
    after = bridge.manager.get_ticket(ticket)
    assert (after.field("RolloutProgress"), after.status) == ("Rejected", "resolved")
    assert _published_anywhere(bridge, tree.root.name) == []
    assert after.field("RepositoryURL") in (None, "")


def _refused(bridge: Bridge, ticket: int, *words: str) -> None:
    bridge.move(ticket, "Unverified")
    after = bridge.manager.get_ticket(ticket)
    assert after.field("RolloutProgress") == "Failed"
    comment = bridge.comments(ticket)[-1]
    for word in words:
        assert word in comment, comment
    assert "set RolloutProgress to Unverified to retry, or to Rejected" in comment


@pytest.mark.parametrize(
    ("fixture", "words"),
    [
        ("release_missing_version.xml", ["RevisionVersion is missing"]),
        ("release_wrong_type.xml", ["'five' is not a whole number"]),
        ("release_unknown_element.xml", ["unknown element"]),
        ("release_billion_laughs.xml", ["must not contain a DOCTYPE"]),
        ("release_external_entity.xml", ["must not contain a DOCTYPE"]),
        ("release_with_dtd.xml", ["must not contain a DOCTYPE"]),
        ("release_dotdot_path.xml", ["contains '..'"]),
        ("release_bad_short_name.xml", ["DistributionShortName"]),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_bad_release_xml_fails_the_release_and_says_why(
    bridge: Bridge, fixture: str, words: list[str]
) -> None:
    major = "UMD-5"  # the fixtures' own MajorRelease
    data = (FIXTURES / fixture).read_bytes()
    ticket = bridge.file_release(major, release_type="Incremental", release_xml=data)
    _refused(bridge, ticket, "release.xml is invalid", *words)
    assert "root:x:0:0" not in bridge.comments(ticket)[-1]  # no file content leaks


def test_a_hundred_megabyte_release_xml_is_refused(bridge: Bridge) -> None:
    data = b"<Release>" + b" " * (100 * 1024 * 1024) + b"</Release>"
    ticket = bridge.file_release(f"FLOW-{next(_majors)}", release_xml=data)
    _refused(bridge, ticket, "the limit is 1048576 bytes")


def test_a_symlink_in_the_providers_tree_is_refused(bridge: Bridge) -> None:
    major = f"FLOW-{next(_majors)}"
    tree, url = bridge.provider_tree(major)
    (tree.root / "debs" / "escape").symlink_to("/etc/passwd")
    ticket = bridge.file_release(major, tree=(tree, url))
    _refused(bridge, ticket, "debs/escape")
    assert _published_anywhere(bridge, tree.root.name) == []


def test_a_checksum_mismatch_and_an_extra_file_are_both_listed(bridge: Bridge) -> None:
    major = f"FLOW-{next(_majors)}"
    tree, url = bridge.provider_tree(major)
    victim = next(p for p in tree.packages if p.path.endswith(".deb"))
    with (tree.root / victim.path).open("ab") as handle:
        handle.write(b"tampered")
    (tree.root / "debs" / "junk.txt").write_text("not in release.xml")
    ticket = bridge.file_release(major, tree=(tree, url))
    _refused(bridge, ticket, victim.path, "debs/junk.txt")
    assert _published_anywhere(bridge, tree.root.name) == []


def test_a_failed_release_is_retried_after_the_provider_fixes_it(bridge: Bridge) -> None:
    major = f"FLOW-{next(_majors)}"
    tree, url = bridge.provider_tree(major)
    (tree.root / "debs" / "junk.txt").write_text("not in release.xml")
    ticket = bridge.file_release(major, tree=(tree, url))
    _refused(bridge, ticket, "debs/junk.txt")
    (tree.root / "debs" / "junk.txt").unlink()
    bridge.move(ticket, "Unverified")
    assert bridge.state(ticket) == "Unverified"
    assert _files(bridge.repo_root / "unverified" / tree.root.name / "1.0.0") == _files(tree.root)


def test_the_provider_is_told_by_mail_what_to_fix(bridge: Bridge) -> None:
    data = (FIXTURES / "release_missing_version.xml").read_bytes()
    ticket = bridge.file_release("UMD-5", release_xml=data)
    mark = bridge.mail_mark()
    bridge.move(ticket, "Unverified")
    assert bridge.state(ticket) == "Failed"
    to_provider = [subject for to, subject in bridge.mails_since(mark) if PROVIDER in to]
    assert to_provider, bridge.mails_since(mark)
    reply = next(t for t in bridge.comments(ticket) if t.startswith("Your release"))
    assert "could not be processed" in reply and "RevisionVersion is missing" in reply
