"""Mail intake against a real RT 5 (docs/mail-intake.md): mails piped into the real
``rt-mailgate``, run exactly as the page's alias line says (with the sandbox's URL), from a
provider in ``sw-rel-providers``; real packages served by the harness's rsync daemon. A mailed
release becomes a ticket with the provider as requestor and release.xml attached; a release
manager moves it to Unverified and the bridge fills in the release fields from the mail and
release.xml and publishes it. A missing field answered by mail, a field the ticket gives, a
refused line, a mail without release.xml, a stranger's mail and RT out of reach: each as the
page says.

The group ``sw-rel-providers`` and its rights come with the product's RT set-up (the shipped
initialdata): ``CreateTicket`` and ``SeeQueue`` for the group, replies for the tickets' Requestor.
"""

from __future__ import annotations

import itertools
import re
import shlex
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx2
import pytest

from bridge.rt_setup.sandbox import SandboxInfo, free_port
from tests.support import paths
from tests.support.packages import ProviderTree, build_packages, layout_provider_tree
from tests.support.workflow_harness import PROVIDER, Bridge, running_bridge

pytestmark = pytest.mark.rt

DOC = paths.ROOT / "docs" / "mail-intake.md"
STRANGER = "stranger@example.net"
PROVIDERS = "sw-rel-providers"
_subjects = itertools.count(1)


def mailgate_argv(web_url: str) -> list[str]:
    """The command of docs/mail-intake.md's alias line, with RT's URL replaced by ``web_url``."""
    found = re.search(r'^sw-rel: "\|(.+)"$', DOC.read_text(), re.MULTILINE)
    assert found, "docs/mail-intake.md has no alias line"
    argv = shlex.split(found.group(1))
    assert argv[-2] == "--url", argv
    return [*argv[:-1], web_url]


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    program = mailgate_argv("http://rt/")[0]
    if not Path(program).exists():
        pytest.fail(f"{program} is missing: install rt5-clients (scripts/bootstrap does)")
    with running_bridge(tmp_path_factory.mktemp("mail")) as running:
        _add_provider(running.info)
        yield running


def _add_provider(info: SandboxInfo) -> None:
    """The provider (an RT user with PROVIDER's address) in sw-rel-providers, whose members
    may file tickets of the queue (and answer their own, as their Requestor)."""
    with httpx2.Client(auth=(info.root_user, info.root_password), timeout=20) as rt:
        rest = info.rest_url
        found = rt.post(rest + "groups", json=[{"field": "Name", "value": PROVIDERS}]).json()
        group_id = int(found["items"][0]["id"])
        rt.post(rest + "user", json={"Name": "provider", "EmailAddress": PROVIDER})
        user_id = int(rt.get(rest + "user/provider").json()["id"])
        rt.put(rest + f"group/{group_id}/members", json=[user_id]).raise_for_status()


def _tree(bridge: Bridge, major: str, **release_xml: Any) -> tuple[ProviderTree, str]:
    """A provider's tree of real packages, served by the harness's rsync daemon, and its URL;
    ``release_xml`` says which release fields its release.xml states (none by default)."""
    name = f"{major.lower()}-mail"
    built = build_packages(bridge.provider_root / ".build" / name, count=1, prefix=name)
    url = bridge.rsync.url("provider", f"{name}/")
    states = {"sync_url": None, "major_release": None, "release_type": None, **release_xml}
    tree = layout_provider_tree(bridge.provider_root / name, built, short_name=name, **states)
    return tree, url


