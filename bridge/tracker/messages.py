"""The message of one ticket transaction: its plain text and how it reached RT.

Owns reading a transaction's attachments (``/transaction/:id/attachments``, then each body
part's exact bytes from ``/attachment/:id``) into a ``Message``: the text of its inline
``text/plain`` parts, size-limited, and RT's ``X-RT-Interface`` header (``Email`` when the
message came through ``rt-mailgate``). It never interprets the text and makes no workflow
decision.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from bridge.tracker import session

MAX_TEXT_BYTES = 64 * 1024
"""At most this much of a message's text is read (the rest is left out, ``truncated``)."""
MAX_TEXT_PARTS = 3
"""At most this many ``text/plain`` body parts of one message are read."""

_INTERFACE = re.compile(r"^X-RT-Interface:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, kw_only=True)
class Message:
    """One transaction's message as the bridge reads it."""

    transaction_id: int
    interface: str | None  # RT's X-RT-Interface: "Email", "Web", "REST2", … (None: unknown)
    text: str  # the inline text/plain parts, joined by a blank line, at most MAX_TEXT_BYTES
    truncated: bool = False  # the message had more text than was read

    @property
    def by_mail(self) -> bool:
        """The message reached RT as a mail (through ``rt-mailgate``)."""
        return (self.interface or "").lower() == "email"


class TicketMessages(session.TrackerSession):
    """The message reads of ``TrackerClient``."""

    def message(self, ticket_id: int, transaction_id: int) -> Message:
        """The message of transaction ``transaction_id`` of ticket ``ticket_id``: 1 round
        trip for its parts, plus 1 per ``text/plain`` part read (at most ``MAX_TEXT_PARTS``).

        Parts with a file name (attached files, ``release.xml``) are not text of the message.
        Text that is not UTF-8 is read with replacement characters. Raises the tracker's
        errors (``TrackerNotFound`` when the transaction is not there or not visible).
        """

        def fetch() -> Message:
            response = self._rt.session.get(
                self.settings.rest_url + f"transaction/{int(transaction_id)}/attachments",
                params={"fields": "ContentType,ContentLength,Filename,Headers", "per_page": 100},
            )
            if response.status_code != 200:
                raise self._for_status(
                    response.status_code,
                    response.text,
                    {"operation": "message", "ticket_id": ticket_id},
                )
            parts = sorted(response.json()["items"], key=lambda p: int(p["id"]))
            interface = None
            for part in parts:
                found = _INTERFACE.search(str(part.get("Headers") or ""))
                if found:
                    interface = found.group(1)
                    break
            texts: list[bytes] = []
            budget = MAX_TEXT_BYTES
            truncated = False
            for part in [p for p in parts if _is_body_text(p)][:MAX_TEXT_PARTS]:
                if budget <= 0:
                    truncated = True
                    break
                data = self._part_bytes(ticket_id, int(part["id"]))
                truncated = truncated or len(data) > budget
                texts.append(data[:budget])
                budget -= len(texts[-1])
            text = "\n\n".join(t.decode("utf-8", errors="replace") for t in texts)
            return Message(
                transaction_id=int(transaction_id),
                interface=interface,
                text=text,
                truncated=truncated,
            )

        return self._call("message", ticket_id, fetch)

    def _part_bytes(self, ticket_id: int, attachment_id: int) -> bytes:
        response = self._rt.session.get(self.settings.rest_url + f"attachment/{attachment_id}")
        if response.status_code != 200:
            raise self._for_status(
                response.status_code,
                response.text,
                {"operation": "message", "ticket_id": ticket_id},
            )
        # RT sends a part's bytes in base64 (not base64: a bad answer, as for attachments).
        content = str(response.json().get("Content") or "")
        return base64.b64decode("".join(content.split()), validate=True)


def _is_body_text(part: dict[str, Any]) -> bool:
    content_type = str(part.get("ContentType") or "").split(";")[0].strip().lower()
    return content_type == "text/plain" and not part.get("Filename")
