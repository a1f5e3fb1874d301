"""Errors raised by the repository side.

Hierarchy::

    DaemonError                      root of everything raised by ``repo_daemon``
    ├── ProcessingFailed             a job could not be processed; ``transient`` says whether a
    │   │                            later try may help (the runner retries it with backoff)
    │   └── DecisionOutdated         what the job decided was changed by another daemon
    │                                meanwhile: retried at once, deciding afresh
    ├── WorkflowInvalid              a workflow definition cannot be used (lists every problem)
    ├── release_xml.report.ReleaseInvalid release.xml refused (every problem, with line and path)
    ├── sync.errors.SyncError ...        fetching from the provider failed or was refused
    ├── sync.verify.ChecksumMismatch     synced files differ from release.xml (all listed)
    ├── publish.errors.PublishFailed ... publication refused or failed (StorageFailed and
    │                                    AreaBusy are transient; the rest are permanent)
    ├── metadata.errors.MetadataFailed . a metadata tool failed or is missing (transient only
    │                                    on a timeout)
    └── demo.errors.DemoFailed ...       a step of ``rollout demo`` failed

The packages with several error classes (``sync``, ``publish``, ``metadata``, ``demo``) sketch
them in their ``errors`` module; the workflow's handlers raise ``ProcessingFailed`` or let the
domain errors through. ``transient`` on an error decides retries; the runner never reads
message text. Errors raised by ``bridge`` (``bridge.errors``) carry ``transient`` the same way.
Messages never contain credentials.
"""

from __future__ import annotations


class DaemonError(Exception):
    """Root of all errors raised by the ``repo_daemon`` package.

    ``provider_can_fix`` marks failures the technology provider can fix (their release.xml,
    their Sync-URL or server, their files, their ticket's fields): the workflow replies those
    to the provider, not only to the people working on the ticket."""

    transient: bool = False
    provider_can_fix: bool = False
    # A transient error whose retry needs no wait: the next try decides afresh (a race lost).
    retry_at_once: bool = False
    # The workflow action that raised it, set by the processor on its way out (for the log).
    failed_action: str | None = None


class ProcessingFailed(DaemonError):
    """Processing a job failed; ``transient`` is set per instance."""

    def __init__(self, message: str, *, transient: bool, ticket_id: int | None = None) -> None:
        self.transient = transient
        self.ticket_id = ticket_id
        super().__init__(message)


class DecisionOutdated(ProcessingFailed):
    """Another daemon changed what this job's decision rested on after it was made (it took a
    staged-rollout slot first, say). Nothing was done; the job is tried again at once, without
    the backoff, and decides afresh (transient; the retries still count towards the limit)."""

    retry_at_once = True

    def __init__(self, message: str, *, ticket_id: int | None = None) -> None:
        super().__init__(message, transient=True, ticket_id=ticket_id)


class TicketIncomplete(ProcessingFailed):
    """The ticket lacks a field the repository work needs (permanent; the provider fills it
    in)."""

    provider_can_fix = True

    def __init__(self, message: str, *, ticket_id: int | None = None) -> None:
        super().__init__(message, transient=False, ticket_id=ticket_id)


class WorkflowInvalid(DaemonError):
    """A workflow definition cannot be used; ``problems`` lists everything wrong with it."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(f"workflow {source} is invalid:\n  - " + "\n  - ".join(self.problems))
