"""The pure hook checks: Standard Webhooks signatures, and payload -> ReleaseRequest or refusal."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from bridge import records, secrets
from bridge.intake import webhooks
from tests.support import paths

FIXTURES = paths.ROOT / "fixtures"
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef01234567").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another secret, 24 bytes").decode()
KEY = secrets.hook_key(SECRET)
OTHER_KEY = secrets.hook_key(OTHER_SECRET)
NOW = 1_760_000_000
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
ALLOWED = (
    "Submitted, Unverified, InVerification, WaitingForResponse, StageRollout, Deferred, "
    "Production, Rejected, Ignored, NotPublished, Failed, Withdrawn"
)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def headers_for(
    body: bytes, *, msg_id: str = "1234", at: int = NOW, key: bytes = KEY, ctype: str = JSON
) -> dict[str, str]:
    headers = webhooks.signed_headers(key, msg_id, at, body)
    headers["content-type"] = ctype
    return headers


VERIFIER = webhooks.Verifier([KEY], tolerance=300)
GOOD = fixture("webhook_rolloutprogress_unverified.json")


# -- signatures ---------------------------------------------------------------------------------


def _sig(key: bytes, body: bytes = GOOD, msg_id: str = "1234", at: int = NOW) -> str:
    return webhooks.sign(key, msg_id, at, body)


SIGNATURE_CASES: list[Any] = [
    # (id, header changes, body, expected message or None for accepted)
    ("valid", {}, GOOD, None),
    (
        "oldest-accepted",
        {"webhook-timestamp": str(NOW - 300), "webhook-signature": _sig(KEY, at=NOW - 300)},
        GOOD,
        None,
    ),
    (
        "newest-accepted",
        {"webhook-timestamp": str(NOW + 300), "webhook-signature": _sig(KEY, at=NOW + 300)},
        GOOD,
        None,
    ),
    (
        "wrong-secret",
        {"webhook-signature": _sig(OTHER_KEY)},
        GOOD,
        "webhook-signature: does not match (wrong secret, or the body or headers were changed "
        "on the way)",
    ),
    (
        "body-changed",
        {},
        GOOD.replace(b"Unverified", b"Production"),
        "webhook-signature: does not match (wrong secret, or the body or headers were changed "
        "on the way)",
    ),
    (
        "id-changed",
        {"webhook-id": "1235"},
        GOOD,
        "webhook-signature: does not match (wrong secret, or the body or headers were changed "
        "on the way)",
    ),
    (
        "missing-signature",
        {"webhook-signature": None},
        GOOD,
        "not signed: missing header webhook-signature",
    ),
    ("missing-id", {"webhook-id": None}, GOOD, "not signed: missing header webhook-id"),
    (
        "missing-timestamp",
        {"webhook-timestamp": None},
        GOOD,
        "not signed: missing header webhook-timestamp",
    ),
    (
        "missing-all",
        {"webhook-id": None, "webhook-timestamp": None, "webhook-signature": None},
        GOOD,
        "not signed: missing headers webhook-id, webhook-timestamp, webhook-signature",
    ),
    (
        "empty-signature",
        {"webhook-signature": ""},
        GOOD,
        "not signed: missing header webhook-signature",
    ),
    (
        "stale",
        {"webhook-timestamp": str(NOW - 301), "webhook-signature": _sig(KEY, at=NOW - 301)},
        GOOD,
        "webhook-timestamp: too old (301 s ago; hooks are accepted for 300 s)",
    ),
    (
        "future",
        {"webhook-timestamp": str(NOW + 301), "webhook-signature": _sig(KEY, at=NOW + 301)},
        GOOD,
        "webhook-timestamp: in the future (301 s ahead; clocks may differ by at most 300 s)",
    ),
    (
        "timestamp-not-a-number",
        {"webhook-timestamp": "yesterday"},
        GOOD,
        "webhook-timestamp: not a Unix time in whole seconds",
    ),
    (
        "timestamp-fractional",
        {"webhook-timestamp": f"{NOW}.5"},
        GOOD,
        "webhook-timestamp: not a Unix time in whole seconds",
    ),
    (
        "no-v1-entry",
        {"webhook-signature": "v1a," + _sig(KEY).split(",")[1]},
        GOOD,
        "webhook-signature: no v1 signature in the header",
    ),
    (
        "garbage-entries",
        {"webhook-signature": "v1,%%% nonsense v1,"},
        GOOD,
        "webhook-signature: no v1 signature in the header",
    ),
    # Secret rotation on the sender's side: several signatures, one made with our key.
    ("rotation-second-valid", {"webhook-signature": f"{_sig(OTHER_KEY)} {_sig(KEY)}"}, GOOD, None),
    ("rotation-first-valid", {"webhook-signature": f"{_sig(KEY)} {_sig(OTHER_KEY)}"}, GOOD, None),
    (
        "rotation-with-junk",
        {"webhook-signature": f"v1,!!! v2,abc {_sig(OTHER_KEY)} {_sig(KEY)}"},
        GOOD,
        None,
    ),
    (
        "rotation-none-valid",
        {"webhook-signature": f"{_sig(OTHER_KEY)} {_sig(OTHER_KEY, msg_id='1')}"},
        GOOD,
        "webhook-signature: does not match (wrong secret, or the body or headers were changed "
        "on the way)",
    ),
    # Perl's Digest::SHA leaves off base64 padding; the scrip pads, but both are fine.
    ("unpadded-base64", {"webhook-signature": _sig(KEY).rstrip("=")}, GOOD, None),
]


@pytest.mark.parametrize(
    ("changes", "body", "message"),
    [case[1:] for case in SIGNATURE_CASES],
    ids=[case[0] for case in SIGNATURE_CASES],
)
def test_signature(changes: dict[str, str | None], body: bytes, message: str | None) -> None:
    headers: dict[str, str] = headers_for(GOOD)
    for name, value in changes.items():
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
    if message is None:
        assert VERIFIER.verify(body, headers, now=NOW) == headers["webhook-id"]
        return
    with pytest.raises(webhooks.HookRefused) as refused:
        VERIFIER.verify(body, headers, now=NOW)
    assert (refused.value.status, refused.value.reason) == (401, message)
    assert refused.value.signed is False


def test_tolerance_is_configurable() -> None:
    strict = webhooks.Verifier([KEY], tolerance=10)
    headers = headers_for(GOOD, at=NOW - 11)
    with pytest.raises(
        webhooks.HookRefused, match=r"too old \(11 s ago; hooks are accepted for 10 s"
    ):
        strict.verify(GOOD, headers, now=NOW)


def test_receiver_side_rotation_accepts_old_and_new_key() -> None:
    verifier = webhooks.Verifier([OTHER_KEY, KEY], tolerance=300)
    assert verifier.verify(GOOD, headers_for(GOOD, key=KEY), now=NOW) == "1234"
    assert verifier.verify(GOOD, headers_for(GOOD, key=OTHER_KEY), now=NOW) == "1234"


def test_same_scheme_as_the_standardwebhooks_package() -> None:
    library = Webhook(SECRET)
    stamp = datetime.fromtimestamp(NOW, tz=UTC)
    assert library.sign("1234", stamp, GOOD.decode()) == webhooks.sign(KEY, "1234", NOW, GOOD)
    # And the package accepts what we sign (its clock is the real one).
    real_now = int(datetime.now(tz=UTC).timestamp())
    assert library.verify(GOOD, headers_for(GOOD, at=real_now)) == json.loads(GOOD)


def test_message_never_contains_the_secret_or_signature() -> None:
    headers = headers_for(GOOD, key=OTHER_KEY)
    with pytest.raises(webhooks.HookRefused) as refused:
        VERIFIER.verify(GOOD, headers, now=NOW)
    text = str(refused.value)
    assert SECRET not in text and headers["webhook-signature"] not in text
    assert headers["webhook-signature"].split(",")[1] not in text


# -- payloads -------------------------------------------------------------------------------


def _request(**overrides: Any) -> records.ReleaseRequest:
    values: dict[str, Any] = {
        "ticket_id": 42,
        "transaction_id": 1234,
        "current": records.RolloutState.UNVERIFIED,
        "previous": records.RolloutState.SUBMITTED,
        "emergency": False,
        "actor": "root",
        "source": records.JobSource.HOOK,
    }
    values.update(overrides)
    return records.ReleaseRequest(**values)


CHANGED_AT = datetime(2025, 10, 9, 8, 53, 20)  # 1760000000 as naive UTC


def _change(field: str, old: str, new: str, **more: Any) -> records.ReleaseRequest:
    return records.ReleaseRequest.field_change(
        ticket_id=42,
        transaction_id=1234,
        field=records.TrackedField.parse(field),
        old_value=old,
        new_value=new,
        **more,
    )


ACCEPTED_CASES: list[Any] = [
    ("json", fixture("webhook_rolloutprogress_unverified.json"), JSON, _request()),
    ("form", fixture("webhook_rolloutprogress_unverified.form"), FORM, _request()),
    ("json-charset", GOOD, "application/json; charset=UTF-8", _request()),
    (
        "form-charset",
        fixture("webhook_rolloutprogress_unverified.form"),
        FORM + "; charset=utf-8",
        _request(),
    ),
    (
        "emergency",
        fixture("webhook_emergency_production.json"),
        JSON,
        _request(
            ticket_id=43,
            transaction_id=1301,
            current=records.RolloutState.PRODUCTION,
            previous=records.RolloutState.IN_VERIFICATION,
            emergency=True,
            actor="release-manager",
        ),
    ),
    (
        "previous-missing-means-submitted",
        b'{"ticket_id": 42, "transaction_id": 1234, "current": "Unverified", "actor": "root"}',
        JSON,
        _request(),
    ),
    (
        "previous-null-means-submitted",
        b'{"ticket_id": 42, "transaction_id": 1234, "current": "Unverified", "previous": null,'
        b' "actor": "root"}',
        JSON,
        _request(),
    ),
    (
        "empty-current-is-submitted",
        b'{"ticket_id": 42, "transaction_id": 1234, "current": "", "previous": "Unverified",'
        b' "actor": "root"}',
        JSON,
        _request(current=records.RolloutState.SUBMITTED, previous=records.RolloutState.UNVERIFIED),
    ),
    (
        "extra-fields-ignored",
        b'{"ticket_id": 42, "transaction_id": 1234, "current": "Unverified", "actor": "root",'
        b' "queue": "sw-rel"}',
        JSON,
        _request(),
    ),
    (
        "form-emergency-yes",
        b"ticket_id=42&transaction_id=1234&current=Unverified&emergency=Yes&actor=root",
        FORM,
        _request(emergency=True),
    ),
    (
        "form-actor-encoded",
        b"ticket_id=42&transaction_id=1234&current=Unverified&actor=J%C3%BCrgen+M",
        FORM,
        _request(actor="Jürgen M"),
    ),
    (
        "emergency-missing-is-false",
        b'{"ticket_id": 42, "transaction_id": 1234, "current": "Unverified", "actor": "root"}',
        JSON,
        _request(emergency=False),
    ),
    (
        "field-named-rolloutprogress",
        b'{"ticket_id": 42, "transaction_id": 1234, "field": "RolloutProgress", "current": '
        b'"Unverified", "actor": "root", "changed_at": 1760000000}',
        JSON,
        _request(changed_at=CHANGED_AT),
    ),
    (
        "early-adopter-added",
        fixture("webhook_earlyadopters_added.json"),
        JSON,
        _change("EarlyAdopters", "", "desy", actor="site1", changed_at=CHANGED_AT),
    ),
    (
        "early-adopter-removed",
        b'{"ticket_id": 42, "transaction_id": 1234, "field": "EarlyAdopters", "current": "",'
        b' "previous": "desy", "actor": "sr1"}',
        JSON,
        _change("EarlyAdopters", "desy", "", actor="sr1"),
    ),
    (
        "status-resolved",
        fixture("webhook_status_resolved.json"),
        JSON,
        _change("Status", "open", "resolved", actor="manager1", changed_at=CHANGED_AT),
    ),
    (
        "report-form-encoded",
        b"ticket_id=42&transaction_id=1234&field=StageRollout+Report&current=https%3A%2F%2Fwiki"
        b"%2Fr&actor=sr1&changed_at=1760000000",
        FORM,
        _change("StageRollout Report", "", "https://wiki/r", actor="sr1", changed_at=CHANGED_AT),
    ),
    (
        "emergency-set",
        b'{"ticket_id": 42, "transaction_id": 1234, "field": "EmergencyRelease", "current":'
        b' "Yes", "previous": "No", "emergency": true, "actor": "manager1"}',
        JSON,
        _change("EmergencyRelease", "No", "Yes", actor="manager1", emergency=True),
    ),
]


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [case[1:] for case in ACCEPTED_CASES],
    ids=[case[0] for case in ACCEPTED_CASES],
)
def test_accepted_payload(body: bytes, content_type: str, expected: records.ReleaseRequest) -> None:
    headers = headers_for(body, msg_id=str(expected.transaction_id), ctype=content_type)
    assert webhooks.accept(body, headers, VERIFIER, now=NOW) == expected


MAX = 2**63 - 1
REFUSED_CASES: list[Any] = [
    # (id, body, content type, status, message, ticket id recorded)
    (
        "unknown-state",
        fixture("webhook_unknown_state.json"),
        JSON,
        422,
        f"current: unknown RolloutProgress value 'Published'; allowed: {ALLOWED}",
        42,
    ),
    (
        "unknown-previous",
        b'{"ticket_id": 42, "transaction_id": 1234, "current": "Unverified", "previous": "x"}',
        JSON,
        422,
        f"previous: unknown RolloutProgress value 'x'; allowed: {ALLOWED}",
        42,
    ),
    (
        "state-wrong-case",
        b'{"ticket_id": 42, "transaction_id": 1234, "current": "unverified"}',
        JSON,
        422,
        f"current: unknown RolloutProgress value 'unverified'; allowed: {ALLOWED}",
        42,
    ),
    (
        "state-not-a-string",
        b'{"ticket_id": 42, "transaction_id": 1234, "current": 3}',
        JSON,
        422,
        "current: must be a RolloutProgress value (a string), got 3",
        42,
    ),
    (
        "current-missing",
        b'{"ticket_id": 42, "transaction_id": 1234, "previous": "Unverified"}',
        JSON,
        422,
        "current: missing",
        42,
    ),
    (
        "missing-ticket-id",
        fixture("webhook_missing_ticket_id.json"),
        JSON,
        422,
        "ticket_id: missing",
        None,
    ),
    (
        "null-ticket-id",
        b'{"ticket_id": null, "transaction_id": 1234, "current": "Unverified"}',
        JSON,
        422,
        "ticket_id: missing",
        None,
    ),
    (
        "non-integer-transaction-id",
        fixture("webhook_non_integer_transaction_id.json"),
        JSON,
        422,
        "transaction_id: must be a positive integer, got '12x'",
        42,
    ),
    (
        "missing-transaction-id",
        b'{"ticket_id": 42, "current": "Unverified"}',
        JSON,
        422,
        "transaction_id: missing",
        42,
    ),
    (
        "float-ticket-id",
        b'{"ticket_id": 42.0, "transaction_id": 1234, "current": "Unverified"}',
        JSON,
        422,
        "ticket_id: must be a positive integer, got 42.0",
        None,
    ),
    (
        "boolean-ticket-id",
        b'{"ticket_id": true, "transaction_id": 1234, "current": "Unverified"}',
        JSON,
        422,
        "ticket_id: must be a positive integer, got True",
        None,
    ),
    (
        "zero-ticket-id",
        b'{"ticket_id": 0, "transaction_id": 1234, "current": "Unverified"}',
        JSON,
        422,
        f"ticket_id: must be between 1 and {MAX}, got 0",
        None,
    ),
    (
        "ticket-id-too-large-for-the-database",
        b'{"ticket_id": 9223372036854775808, "transaction_id": 1234, "current": "Unverified"}',
        JSON,
        422,
        f"ticket_id: must be between 1 and {MAX}, got 9223372036854775808",
        None,
    ),
    (
        "unchanged",
        fixture("webhook_unchanged_state.json"),
        JSON,
        422,
        "current and previous are both 'Unverified': RolloutProgress did not change",
        42,
    ),
    (
        "both-empty-is-unchanged",
        b'{"ticket_id": 42, "transaction_id": 1234, "current": "", "previous": ""}',
        JSON,
        422,
        "current and previous are both 'Submitted': RolloutProgress did not change",
        42,
    ),
    (
        "bad-emergency",
        fixture("webhook_bad_emergency.json"),
        JSON,
        422,
        "emergency: must be true or false (or yes/no), got 'maybe'",
        42,
    ),
    (
        "actor-not-a-string",
        b'{"ticket_id": 42, "transaction_id": 1234, "current": "Unverified", "actor": 5}',
        JSON,
        422,
        "actor: must be a user name (a string), got 5",
        42,
    ),
    (
        "actor-too-long",
        json.dumps(
            {"ticket_id": 42, "transaction_id": 1234, "current": "Unverified", "actor": "a" * 201}
        ).encode(),
        JSON,
        422,
        "actor: longer than 200 characters",
        42,
    ),
    (
        "actor-control-characters",
        b'{"ticket_id": 42, "transaction_id": 1234, "current": "Unverified", "actor": "a\\u0000"}',
        JSON,
        422,
        "actor: contains control characters",
        42,
    ),
    (
        "several-problems-at-once",
        fixture("webhook_several_problems.json"),
        JSON,
        422,
        f"ticket_id: must be between 1 and {MAX}, got 0; current: unknown RolloutProgress value "
        f"'Deployed'; allowed: {ALLOWED}",
        None,
    ),
    (
        "json-field-twice",
        b'{"ticket_id": 42, "ticket_id": 43, "transaction_id": 1234, "current": "Unverified"}',
        JSON,
        422,
        "ticket_id: given more than once",
        None,
    ),
    (
        "form-field-twice",
        fixture("webhook_repeated_field.form"),
        FORM,
        422,
        "ticket_id: given more than once",
        None,
    ),
    (
        "form-non-integer-ticket",
        b"ticket_id=-5&transaction_id=1234&current=Unverified",
        FORM,
        422,
        "ticket_id: must be a positive integer, got '-5'",
        None,
    ),
    (
        "form-unknown-state",
        b"ticket_id=42&transaction_id=1234&current=Live",
        FORM,
        422,
        f"current: unknown RolloutProgress value 'Live'; allowed: {ALLOWED}",
        42,
    ),
    (
        "form-bad-emergency",
        b"ticket_id=42&transaction_id=1234&current=Unverified&emergency=perhaps",
        FORM,
        422,
        "emergency: must be true or false (or yes/no), got 'perhaps'",
        42,
    ),
    (
        "form-not-utf8",
        b"ticket_id=42&transaction_id=1234&current=Unverified&actor=\xff",
        FORM,
        400,
        "form body is not UTF-8 at byte 58",
        None,
    ),
    (
        "not-json",
        fixture("webhook_not_json.json"),
        JSON,
        400,
        "body is not valid JSON: Expecting ',' delimiter at line 2 column 1",
        None,
    ),
    (
        "empty-body",
        b"",
        JSON,
        400,
        "body is not valid JSON: Expecting value at line 1 column 1",
        None,
    ),
    (
        "not-utf8-json",
        b'{"actor": "\xff"}',
        JSON,
        400,
        "body is not valid JSON: not UTF-8 at byte 11",
        None,
    ),
    (
        "json-not-an-object",
        fixture("webhook_not_an_object.json"),
        JSON,
        400,
        "body must be a JSON object, not list",
        None,
    ),
    (
        "json-deeply-nested",
        b"[" * 100_000 + b"]" * 100_000,
        JSON,
        400,
        "body is not valid JSON: too deeply nested or too long",
        None,
    ),
    (
        "wrong-content-type",
        GOOD,
        "text/plain",
        415,
        "Content-Type 'text/plain' is not supported; send application/json or "
        "application/x-www-form-urlencoded",
        None,
    ),
    (
        "multipart",
        GOOD,
        "multipart/form-data; boundary=x",
        415,
        "Content-Type 'multipart/form-data' is not supported; send application/json or "
        "application/x-www-form-urlencoded",
        None,
    ),
    (
        "no-content-type",
        GOOD,
        "",
        415,
        "Content-Type is missing; send application/json or application/x-www-form-urlencoded",
        None,
    ),
    (
        "unknown-field",
        b'{"ticket_id": 42, "transaction_id": 1234, "field": "Subject", "current": "x"}',
        JSON,
        422,
        "field: unknown field 'Subject'; the bridge follows: RolloutProgress, EarlyAdopters, "
        "StageRollout Report, EmergencyRelease, Status",
        42,
    ),
    (
        "field-not-a-string",
        b'{"ticket_id": 42, "transaction_id": 1234, "field": 7, "current": "x"}',
        JSON,
        422,
        "field: must be a field name (a string), got 7",
        42,
    ),
    (
        "field-value-missing",
        b'{"ticket_id": 42, "transaction_id": 1234, "field": "EarlyAdopters"}',
        JSON,
        422,
        "current: missing",
        42,
    ),
    (
        "field-value-not-text",
        b'{"ticket_id": 42, "transaction_id": 1234, "field": "EarlyAdopters", "current": ["a"]}',
        JSON,
        422,
        "current: must be a field value (a string), got ['a']",
        42,
    ),
    (
        "field-value-with-control-characters",
        b'{"ticket_id": 42, "transaction_id": 1234, "field": "StageRollout Report",'
        b' "current": "a\\u0000b"}',
        JSON,
        422,
        "current: contains control characters",
        42,
    ),
    (
        "field-value-too-long",
        b'{"ticket_id": 42, "transaction_id": 1234, "field": "StageRollout Report", "current": "'
        + b"x" * 1001
        + b'"}',
        JSON,
        422,
        "current: longer than 1000 characters",
        42,
    ),
    (
        "field-value-unchanged",
        b'{"ticket_id": 42, "transaction_id": 1234, "field": "EmergencyRelease", "current": "No",'
        b' "previous": "No"}',
        JSON,
        422,
        "current and previous are both 'No': EmergencyRelease did not change",
        42,
    ),
    (
        "changed-at-not-a-time",
        b'{"ticket_id": 42, "transaction_id": 1234, "current": "Unverified", "changed_at": "now"}',
        JSON,
        422,
        "changed_at: must be a Unix time in whole seconds, got 'now'",
        42,
    ),
    (
        "json-in-latin1",
        GOOD,
        "application/json; charset=latin-1",
        415,
        "Content-Type: JSON must be UTF-8, not charset 'latin-1'",
        None,
    ),
]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message", "ticket_id"),
    [case[1:] for case in REFUSED_CASES],
    ids=[case[0] for case in REFUSED_CASES],
)
def test_refused_payload(
    body: bytes, content_type: str, status: int, message: str, ticket_id: int | None
) -> None:
    headers = headers_for(body, ctype=content_type)
    if not content_type:
        del headers["content-type"]
    with pytest.raises(webhooks.HookRefused) as refused:
        webhooks.accept(body, headers, VERIFIER, now=NOW)
    assert (refused.value.status, refused.value.reason) == (status, message)
    assert refused.value.signed is True
    assert refused.value.ticket_id == ticket_id
    # Only a signed hook that names a ticket makes the bridge comment on it.
    assert refused.value.needs_comment is (ticket_id is not None)


def test_webhook_id_must_be_the_transaction_id() -> None:
    headers = headers_for(GOOD, msg_id="999")
    with pytest.raises(webhooks.HookRefused) as refused:
        webhooks.accept(GOOD, headers, VERIFIER, now=NOW)
    assert refused.value.status == 400
    assert refused.value.reason == (
        "webhook-id '999' does not match transaction_id 1234; RT's scrip sends the transaction "
        "id as webhook-id"
    )
    assert (refused.value.signed, refused.value.ticket_id, refused.value.transaction_id) == (
        True,
        42,
        1234,
    )
    assert refused.value.needs_comment is True


def test_signature_is_checked_before_the_data() -> None:
    """An unsigned caller learns nothing about the data, and can never cause a comment."""
    body = fixture("webhook_unknown_state.json")
    headers = headers_for(body, key=OTHER_KEY, msg_id="1235")
    with pytest.raises(webhooks.HookRefused) as refused:
        webhooks.accept(body, headers, VERIFIER, now=NOW)
    assert refused.value.status == 401
    assert refused.value.signed is False
    # The ids it claims are kept for the record, but never lead to a comment.
    assert (refused.value.ticket_id, refused.value.transaction_id) == (42, 1235)
    assert refused.value.needs_comment is False


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (GOOD, JSON, (42, 1234)),
        (fixture("webhook_rolloutprogress_unverified.form"), FORM, (42, 1234)),
        (b"not json", JSON, (None, None)),
        (GOOD, "text/plain", (None, None)),
        (b'{"ticket_id": "x", "transaction_id": 7}', JSON, (None, 7)),
    ],
    ids=["json", "form", "not-json", "wrong-type", "bad-ticket"],
)
def test_claimed_ids(
    body: bytes, content_type: str, expected: tuple[int | None, int | None]
) -> None:
    assert webhooks.claimed_ids(body, content_type) == expected


def test_too_large_messages() -> None:
    known, unknown = webhooks.too_large(70000, 65536), webhooks.too_large(None, 65536)
    assert known.reason == "body is 70000 bytes; the limit is 65536 bytes"
    assert unknown.reason == "body is larger than the limit of 65536 bytes"
    assert known.status == unknown.status == 413
