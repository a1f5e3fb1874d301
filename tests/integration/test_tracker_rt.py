"""The tracker client and the scrip against a real RT 5 (the session's sandbox)."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import httpx2
import pytest
from standardwebhooks.webhooks import Webhook

from bridge import errors
from bridge.rt_setup.sandbox import SandboxInfo
from bridge.secrets import Secret
from bridge.settings.model import TrackerSettings
from bridge.tracker import history as history_module
from bridge.tracker.client import TrackerClient
from tests.support.hook_listener import HookListener, ReceivedHook

pytestmark = pytest.mark.rt

RELEASE_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Release>\n  <Version>1.2.3</Version>\n</Release>\n'
)


def _file_release(manager: TrackerClient, *, emergency: str = "No") -> int:
    return manager.create_ticket(
        "sw-rel",
        "Release of dCache 9.2.1",
        "Please publish.",
        custom_fields={
            "Sync-URL": "rsync://provider.example.org/dcache/9.2.1/",
            "AssociatedMajorRelease": "UMD-5",
            "EmergencyRelease": emergency,
        },
        requestors=["provider@example.org"],
        attachments=[("release.xml", RELEASE_XML, "application/xml")],
    )


def _for_ticket(ticket_id: int, current: str) -> object:
    def match(hook: ReceivedHook) -> bool:
        body = hook.json()
        return bool(body["ticket_id"] == ticket_id and body["current"] == current)

    return match


def _transaction_content(info: SandboxInfo, transaction_id: int) -> str:
    """The text of a transaction, read with root's basic auth (an independent path)."""
    with httpx2.Client(auth=(info.root_user, info.root_password), timeout=20) as http:
        found = http.get(
            f"{info.rest_url}transaction/{transaction_id}/attachments",
            params={"fields": "Content,ContentType"},
        ).json()
    texts = [
        str(item["Content"])
        for item in found["items"]
        if item.get("Content") and item.get("ContentType", "").startswith("text/plain")
    ]
    return "\n".join(texts)


def test_rolloutprogress_change_posts_a_signed_hook(
    rt_sandbox: SandboxInfo, hooks: HookListener, manager_client: TrackerClient
) -> None:
    ticket_id = _file_release(manager_client)

    manager_client.set_custom_fields(ticket_id, {"RolloutProgress": "Unverified"})

    hook = hooks.wait_for(_for_ticket(ticket_id, "Unverified"))
    assert hook.path == "/hooks/rt"
    assert hook.headers["content-type"] == "application/json"
    # The signature verifies with the secret in RT's site config (Standard Webhooks).
    Webhook(rt_sandbox.hook_secret()).verify(hook.body, hook.headers)
    body = hook.json()
    assert body == {
        "ticket_id": ticket_id,
        "transaction_id": body["transaction_id"],
        "field": "RolloutProgress",
        "current": "Unverified",
        "previous": "Submitted",
        "emergency": False,
        "actor": "root",
        "changed_at": body["changed_at"],
    }
    assert hook.headers["webhook-id"] == str(body["transaction_id"])
    history = manager_client.transactions_of(ticket_id)
    change = [t for t in history if int(t["id"]) == body["transaction_id"]]
    assert change and change[0]["Type"] == "CustomField"
    assert (change[0]["OldValue"], change[0]["NewValue"]) == ("Submitted", "Unverified")
    assert datetime.fromtimestamp(body["changed_at"], UTC).replace(tzinfo=None) == (
        history_module.parse_time(str(change[0]["Created"]))
    )


def test_hook_signature_fails_with_another_secret(
    hooks: HookListener, manager_client: TrackerClient
) -> None:
    ticket_id = _file_release(manager_client)
    manager_client.set_custom_fields(ticket_id, {"RolloutProgress": "Unverified"})
    hook = hooks.wait_for(_for_ticket(ticket_id, "Unverified"))
    other = "whsec_" + base64.b64encode(b"another-secret-of-24-byte").decode()
    with pytest.raises(Exception, match=r"(?i)signature"):
        Webhook(other).verify(hook.body, hook.headers)


