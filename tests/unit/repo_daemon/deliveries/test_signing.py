"""Outbound signing: the headers verify with the official ``standardwebhooks`` library (each
secret of a rotation alone too), ``X-Hub-Signature-256`` verifies as GitHub documents it, a
wrong secret or a changed body fails, and redaction leaves no signature behind."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
import standardwebhooks

from repo_daemon.deliveries import signing

BODY = json.dumps({"id": "evt_1", "type": "release.production", "data": {"ticket": 7}}).encode()


def _now() -> datetime:
    return datetime.now(UTC)


def _github_ok(secret: str, body: bytes, header: str) -> bool:
    """GitHub's documented check: HMAC-SHA256 hex of the raw body, ``sha256=``, compare_digest."""
    expected = "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def test_a_new_secret_is_whsec_and_32_random_bytes_standardwebhooks_accepts() -> None:
    first, second = signing.new_secret(), signing.new_secret()
    assert first != second
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    standardwebhooks.Webhook(first)  # accepted as it is


def test_the_headers_verify_with_the_official_library() -> None:
    secret = signing.new_secret()
    when = _now()
    headers = signing.headers_for(
        webhook_id="msg_1", timestamp=when, body=BODY, secrets=[secret], github=False
    )
    assert standardwebhooks.Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(int(when.timestamp()))
    assert headers["content-type"] == "application/json"
    assert re.fullmatch(r"rollout-bridge/\d+\.\d+\.\d+\S*", headers["user-agent"])
    assert signing.GITHUB_HEADER not in headers


def test_the_timestamp_is_unix_seconds_whatever_the_zone() -> None:
    secret = signing.new_secret()
    utc = datetime(2026, 5, 1, 12, 0, 30, 900000, tzinfo=UTC)
    elsewhere = utc.astimezone(timezone(timedelta(hours=5, minutes=30)))
    first = signing.headers_for(webhook_id="m", timestamp=utc, body=BODY, secrets=[secret],
                                github=False)  # fmt: skip
    second = signing.headers_for(webhook_id="m", timestamp=elsewhere, body=BODY,
                                 secrets=[secret], github=False)  # fmt: skip
    assert first == second
    assert first["webhook-timestamp"] == str(int(utc.timestamp()))


def test_during_a_rotation_each_secret_alone_verifies_newest_first() -> None:
    new, old = signing.new_secret(), signing.new_secret()
    headers = signing.headers_for(
        webhook_id="msg_2", timestamp=_now(), body=BODY, secrets=[new, old], github=False
    )
    entries = headers["webhook-signature"].split(" ")
    assert len(entries) == 2 and all(e.startswith("v1,") for e in entries)
    for secret in (new, old):
        standardwebhooks.Webhook(secret).verify(BODY, headers)
    only_new = signing.headers_for(
        webhook_id="msg_2", timestamp=datetime.fromtimestamp(
            int(headers["webhook-timestamp"]), UTC), body=BODY, secrets=[new], github=False,
    )  # fmt: skip
    assert entries[0] == only_new["webhook-signature"]


@pytest.mark.parametrize("change", ["secret", "body", "id", "timestamp"])
def test_anything_changed_fails_verification(change: str) -> None:
    secret = signing.new_secret()
    headers = signing.headers_for(
        webhook_id="msg_3", timestamp=_now(), body=BODY, secrets=[secret], github=False
    )
    body = BODY
    if change == "secret":
        secret = signing.new_secret()
    elif change == "body":
        body = BODY.replace(b"7", b"8")
    elif change == "id":
        headers["webhook-id"] = "msg_4"
    else:
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) - 1)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(body, headers)


def test_the_github_header_verifies_as_github_documents_it_with_the_newest_secret() -> None:
    new, old = signing.new_secret(), signing.new_secret()
    headers = signing.headers_for(
        webhook_id="msg_5", timestamp=_now(), body=BODY, secrets=[new, old], github=True
    )
    header = headers[signing.GITHUB_HEADER]
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", header)
    assert _github_ok(new, BODY, header)
    assert not _github_ok(old, BODY, header)
    assert not _github_ok(new, BODY + b" ", header)
    standardwebhooks.Webhook(old).verify(BODY, headers)  # the Standard Webhooks part still there


@pytest.mark.parametrize(
    ("secrets", "timestamp", "message"),
    [
        ([], _now(), "at least one secret"),
        (["whsec_not*base64"], _now(), "secret 1 of 1: hook secret is not whsec_"),
        (["whsec_" + base64.b64encode(b"k" * 32).decode()], datetime(2026, 1, 1), "aware"),
    ],
    ids=["no secret", "not base64", "naive time"],
)
def test_unusable_input_is_refused_without_the_secret(
    secrets: list[str], timestamp: datetime, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        signing.headers_for(
            webhook_id="m", timestamp=timestamp, body=BODY, secrets=secrets, github=True
        )
    assert all(s not in str(caught.value) for s in secrets)


def test_redaction_hides_every_signature_and_credential() -> None:
    new, old = signing.new_secret(), signing.new_secret()
    headers = signing.headers_for(
        webhook_id="msg_6", timestamp=_now(), body=BODY, secrets=[new, old], github=True
    )
    headers |= {"Authorization": "Bearer abc.def", "X-Api-Key": "k-123", "Cookie": "s=1",
                "X-Hub-Signature": "sha1=0123abcd", "X-Other-Signature": "zzz"}  # fmt: skip
    stored = signing.redacted(headers)
    assert stored["webhook-signature"] == "v1,<redacted> v1,<redacted>"
    assert stored["X-Hub-Signature-256"] == "sha256=<redacted>"
    assert stored["X-Hub-Signature"] == "sha1=<redacted>"
    for name in ("Authorization", "X-Api-Key", "Cookie", "X-Other-Signature"):
        assert stored[name] == "<redacted>"
    for name in ("webhook-id", "webhook-timestamp", "content-type", "user-agent"):
        assert stored[name] == headers[name]
    text = json.dumps(stored)
    secret_parts = [new, old, new.removeprefix("whsec_"), old.removeprefix("whsec_")]
    signatures = [e.split(",", 1)[1] for e in headers["webhook-signature"].split()]
    hexdigest = headers["X-Hub-Signature-256"].removeprefix("sha256=")
    for value in [*secret_parts, *signatures, hexdigest, "abc.def", "k-123", "0123abcd"]:
        assert value not in text
    assert headers["webhook-signature"].count("v1,") == 2  # the input is left as it was


def test_a_malformed_signature_entry_is_hidden_whole() -> None:
    assert signing.redacted({"Webhook-Signature": "v1,abc garbage"}) == {
        "Webhook-Signature": "v1,<redacted> <redacted>"
    }
