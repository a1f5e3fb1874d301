"""What is recorded of a failed job: its message, with every secret of the settings masked and
what no database could store escaped, and whether it is transient (``describe_error``); the
secrets to mask (``secrets_of``).

Pure: it records nothing itself (the runner does) and decides no retry (the retry policy does).
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from bridge import errors
from bridge import secrets as bridge_secrets
from bridge.settings import model as settings_model
from bridge.store import text
from repo_daemon import errors as daemon_errors


def secrets_of(settings: settings_model.Settings) -> list[str]:
    """Every secret value in ``settings``, to mask in recorded error messages."""
    found = [
        s.reveal()
        for s in (settings.tracker.token, settings.tracker.password, settings.hook_secret)
        if s is not None
    ]
    if settings.database_url is not None:
        url = settings.database_url.reveal()
        found.append(url)
        try:
            password = sa.make_url(url).password
        except sa.exc.ArgumentError:
            password = None
        if password:
            found.append(str(password))
    return [s for s in found if s]


def describe_error(exc: BaseException, secrets: Iterable[str] = ()) -> tuple[str, bool]:
    """The message to record for ``exc`` and whether it is transient.

    Our own errors say themselves whether they are transient; anything else (a bug, a library
    error nobody wrapped) counts as transient, so it is retried and finally dead-lettered
    rather than dropped. The message names the exception type; secrets are masked, and what
    no database could store (bytes of a name that were not UTF-8) is escaped.
    """
    if isinstance(exc, errors.BridgeError | daemon_errors.DaemonError):
        transient = bool(exc.transient)
        kind = type(exc).__name__
    else:
        transient = True
        kind = f"unexpected {type(exc).__name__}"
    return text.storable(bridge_secrets.redact(f"{kind}: {exc}", secrets), None), transient
