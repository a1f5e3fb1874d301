"""Signing an outbound webhook: the Standard Webhooks headers (made by the official
``standardwebhooks`` package) and, where a subscription asks for it, GitHub's
``X-Hub-Signature-256``; and the same headers redacted, as a delivery attempt stores them.

Pure: no I/O, no clock (the caller passes the timestamp), no logging. It never decides what is
sent or where; secrets come in as arguments and never appear in an error message.

**Standard Webhooks** (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``): each
secret is ``whsec_`` + base64 of the HMAC key; the signature is
``v1,<base64 HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>``. During a secret
rotation's overlap the header carries one ``v1,…`` per secret, space-separated, newest first,
so a receiver configured with either secret verifies the delivery
(``standardwebhooks.Webhook(secret).verify(body, headers)``).

**GitHub-compatible** (``X-Hub-Signature-256: sha256=<hex>``): the hex HMAC-SHA256 of the raw
body, keyed with the *whole secret string exactly as the user was shown it* — ``whsec_``
prefix included, as UTF-8 bytes, not base64-decoded — and with the newest secret only (GitHub
has no rotation). That is what a GitHub-style receiver configures as its "webhook secret", and
it checks a delivery with nothing but the standard library::

    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(expected, headers["X-Hub-Signature-256"])
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _random
from collections.abc import Mapping, Sequence
from datetime import datetime

import standardwebhooks

import bridge
from bridge import secrets as bridge_secrets

SECRET_BYTES = 32
"""Random bytes in a new subscription secret."""
USER_AGENT = f"rollout-bridge/{bridge.__version__}"
GITHUB_HEADER = "X-Hub-Signature-256"
REDACTED = "<redacted>"

# Header names (lower case) whose whole value is a credential of some kind.
_CREDENTIAL_WORDS = ("authorization", "cookie", "token", "secret", "password", "api-key", "apikey")


def new_secret() -> str:
    """A fresh subscription secret: ``whsec_`` + base64 of 32 random bytes (what
    ``standardwebhooks.Webhook`` accepts). Shown to the user once."""
    return bridge_secrets.HOOK_SECRET_PREFIX + base64.b64encode(
        _random.token_bytes(SECRET_BYTES)
    ).decode("ascii")


def headers_for(
    *,
    webhook_id: str,
    timestamp: datetime,
    body: bytes,
    secrets: Sequence[str],
    github: bool,
) -> dict[str, str]:
    """The request headers of one delivery attempt of ``body``.

    ``secrets`` are the subscription's ``whsec_`` secrets, newest first (two during a
    rotation's overlap); each adds one ``v1,…`` signature. ``timestamp`` must be timezone-aware
    (``webhook-timestamp`` is its Unix time in whole seconds). With ``github`` the
    ``X-Hub-Signature-256`` header is added, keyed with ``secrets[0]`` (see the module's
    docstring for the key). Raises ``ValueError`` (naming no secret) when there is no secret,
    a secret is not ``whsec_`` + base64, or the timestamp is naive.
    """
    if not secrets:
        raise ValueError("a delivery needs at least one secret to be signed with")
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        raise ValueError("the delivery's timestamp must be timezone-aware")
    signatures = []
    for number, secret in enumerate(secrets, start=1):
        try:
            key = bridge_secrets.hook_key(secret)
        except ValueError as exc:
            raise ValueError(f"secret {number} of {len(secrets)}: {exc}") from None
        signatures.append(standardwebhooks.Webhook(key).sign(webhook_id, timestamp, body))
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    if github:
        digest = hmac.new(secrets[0].encode("utf-8"), body, hashlib.sha256).hexdigest()
        headers[GITHUB_HEADER] = "sha256=" + digest
    return headers


def redacted(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` as a delivery attempt row keeps them: every signature replaced by a marker
    that keeps its scheme (``v1,<redacted>`` once per signature, ``sha256=<redacted>``), and
    the value of anything that looks like a credential (authorization, cookies, tokens,
    secrets, passwords, API keys) replaced by ``<redacted>``. Names keep their case."""
    result = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower == "webhook-signature":
            result[name] = " ".join(_redact_entry(entry) for entry in value.split())
        elif lower.startswith("x-hub-signature"):
            result[name] = f"{value.split('=', 1)[0]}={REDACTED}" if "=" in value else REDACTED
        elif "signature" in lower or any(word in lower for word in _CREDENTIAL_WORDS):
            result[name] = REDACTED
        else:
            result[name] = value
    return result


def _redact_entry(entry: str) -> str:
    """One ``webhook-signature`` entry with its signature gone (its version kept)."""
    version, comma, _signature = entry.partition(",")
    return f"{version},{REDACTED}" if comma else REDACTED
