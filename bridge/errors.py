"""The errors of ``bridge``: the root, the ones shared across the package, and a sketch of all.

Hierarchy (classes defined beside the code that raises them are named with their module)::

    BridgeError                      root of everything raised by ``bridge``
    ├── ConfigError                  settings missing or invalid (lists every problem)
    ├── TrackerError                 talking to RT went wrong; carries ``operation``, ``ticket_id``
    │   ├── TrackerUnavailable       transient: timeout, refused connection, 5xx, 429
    │   ├── TrackerBadAnswer         transient: RT (or a proxy) answered something unparseable
    │   ├── TrackerAuthFailed        permanent: 401/403, credentials or rights are wrong
    │   ├── TrackerNotFound          permanent: ticket, attachment, queue... does not exist
    │   └── TrackerRejected          permanent: RT refused the request (400, or a change it ignored)
    ├── SandboxError                 the throw-away RT could not be started or stopped
    ├── store.database.SchemaTooNew  a newer version of the bridge migrated the database
    ├── store.queue.AlreadyQueued    that RT transaction is queued already (``job_id``)
    ├── store.queue.JobNotFound      no job has that id
    ├── store.queue.JobNotRetryable  only failed or dead jobs can be retried by hand
    ├── intake.webhooks.HookRefused  a hook refused with an HTTP ``status`` and a ``reason``
    ├── intake.inbox.InboxClosed     transient: the inbox is not taking hooks (start, shutdown)
    ├── intake.inbox.QueueUnavailable  transient: the commit of a batch of hooks failed
    └── intake.receiver.ReceiverFailed the receiver could not start (e.g. address in use)

``transient`` on an error says whether trying again later may help; retries never look at
message text. Messages never contain credentials.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Root of all errors raised by the ``bridge`` package."""

    transient: bool = False
    # The workflow action that raised it, set by the processor on its way out (for the log).
    failed_action: str | None = None


class ConfigError(BridgeError):
    """The configuration is missing or invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(self.problems))


class TrackerError(BridgeError):
    """Talking to RT failed. ``operation`` names what the bridge was doing."""

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        ticket_id: int | None = None,
        status_code: int | None = None,
        attempts: int = 1,
    ) -> None:
        self.operation = operation
        self.ticket_id = ticket_id
        self.status_code = status_code
        self.attempts = attempts
        where = f"{operation}" + (f" (ticket {ticket_id})" if ticket_id is not None else "")
        tries = f"; tried {attempts} times" if attempts > 1 else ""
        super().__init__(f"{where}: {message}{tries}")


class TrackerUnavailable(TrackerError):
    """RT could not be reached or answered with a server error. Worth retrying later."""

    transient = True


class TrackerBadAnswer(TrackerError):
    """RT's answer could not be understood (not JSON, or not the expected shape)."""

    transient = True


class TrackerAuthFailed(TrackerError):
    """RT refused the bridge's credentials or the account lacks a right."""


class TrackerNotFound(TrackerError):
    """The ticket, attachment or other object does not exist (or is invisible to the bridge)."""


class TrackerRejected(TrackerError):
    """RT refused the request or silently ignored part of it."""


class SandboxError(BridgeError):
    """The sandbox RT could not be set up, started or stopped."""
