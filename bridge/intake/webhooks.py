"""RT's hook, checked: the Standard Webhooks signature, then the payload, to a ``ReleaseRequest``
(a RolloutProgress move, or a change of another field the bridge follows).

Pure: no I/O, no clock (the caller passes ``now``), no logging. Anything wrong is a
``HookRefused`` carrying the HTTP status, a message naming the field and the reason, whether
the hook was correctly signed, and the ticket and transaction ids when they could be read (so
the refusal can be recorded, and commented on the ticket when the hook was signed).

The scheme is Standard Webhooks (what ``standardwebhooks`` implements and RT's scrip sends):
``webhook-signature: v1,<base64 HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>``,
several space-separated signatures allowed (secret rotation), a timestamp within a tolerance
either way. It is re-implemented here, with ``hmac.compare_digest``, because the package's
``verify`` has a fixed 5-minute window, reads the wall clock itself and raises bare
exceptions on a malformed header; the tests check both agree.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from bridge import errors, records

JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_SIGNATURES = 16  # entries of webhook-signature looked at; more is not rotation but abuse
MAX_ID = 2**63 - 1  # ids are BIGINT columns: anything larger could never be stored
MAX_ACTOR = 200  # the jobs.actor column
MAX_VALUE = 1000  # characters of a field value (the jobs table keeps them as text)
MAX_TIME = 2**40  # a changed_at past this is no Unix time of this world
FIELDS = (
    "ticket_id", "transaction_id", "field", "current", "previous", "emergency", "actor",
    "changed_at",
)  # fmt: skip
_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off", ""})


class HookRefused(errors.BridgeError):
    """The hook is refused with HTTP ``status`` for ``reason`` (a sentence for people).

    ``signed`` says the signature was checked and good; ``ticket_id`` / ``transaction_id``
    are the ids the body named, when they could be read (for an unsigned hook: as claimed).
    """

    def __init__(
        self,
        status: int,
        reason: str,
        *,
        signed: bool = False,
        ticket_id: int | None = None,
        transaction_id: int | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.signed = signed
        self.ticket_id = ticket_id
        self.transaction_id = transaction_id
        super().__init__(reason)

    @property
    def needs_comment(self) -> bool:
        """Whether the ticket should be told: only a correctly signed hook naming a ticket.

        An unauthenticated caller must never make the bridge write on a ticket.
        """
        return self.signed and self.ticket_id is not None


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` entry (``v1,<base64>``) for a body, as a sender makes it."""
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` (for senders, tests and benchmarks)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, msg_id, timestamp, body),
    }


class Verifier:
    """Checks Standard Webhooks signatures against one or more keys (receiver-side rotation)."""

    def __init__(self, keys: Sequence[bytes], *, tolerance: float = 300.0) -> None:
        if not keys or not all(keys):
            raise ValueError("at least one non-empty key is needed")
        self._keys = tuple(keys)
        self.tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str], *, now: float) -> str:
        """The ``webhook-id`` of a correctly signed, fresh hook; else ``HookRefused`` (401).

        ``headers`` must answer lower-case names (Starlette's ``Headers`` does, whatever the
        case on the wire). ``now`` is the current Unix time.
        """
        msg_id = headers.get("webhook-id")
        stamp = headers.get("webhook-timestamp")
        signature = headers.get("webhook-signature")
        missing = [
            name
            for name, value in (
                ("webhook-id", msg_id),
                ("webhook-timestamp", stamp),
                ("webhook-signature", signature),
            )
            if not value
        ]
        if missing or msg_id is None or stamp is None or signature is None:
            plural = "s" if len(missing) > 1 else ""
            raise HookRefused(401, f"not signed: missing header{plural} {', '.join(missing)}")
        if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
            raise HookRefused(401, "webhook-timestamp: not a Unix time in whole seconds")
        age = now - int(stamp)
        if age > self.tolerance:
            raise HookRefused(
                401,
                f"webhook-timestamp: too old ({age:.0f} s ago; hooks are accepted for "
                f"{self.tolerance:g} s)",
            )
        if -age > self.tolerance:
            raise HookRefused(
                401,
                f"webhook-timestamp: in the future ({-age:.0f} s ahead; clocks may differ by "
                f"at most {self.tolerance:g} s)",
            )
        offered = _signatures(signature)
        if not offered:
            raise HookRefused(401, "webhook-signature: no v1 signature in the header")
        signed_content = f"{msg_id}.{stamp}.".encode() + body
        for key in self._keys:
            expected = hmac.new(key, signed_content, hashlib.sha256).digest()
            # Constant-time comparisons: the timing says nothing about the expected digest.
            if any(hmac.compare_digest(expected, candidate) for candidate in offered):
                return msg_id
        raise HookRefused(
            401,
            "webhook-signature: does not match (wrong secret, or the body or headers were "
            "changed on the way)",
        )


def _signatures(header: str) -> list[bytes]:
    """The decoded ``v1`` signatures of a header; malformed entries are skipped."""
    found: list[bytes] = []
    for entry in header.split()[:MAX_SIGNATURES]:
        version, _, value = entry.partition(",")
        if version != "v1" or not value:
            continue
        try:  # padding optional: Perl's Digest::SHA leaves it off
            found.append(base64.b64decode(value + "=" * (-len(value) % 4), validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


# -- the payload ------------------------------------------------------------------------------


def media_type(content_type: str | None) -> str:
    """The bare, lower-case media type of a Content-Type header ("" when there is none)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _show(value: object, limit: int = 40) -> str:
    """A value as it may appear in a message: repr, cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def decode_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The fields of a JSON or form-encoded body; ``HookRefused`` 415 / 400 / 422 otherwise.

    JSON must be one object (UTF-8); a form is ``application/x-www-form-urlencoded``. A field
    given twice is refused (which one would count?). Form values stay strings.
    """
    kind = media_type(content_type)
    if kind == JSON_TYPE:
        charset = _charset(content_type)
        if charset not in ("", "utf-8", "utf8"):
            raise HookRefused(415, f"Content-Type: JSON must be UTF-8, not charset {charset!r}")
        return _decode_json(body)
    if kind == FORM_TYPE:
        return _decode_form(body)
    what = f"Content-Type {kind!r} is not supported" if kind else "Content-Type is missing"
    raise HookRefused(415, f"{what}; send {JSON_TYPE} or {FORM_TYPE}")


def _charset(content_type: str | None) -> str:
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return ""


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise HookRefused(422, f"{name}: given more than once")
        result[name] = value
    return result


# What ``json.loads(text, object_pairs_hook=_no_repeats)`` builds on every call, built once.
_DECODER = json.JSONDecoder(object_pairs_hook=_no_repeats)


def _decode_json(body: bytes) -> dict[str, Any]:
    try:
        data = _DECODER.decode(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise HookRefused(400, f"body is not valid JSON: not UTF-8 at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise HookRefused(
            400, f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError):  # e.g. a number of more than 4300 digits, deep nesting
        raise HookRefused(400, "body is not valid JSON: too deeply nested or too long") from None
    if not isinstance(data, dict):
        raise HookRefused(400, f"body must be a JSON object, not {type(data).__name__}")
    return data


def _decode_form(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
        parsed = parse_qs(text, keep_blank_values=True, strict_parsing=False, max_num_fields=50)
    except UnicodeDecodeError as exc:
        raise HookRefused(400, f"form body is not UTF-8 at byte {exc.start}") from None
    except ValueError:
        raise HookRefused(400, "form body has too many fields (at most 50)") from None
    for name, values in parsed.items():
        if len(values) > 1:
            raise HookRefused(422, f"{name}: given more than once")
    return {name: values[0] for name, values in parsed.items()}


def _id(data: Mapping[str, Any], name: str, problems: list[str]) -> int | None:
    value = data.get(name)
    if value is None:
        problems.append(f"{name}: missing")
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        number = int(value)  # form fields are text
    if number is None:
        problems.append(f"{name}: must be a positive integer, got {_show(value)}")
        return None
    if not 0 < number <= MAX_ID:
        problems.append(f"{name}: must be between 1 and {MAX_ID}, got {_show(number)}")
        return None
    return number


def _state(
    data: Mapping[str, Any], name: str, problems: list[str], *, required: bool
) -> records.RolloutState | None:
    if name not in data and required:
        problems.append(f"{name}: missing")
        return None
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        problems.append(f"{name}: must be a RolloutProgress value (a string), got {_show(value)}")
        return None
    try:
        return records.RolloutState.parse(value)
    except ValueError:
        allowed = ", ".join(s.label for s in records.RolloutState)
        problems.append(f"{name}: unknown RolloutProgress value {_show(value)}; allowed: {allowed}")
        return None


def _flag(data: Mapping[str, Any], name: str, problems: list[str]) -> bool:
    value = data.get(name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE:
        return True
    if isinstance(value, str) and value.strip().lower() in _FALSE:
        return False
    problems.append(f"{name}: must be true or false (or yes/no), got {_show(value)}")
    return False


def _actor(data: Mapping[str, Any], name: str, problems: list[str]) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append(f"{name}: must be a user name (a string), got {_show(value)}")
        return ""
    if len(value) > MAX_ACTOR:
        problems.append(f"{name}: longer than {MAX_ACTOR} characters")
        return ""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        problems.append(f"{name}: contains control characters")
        return ""
    return value


def _field(data: Mapping[str, Any], problems: list[str]) -> records.TrackedField | None:
    """The field a hook is about; none named means RolloutProgress (a scrip installed before
    hooks named their field)."""
    value = data.get("field")
    if value is None or value == "":
        return records.TrackedField.ROLLOUT_PROGRESS
    if not isinstance(value, str):
        problems.append(f"field: must be a field name (a string), got {_show(value)}")
        return None
    try:
        return records.TrackedField.parse(value)
    except ValueError as exc:
        problems.append(f"field: {exc}")
        return None


def _value(data: Mapping[str, Any], name: str, problems: list[str], *, required: bool) -> str:
    """A raw field value (another field than RolloutProgress); empty for none."""
    if name not in data and required:
        problems.append(f"{name}: missing")
        return ""
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append(f"{name}: must be a field value (a string), got {_show(value)}")
        return ""
    if len(value) > MAX_VALUE:
        problems.append(f"{name}: longer than {MAX_VALUE} characters")
        return ""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        problems.append(f"{name}: contains control characters")
        return ""
    return value


def _time(data: Mapping[str, Any], name: str, problems: list[str]) -> datetime | None:
    """RT's time of the transaction, a Unix time in seconds, as naive UTC; None when absent."""
    value = data.get(name)
    if value is None or value == "":
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 14:
        number = int(value)
    if number is None or not 0 < number < MAX_TIME:
        problems.append(f"{name}: must be a Unix time in whole seconds, got {_show(value)}")
        return None
    return datetime.fromtimestamp(number, UTC).replace(tzinfo=None)


def parse_fields(data: Mapping[str, Any], *, signed: bool = True) -> records.ReleaseRequest:
    """The request the decoded fields describe; every problem in one ``HookRefused`` (422).

    ``field`` names what changed (``records.TrackedField``); missing or empty means
    RolloutProgress, what the scrip posted before it named fields. For RolloutProgress,
    ``previous`` missing, null or empty means Submitted (as in RT); so does an empty
    ``current`` (someone cleared the field: the workflow decides what that means). For the
    other fields ``current`` and ``previous`` are RT's raw values (empty for none: a value
    removed from a multi-value field has an empty ``current``). ``changed_at`` is RT's time of
    the transaction (Unix seconds), optional. Unknown extra fields are ignored, so the scrip
    may send more later.
    """
    problems: list[str] = []
    ticket_id = _id(data, "ticket_id", problems)
    transaction_id = _id(data, "transaction_id", problems)
    field = _field(data, problems)
    current: records.RolloutState | None = records.RolloutState.SUBMITTED
    previous: records.RolloutState | None = records.RolloutState.SUBMITTED
    new_value = old_value = ""
    if field is records.TrackedField.ROLLOUT_PROGRESS:
        current = _state(data, "current", problems, required=True)
        previous = _state(data, "previous", problems, required=False)
        if current is not None and current is previous:
            problems.append(
                f"current and previous are both {current.label!r}: RolloutProgress did not change"
            )
    elif field is not None:
        before = len(problems)
        new_value = _value(data, "current", problems, required=True)
        old_value = _value(data, "previous", problems, required=False)
        if new_value == old_value and len(problems) == before:
            problems.append(
                f"current and previous are both {new_value!r}: {field.label} did not change"
            )
    emergency = _flag(data, "emergency", problems)
    actor = _actor(data, "actor", problems)
    changed_at = _time(data, "changed_at", problems)
    if problems or ticket_id is None or transaction_id is None:
        raise HookRefused(
            422,
            "; ".join(problems),
            signed=signed,
            ticket_id=ticket_id,
            transaction_id=transaction_id,
        )
    # A problem was reported otherwise.
    assert current is not None and previous is not None and field is not None
    return records.ReleaseRequest(
        ticket_id=ticket_id,
        transaction_id=transaction_id,
        current=current,
        previous=previous,
        emergency=emergency,
        actor=actor,
        source=records.JobSource.HOOK,
        field=field,
        old_value=old_value,
        new_value=new_value,
        changed_at=changed_at,
    )


def claimed_ids(body: bytes, content_type: str | None) -> tuple[int | None, int | None]:
    """The ticket and transaction ids a body names, if any can be read; never raises.

    For the record of a refused hook: for an unsigned one these are only claims.
    """
    try:
        data = decode_body(body, content_type)
    except HookRefused:
        return None, None
    ignored: list[str] = []
    return _id(data, "ticket_id", ignored), _id(data, "transaction_id", ignored)


def accept(
    body: bytes,
    headers: Mapping[str, str],
    verifier: Verifier,
    *,
    now: float,
) -> records.ReleaseRequest:
    """A signed hook's ``ReleaseRequest``; ``HookRefused`` with the status and reason else.

    Order: signature (401), content type (415), body (400), fields (422), ``webhook-id`` equal
    to ``transaction_id`` (400). Only a correctly signed hook gets past the first step, so
    only RT learns what was wrong with its data.
    """
    content_type = headers.get("content-type")
    try:
        msg_id = verifier.verify(body, headers, now=now)
    except HookRefused as refusal:
        refusal.ticket_id, refusal.transaction_id = claimed_ids(body, content_type)
        raise
    try:
        request = parse_fields(decode_body(body, content_type))
    except HookRefused as refusal:
        refusal.signed = True
        raise
    if msg_id != str(request.transaction_id):
        raise HookRefused(
            400,
            f"webhook-id {_show(msg_id)} does not match transaction_id "
            f"{request.transaction_id}; RT's scrip sends the transaction id as webhook-id",
            signed=True,
            ticket_id=request.ticket_id,
            transaction_id=request.transaction_id,
        )
    return request


def too_large(size: int | None, limit: int) -> HookRefused:
    """The refusal of a body over ``limit`` bytes (``size`` when known from Content-Length)."""
    if size is None:
        return HookRefused(413, f"body is larger than the limit of {limit} bytes")
    return HookRefused(413, f"body is {size} bytes; the limit is {limit} bytes")
