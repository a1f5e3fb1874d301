"""Secrets: the ``Secret`` type, Standard Webhooks ``whsec_`` hook secrets, and redaction.

The one place that makes a new hook secret, decodes one to its HMAC key and checks one, and the
one way to mask secrets in text and credentials in URLs before they reach a message or a log.
It must not read settings, files or the environment: callers pass the values in.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets as _random
from collections.abc import Iterable
from urllib.parse import urlsplit

HOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - the scheme's prefix, not a secret
MIN_HOOK_KEY_BYTES = 16
NEW_HOOK_KEY_BYTES = 24
MASK = "********"


class Secret:
    """A secret string that hides itself in ``repr``/``str``; call ``reveal()`` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself. Only pass it to the thing that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# -- Standard Webhooks secrets ------------------------------------------------------------------


def new_hook_secret() -> str:
    """A fresh Standard Webhooks secret (``whsec_`` + base64 of 24 random bytes)."""
    return HOOK_SECRET_PREFIX + base64.b64encode(_random.token_bytes(NEW_HOOK_KEY_BYTES)).decode(
        "ascii"
    )


def _decode(body: str) -> bytes:
    """Base64 with optional padding (Perl's Digest::SHA leaves it off)."""
    return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)


def hook_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (padding optional).

    Raises ``ValueError`` (without the secret in it) when the rest is not base64 or is empty.
    """
    body = secret.strip().removeprefix(HOOK_SECRET_PREFIX)
    try:
        key = _decode(body)
    except (binascii.Error, ValueError):
        raise ValueError("hook secret is not whsec_ followed by base64") from None
    if not key:
        raise ValueError("hook secret is empty")
    return key


def hook_secret_problems(secret: Secret) -> list[str]:
    """What is wrong with a configured hook secret (``whsec_`` + base64 of at least 16
    bytes), as settings problems; empty when it is usable."""
    body = secret.reveal().removeprefix(HOOK_SECRET_PREFIX)
    try:
        key = _decode(body)
    except (binascii.Error, ValueError):
        return ["hook_secret: not base64 (expected whsec_ followed by base64)"]
    if len(key) < MIN_HOOK_KEY_BYTES:
        return [
            "hook_secret: too short; use at least 16 random bytes "
            "(`rollout tracker sandbox up` makes one)"
        ]
    return []


# -- redaction ------------------------------------------------------------------------------------


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``********`` (longest first, so a secret that
    contains another is masked whole)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text


def redact_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def snippet(text: str, secrets: Iterable[str], limit: int = 200) -> str:
    """A short, single-line excerpt of ``text`` (HTML tags dropped) with any secret masked."""
    flat = redact(" ".join(re.sub(r"<[^>]+>", " ", text).split()), secrets)
    return flat[:limit] + ("…" if len(flat) > limit else "")
