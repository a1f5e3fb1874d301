"""The ``Tracker`` seam: what the workflow processor, the refusal commenter and reconciliation
call on RT.

``bridge.tracker.client.TrackerClient`` is the real one, ``bridge.testing.FakeTracker`` the
in-memory one. Declarations only: no behaviour, no HTTP.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from bridge import records
from bridge.tracker import history


class Tracker(Protocol):
    """Read tickets, their attachments and history; change fields; comment and reply.

    Errors are ``bridge.errors.TrackerError`` subclasses: ``TrackerNotFound`` for a ticket
    or attachment that is not there, ``TrackerRejected`` for a change RT refuses,
    ``TrackerUnavailable`` (transient) when RT cannot be reached.
    """

    def get_ticket(self, ticket_id: int) -> records.Ticket: ...

    def newest_attachment_id(self, ticket_id: int, filename: str) -> int | None: ...

    def download_attachment(self, ticket_id: int, filename: str) -> records.Attachment: ...

    def update_ticket(
        self,
        ticket_id: int,
        *,
        custom_fields: Mapping[str, str | Sequence[str]] | None = None,
        cc_groups: Sequence[str] | None = None,
        admin_cc_groups: Sequence[str] | None = None,
        status: str | None = None,
        owner: str | None = None,
        current: records.Ticket | None = None,
    ) -> list[str]: ...

    def comment(self, ticket_id: int, text: str, *, status: str | None = None) -> None: ...

    def reply(self, ticket_id: int, text: str, *, status: str | None = None) -> None: ...

    def transactions_of(self, ticket_id: int) -> list[dict[str, Any]]: ...

    def custom_field_id(self, name: str, queue: str) -> int: ...

    def custom_field_ids(self, names: Sequence[str], queue: str) -> dict[str, int]: ...

    def field_changes_since(
        self,
        watched: history.Watched,
        after_transaction_id: int,
        *,
        queue: str,
        limit: int = 1000,
        page_size: int = 100,
    ) -> list[history.FieldChange]: ...

    def newest_field_change(self, watched: history.Watched, *, queue: str) -> int | None: ...

    def groups_of(self, user: str, *, among: Collection[str] | None = None) -> frozenset[str]:
        """The names of the user-defined RT groups ``user`` is a member of (directly or
        through a nested group), only those of ``among`` when given. ``TrackerNotFound`` for
        a user RT does not know."""
        ...

    def total_round_trips(self) -> int: ...

    def close(self) -> None: ...