def test_emergency_release_and_actor_are_in_the_hook(
    hooks: HookListener, manager_client: TrackerClient, bridge_client: TrackerClient
) -> None:
    ticket_id = _file_release(manager_client, emergency="Yes")
    bridge_client.set_custom_fields(ticket_id, {"RolloutProgress": "Unverified"})
    body = hooks.wait_for(_for_ticket(ticket_id, "Unverified")).json()
    assert body["emergency"] is True
    assert body["actor"] == "rollout-bridge"  # lets the bridge recognise its own writes


def test_other_field_changes_post_nothing(
    hooks: HookListener, manager_client: TrackerClient
) -> None:
    ticket_id = _file_release(manager_client)
    manager_client.set_custom_fields(ticket_id, {"RepositoryURL": "https://repo/x"})
    manager_client.set_custom_fields(ticket_id, {"RolloutProgress": "Unverified"})
    first = hooks.wait_for(lambda h: h.json()["ticket_id"] == ticket_id)
    assert first.json()["current"] == "Unverified"


@pytest.mark.parametrize("mode", ["fail", "drop"], ids=["bridge-answers-503", "bridge-drops"])
def test_bridge_failure_never_blocks_the_ticket_update(
    mode: str, hooks: HookListener, manager_client: TrackerClient
) -> None:
    ticket_id = _file_release(manager_client)
    hooks.mode = mode
    started = time.monotonic()
    messages = manager_client.set_custom_fields(ticket_id, {"RolloutProgress": "Unverified"})
    took = time.monotonic() - started
    hooks.wait_for(_for_ticket(ticket_id, "Unverified"))
    assert messages == ["RolloutProgress Submitted changed to Unverified"]
    assert manager_client.get_ticket(ticket_id).field("RolloutProgress") == "Unverified"
    assert took < 5, f"the ticket update waited {took:.1f} s for the bridge"


def test_client_operations_read_back(
    rt_sandbox: SandboxInfo, manager_client: TrackerClient, bridge_client: TrackerClient
) -> None:
    ticket_id = _file_release(manager_client)

    ticket = bridge_client.get_ticket(ticket_id)
    assert ticket.queue == "sw-rel"
    assert ticket.rollout_state.label == "Submitted"  # the queue's default value
    assert ticket.field("Sync-Protocol") == "rsync"
    assert ticket.field("AssociatedMajorRelease") == "UMD-5"
    assert [w.name for w in ticket.requestors] == ["provider@example.org"]
    assert bridge_client.round_trips["get_ticket"] == 1

    attachment = bridge_client.download_attachment(ticket_id, "release.xml")
    assert attachment.content == RELEASE_XML
    assert attachment.content_type == "application/xml"
    assert bridge_client.round_trips["download_attachment"] == 2

    bridge_client.update_ticket(
        ticket_id,
        custom_fields={"RolloutProgress": "Unverified", "RepositoryURL": "https://repo/u/1"},
        cc_groups=["sw-rel-qc"],
        admin_cc_groups=["sw-rel-admin"],
        current=ticket,
    )
    assert bridge_client.round_trips["update_ticket"] == 1
    after = manager_client.get_ticket(ticket_id)
    assert after.field("RolloutProgress") == "Unverified"
    assert after.field("RepositoryURL") == "https://repo/u/1"
    assert after.cc_groups() == ("sw-rel-qc",)
    assert after.admin_cc_groups() == ("sw-rel-admin",)

    # Replacing the Cc groups drops the old ones and keeps people added by hand.
    calls = manager_client.total_round_trips()
    assert manager_client.update_ticket(ticket_id, custom_fields={}) == []  # nothing to send
    assert manager_client.total_round_trips() == calls
    with httpx2.Client(auth=(rt_sandbox.root_user, rt_sandbox.root_password)) as http:
        http.put(
            f"{rt_sandbox.rest_url}ticket/{ticket_id}",
            json={"Cc": ["group:sw-rel-qc", "site-admin@example.org"]},
        ).raise_for_status()
    bridge_client.set_watcher_groups(ticket_id, cc=["sw-rel-sr", "sw-rel-early-adopters"])
    after = manager_client.get_ticket(ticket_id)
    assert set(after.cc_groups()) == {"sw-rel-sr", "sw-rel-early-adopters"}
    assert [w.name for w in after.cc if w.kind == "user"] == ["site-admin@example.org"]
    assert after.admin_cc_groups() == ("sw-rel-admin",)

    bridge_client.comment(ticket_id, "Published to unverified/dcache/9.2.1/.")
    bridge_client.reply(ticket_id, "Your release is in production.")
    history = manager_client.transactions_of(ticket_id)
    comments = [t for t in history if t["Type"] == "Comment"]
    replies = [t for t in history if t["Type"] == "Correspond"]
    assert "Published to unverified/dcache/9.2.1/." in _transaction_content(
        rt_sandbox, int(comments[-1]["id"])
    )
    assert "Your release is in production." in _transaction_content(
        rt_sandbox, int(replies[-1]["id"])
    )
    assert comments[-1]["Creator"]["id"] == "rollout-bridge"

    bridge_client.resolve(ticket_id)
    assert manager_client.get_ticket(ticket_id).status == "resolved"


