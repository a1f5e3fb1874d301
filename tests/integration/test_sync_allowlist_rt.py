"""Sync-URLs outside the allowlist, against a real RT: the release fails at intake — before
release.xml is downloaded and before anything connects — with a comment naming the allowed
hosts and a reply to the provider; an HTTPS redirect from the allowed host to another is
refused the same way. A listener on the other host records every connection: none."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.settings.model import SyncHost
from tests.support.https_server import RedirectingHttpsServer
from tests.support.recording_listener import RecordingListener
from tests.support.workflow_harness import PROVIDER, Bridge, running_bridge

pytestmark = pytest.mark.rt

_majors = itertools.count(1)


@pytest.fixture(scope="module")
def listener() -> Iterator[RecordingListener]:
    """Something listening on 127.0.0.2, which the bridge's allowlist does not name."""
    with RecordingListener("127.0.0.2") as found:
        yield found


@pytest.fixture(scope="module")
def redirector(
    tmp_path_factory: pytest.TempPathFactory, listener: RecordingListener
) -> Iterator[RedirectingHttpsServer]:
    """An HTTPS server on the allowed host that sends every request on to the listener."""
    workdir = tmp_path_factory.mktemp("redirector")
    with RedirectingHttpsServer(workdir, f"https://{listener.netloc}") as server:
        yield server


@pytest.fixture(scope="module")
def bridge(
    tmp_path_factory: pytest.TempPathFactory, redirector: RedirectingHttpsServer
) -> Iterator[Bridge]:
    # The provider's rsync daemon and the redirector are on 127.0.0.1; the CA that signed the
    # redirector's certificate is offered to that host alone.
    allowed = (SyncHost(host="127.0.0.1", https_ca_file=redirector.ca.file),)
    with running_bridge(tmp_path_factory.mktemp("allowlist"), sync_hosts=allowed) as running:
        yield running


def _file(bridge: Bridge, url: str, protocol: str = "rsync") -> int:
    major = f"ALLOW-{next(_majors)}"
    tree, _allowed_url = bridge.provider_tree(major)
    ticket = bridge.file_release(major, tree=(tree, url))
    if protocol != "rsync":
        bridge.manager.set_custom_fields(ticket, {"Sync-Protocol": protocol})
    return ticket


def _failure_comment(bridge: Bridge, ticket: int) -> str:
    return next(c for c in bridge.comments(ticket) if "Processing failed: " in c)


def _steps(bridge: Bridge, ticket: int) -> list[str]:
    return [step for job in bridge.queue.list_jobs(ticket_id=ticket)
            for step in bridge.store.steps_done(job.id)]  # fmt: skip


def test_a_sync_url_outside_the_allowlist_fails_at_intake_without_a_connection(
    bridge: Bridge, listener: RecordingListener
) -> None:
    url = f"rsync://{listener.netloc}/provider/release/"
    ticket = _file(bridge, url)
    mark = bridge.mail_mark()
    bridge.move(ticket, "Unverified")

    assert bridge.state(ticket) == "Failed"
    comment = _failure_comment(bridge, ticket)
    assert (
        f"Processing failed: Submitted → Unverified failed: Sync-URL '{url}' refused: rsync from "
        "127.0.0.2 is not allowed; the bridge syncs only from the hosts its settings allow "
        "(sync_hosts): 127.0.0.1. Ask the repository's operators if your host should be one of "
        "them. Fix the cause, then set RolloutProgress to Unverified to retry, or to Rejected."
    ) in comment, comment
    # The provider is told by mail what to fix.
    assert any(PROVIDER in to for to, _subject in bridge.mails_since(mark))
    # Refused before anything else: release.xml was never downloaded, nothing connected.
    steps = _steps(bridge, ticket)
    assert "check_sync_url" not in steps  # it failed: no checkpoint
    assert "freeze_release_xml" not in steps and "sync_packages" not in steps, steps
    assert listener.connections == []


def test_an_https_redirect_to_a_host_outside_the_allowlist_is_refused_without_a_connection(
    bridge: Bridge, listener: RecordingListener, redirector: RedirectingHttpsServer
) -> None:
    asked_before = len(redirector.requests)
    ticket = _file(bridge, redirector.url + "/release", protocol="https")
    bridge.move(ticket, "Unverified")

    assert bridge.state(ticket) == "Failed"
    comment = _failure_comment(bridge, ticket)
    assert f"redirects to https://{listener.netloc}/" in comment, comment
    assert "the bridge follows redirects only within the host, scheme and port" in comment
    assert len(redirector.requests) == asked_before + 1  # the allowed host, asked once
    assert listener.connections == []
    assert _published(bridge) == []


def _published(bridge: Bridge) -> list[Path]:
    area = bridge.repo_root / "unverified"
    return sorted(area.rglob("*.rpm")) if area.exists() else []