def _mail(
    bridge: Bridge,
    sender: str,
    subject: str,
    text: str,
    *,
    release_xml: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Pipe a mail into rt-mailgate as the mail server would; its exit status and output."""
    message = EmailMessage()
    message["From"] = f"Someone <{sender}>"
    message["To"] = "sw-rel@rollout-sandbox.localhost"
    message["Subject"] = subject
    message.set_content(text)
    if release_xml is not None:
        message.add_attachment(
            release_xml, maintype="application", subtype="xml", filename="release.xml"
        )
    return subprocess.run(
        mailgate_argv(bridge.info.web_url),
        input=message.as_bytes(),
        capture_output=True,
        timeout=120,
        check=False,
    )


def _file(bridge: Bridge, text: str, *, release_xml: bytes | None) -> tuple[int, str]:
    """A provider mails a release; the ticket RT made of it, and its subject."""
    subject = f"Mailed release {next(_subjects)}"
    sent = _mail(bridge, PROVIDER, subject, text, release_xml=release_xml)
    assert sent.returncode == 0, sent.stderr
    (ticket,) = _tickets(bridge, subject)
    return ticket, subject


def _tickets(bridge: Bridge, subject: str) -> list[int]:
    info = bridge.info
    with httpx2.Client(auth=(info.root_user, info.root_password), timeout=20) as rt:
        found = rt.get(info.rest_url + "tickets", params={"query": f"Subject = '{subject}'"})
        found.raise_for_status()
        return [int(t["id"]) for t in found.json()["items"]]


def _replies_to_provider(bridge: Bridge, mark: int, ticket: int) -> list[str]:
    """Subjects of the mails RT sent the provider about ``ticket`` since ``mark``."""
    tag = f"[rollout-sandbox #{ticket}]"
    return [s for to, s in bridge.mails_since(mark) if PROVIDER in to and tag in s]


def test_a_mailed_release_becomes_a_ticket_that_reaches_unverified(bridge: Bridge) -> None:
    # release.xml says only the release type; the mail's text gives the rest.
    tree, url = _tree(bridge, "MAIL-1", release_type="Incremental")
    mark = bridge.mail_mark()
    text = f"Please publish.\n\nSync-URL: {url}\nAssociatedMajorRelease: MAIL-1\n"
    ticket, _ = _file(bridge, text, release_xml=tree.release_xml)

    as_mailed = bridge.manager.get_ticket(ticket)
    assert [w.name for w in as_mailed.requestors] == ["provider"]
    assert bridge.manager.download_attachment(ticket, "release.xml").content == tree.release_xml
    # A mail sets no field: RT gave the queue's defaults, nothing else.
    assert as_mailed.field("Sync-URL") is None
    assert as_mailed.field("ReleaseType") == "NonIncremental"
    assert any("AutoReply" in s for s in _replies_to_provider(bridge, mark, ticket))
    bridge.drain()
    assert bridge.store.get(ticket) is None  # nothing reached the bridge yet

    bridge.move(ticket, "Unverified")
    after = bridge.manager.get_ticket(ticket)
    assert bridge.state(ticket) == "Unverified", bridge.comments(ticket)[-1]
    assert after.field("Sync-URL") == url
    assert after.field("AssociatedMajorRelease") == "MAIL-1"
    assert after.field("ReleaseType") == "Incremental"  # release.xml's, not the default
    assert after.field("Sync-Protocol") == "rsync"
    published = f"unverified/{tree.root.name}/1.0.0/"
    assert after.field("RepositoryURL") == bridge.settings.repository.base_url + published
    for package in tree.packages:
        assert (bridge.repo_root / published / package.path).is_file()
    # One comment per transition: the headline, then what was filled in and from where.
    (comment,) = [c for c in bridge.comments(ticket) if "Filled in by the bridge" in c]
    filled = comment.split("Filled in by the bridge at intake: ", 1)[1]
    assert f"Sync-URL = '{url}' (from the mail of transaction #" in filled
    assert "ReleaseType = 'Incremental' (from release.xml)" in filled


def test_a_missing_field_is_asked_for_and_the_providers_answer_is_read(bridge: Bridge) -> None:
    tree, url = _tree(bridge, "MAIL-2", release_type="Incremental")
    ticket, subject = _file(bridge, f"Sync-URL: {url}\n", release_xml=tree.release_xml)
    mark = bridge.mail_mark()
    bridge.move(ticket, "Unverified")
    assert bridge.state(ticket) == "Failed"
    assert bridge.manager.get_ticket(ticket).field("Sync-URL") is None  # left as it was
    assert (
        "the ticket lacks AssociatedMajorRelease; fill it in on the ticket, or answer"
        in (bridge.comments(ticket)[-1])
    )
    assert _replies_to_provider(bridge, mark, ticket), "the provider was not told"

    answer = "Sorry, here it is:\n\nAssociatedMajorRelease: MAIL-2\n\n> Sync-URL: rsync://old/x/\n"
    sent = _mail(bridge, PROVIDER, f"Re: [rollout-sandbox #{ticket}] {subject}", answer)
    assert sent.returncode == 0, sent.stderr
    assert _tickets(bridge, f"Re: [rollout-sandbox #{ticket}] {subject}") == []  # no new ticket
    bridge.move(ticket, "Unverified")  # the release manager retries
    after = bridge.manager.get_ticket(ticket)
    assert bridge.state(ticket) == "Unverified", bridge.comments(ticket)[-1]
    assert after.field("AssociatedMajorRelease") == "MAIL-2"
    assert after.field("Sync-URL") == url


def test_a_field_set_on_the_ticket_wins_over_the_mail(bridge: Bridge) -> None:
    tree, url = _tree(bridge, "MAIL-3", release_type="NonIncremental")
    wrong = bridge.rsync.url("provider", "nothing-here/")
    text = f"Sync-URL: {wrong}\nAssociatedMajorRelease: MAIL-3\n"
    ticket, _ = _file(bridge, text, release_xml=tree.release_xml)
    bridge.manager.set_custom_fields(ticket, {"Sync-URL": url})  # a release manager fixes it
    bridge.drain()
    bridge.move(ticket, "Unverified")
    after = bridge.manager.get_ticket(ticket)
    assert bridge.state(ticket) == "Unverified", bridge.comments(ticket)[-1]
    assert after.field("Sync-URL") == url
    assert after.field("AssociatedMajorRelease") == "MAIL-3"


def test_a_refused_line_fails_the_intake_and_is_never_written(bridge: Bridge) -> None:
    tree, _ = _tree(bridge, "MAIL-4", release_type="Incremental")
    text = "Sync-URL: file:///etc/passwd\nAssociatedMajorRelease: MAIL-4\n"
    ticket, _ = _file(bridge, text, release_xml=tree.release_xml)
    mark = bridge.mail_mark()
    bridge.move(ticket, "Unverified")
    assert bridge.state(ticket) == "Failed"
    after = bridge.manager.get_ticket(ticket)
    assert after.field("Sync-URL") is None
    assert after.field("AssociatedMajorRelease") is None  # a failed intake writes nothing
    reply = bridge.comments(ticket)[-1]
    assert reply.startswith("Your release ")
    assert "Sync-URL 'file:///etc/passwd' in the mail of transaction #" in reply
    assert "not an rsync daemon URL" in reply
    assert _replies_to_provider(bridge, mark, ticket)


def test_a_mail_without_release_xml_fails_with_a_reply_saying_so(bridge: Bridge) -> None:
    _, url = _tree(bridge, "MAIL-5")
    text = f"Sync-URL: {url}\nAssociatedMajorRelease: MAIL-5\n"
    ticket, _ = _file(bridge, text, release_xml=None)
    mark = bridge.mail_mark()
    bridge.move(ticket, "Unverified")
    assert bridge.state(ticket) == "Failed"
    assert (
        "the ticket has no release.xml attached; attach it to the ticket (by mail: answer "
        in (bridge.comments(ticket)[-1])
    )
    assert _replies_to_provider(bridge, mark, ticket)
    assert bridge.manager.get_ticket(ticket).field("Sync-URL") is None


def test_a_strangers_mail_creates_no_ticket(bridge: Bridge) -> None:
    tree, url = _tree(bridge, "MAIL-6", release_type="Incremental")
    mark = bridge.mail_mark()
    subject = "Release from nowhere"
    sent = _mail(bridge, STRANGER, subject, f"Sync-URL: {url}\n", release_xml=tree.release_xml)
    assert sent.returncode == 0, sent.stderr  # RT took the mail, and refused it
    assert _tickets(bridge, subject) == []
    mails = bridge.mails_since(mark)
    assert [s for to, s in mails if STRANGER in to] == ["Permission Denied"]
    # RT tells its own administrator (root, in the sandbox) too.
    assert any(s.startswith("Failed attempt to create a ticket by email") for _, s in mails)
    assert bridge.runner.drain().claimed == 0  # nothing reached the bridge


def test_rt_out_of_reach_makes_the_mail_server_try_again() -> None:
    program = mailgate_argv("http://rt/")[0]
    if not Path(program).exists():
        pytest.fail(f"{program} is missing: install rt5-clients (scripts/bootstrap does)")
    nobody = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    sent = subprocess.run(
        mailgate_argv(nobody),
        input=b"Subject: x\n\nx\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert sent.returncode == 75  # EX_TEMPFAIL: the mail server keeps the mail, tries later