def test_refused_changes_raise_and_change_nothing(
    manager_client: TrackerClient, bridge_client: TrackerClient
) -> None:
    ticket_id = _file_release(manager_client)
    bridge_client.get_ticket(ticket_id)

    with pytest.raises(errors.TrackerRejected, match="Invalid value"):
        bridge_client.set_custom_fields(ticket_id, {"RolloutProgress": "Shipped"})
    with pytest.raises(errors.TrackerRejected, match="no custom field 'RolloutProgres'"):
        bridge_client.set_custom_fields(ticket_id, {"RolloutProgres": "Unverified"})
    with pytest.raises(errors.TrackerRejected, match="no group named 'sw-rel-nobody'"):
        bridge_client.set_watcher_groups(ticket_id, cc=["sw-rel-nobody"])
    with pytest.raises(errors.TrackerNotFound, match=r"no attachment named 'manifest\.xml'"):
        bridge_client.download_attachment(ticket_id, "manifest.xml")
    with pytest.raises(errors.TrackerNotFound):
        bridge_client.get_ticket(987654)
    assert bridge_client.retries.total() == 0  # none of these is worth retrying

    ticket = manager_client.get_ticket(ticket_id)
    assert ticket.field("RolloutProgress") == "Submitted"
    assert ticket.cc == ()


def test_newest_release_xml_wins(
    rt_sandbox: SandboxInfo, manager_client: TrackerClient, bridge_client: TrackerClient
) -> None:
    ticket_id = _file_release(manager_client)
    newer = RELEASE_XML.replace(b"1.2.3", b"1.2.4")
    with httpx2.Client(auth=(rt_sandbox.root_user, rt_sandbox.root_password), timeout=20) as http:
        http.post(
            f"{rt_sandbox.rest_url}ticket/{ticket_id}/comment",
            files=[("Attachments", ("release.xml", newer, "application/xml"))],
            data={"JSON": '{"Content": "corrected release.xml", "ContentType": "text/plain"}'},
        ).raise_for_status()
    downloaded = bridge_client.download_attachment(ticket_id, "release.xml")
    assert downloaded.content == newer
    assert bridge_client.newest_attachment_id(ticket_id, "release.xml") == downloaded.id
    assert bridge_client.newest_attachment_id(ticket_id, "manifest.xml") is None


def test_wrong_token_is_refused_without_leaking_it(rt_sandbox: SandboxInfo) -> None:
    token = "1-37-0000000000000000deadbeefdeadbeef"
    settings = TrackerSettings(url=rt_sandbox.web_url, token=Secret(token), retries=2)
    with TrackerClient(settings) as client, pytest.raises(errors.TrackerAuthFailed) as caught:
        client.get_ticket(1)
    assert "ROLLOUT_RT_TOKEN" in str(caught.value)
    assert token not in str(caught.value) and token not in repr(caught.value)
    assert client.round_trips["get_ticket"] == 1  # 401 is not retried


def test_wrong_password_is_refused_without_leaking_it(rt_sandbox: SandboxInfo) -> None:
    settings = TrackerSettings(
        url=rt_sandbox.web_url, user="root", password=Secret("not-the-password")
    )
    with TrackerClient(settings) as client, pytest.raises(errors.TrackerAuthFailed) as caught:
        client.get_ticket(1)
    assert "not-the-password" not in str(caught.value)
    assert "user 'root'" in str(caught.value)
