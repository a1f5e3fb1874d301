"""The tracker's session: python-rt's REST2 client on our HTTP session, with retries and counts.

Owns building the client from ``TrackerSettings``, running each operation through
``http.Retrying`` and counting its round trips and retries, and the PUT that keeps RT's
messages. It offers no ticket operation itself (``client.TrackerClient`` does) and must not
make workflow decisions.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Self, TypeVar

import httpx2
import rt.rest2

from bridge import errors
from bridge.settings import model as settings_model
from bridge.tracker import http

T = TypeVar("T")


class TrackerSession:
    """A session on RT's REST2 API for one thread. Build one from ``TrackerSettings``.

    ``transport`` replaces the HTTP transport (tests use an httpx2 mock transport);
    ``sleep`` and ``jitter`` make backoff testable. ``round_trips`` counts HTTP requests per
    operation (retries included), ``retries`` the retries per operation.
    """

    def __init__(
        self,
        settings: settings_model.TrackerSettings,
        *,
        transport: httpx2.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.round_trips: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self._operation = "unknown"
        self._last_content_type = ""
        self._group_names: dict[str, str] = {}
        self._fields_seen: dict[int, frozenset[str]] = {}
        self._field_ids: dict[tuple[str, str], int] = {}
        self._errors = http.ErrorMapping(settings)
        self._retrying = http.Retrying(settings, self._errors, sleep=sleep, jitter=jitter)
        try:
            self._rt = rt.rest2.Rt(settings.rest_url, http_timeout=None)
        except ValueError as exc:
            raise errors.ConfigError([f"rt_url: {exc}"]) from exc
        self._rt.session.close()
        self._rt.session = http.rest_session(
            settings,
            transport=transport,
            event_hooks={"request": [self._count_request], "response": [self._note_response]},
        )

    # -- plumbing -------------------------------------------------------------------------

    def _count_request(self, request: httpx2.Request) -> None:
        self.round_trips[self._operation] += 1

    def _note_response(self, response: httpx2.Response) -> None:
        self._last_content_type = response.headers.get("content-type", "")

    def close(self) -> None:
        """Close the HTTP connections."""
        self._rt.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def total_round_trips(self) -> int:
        """All HTTP requests this client has made."""
        return sum(self.round_trips.values())

    def _call(
        self,
        operation: str,
        ticket_id: int | None,
        fn: Callable[[], T],
        *,
        idempotent: bool = True,
    ) -> T:
        """Run ``fn`` as ``operation`` with ``http.Retrying`` (see there), counting it."""

        def start_attempt() -> None:
            self._operation = operation

        def count_retry() -> None:
            self.retries[operation] += 1

        return self._retrying.call(
            operation,
            ticket_id,
            fn,
            idempotent=idempotent,
            content_type=lambda: self._last_content_type,
            on_attempt=start_attempt,
            on_retry=count_retry,
        )

    def _for_status(self, status: int, body: str, kw: dict[str, Any]) -> errors.TrackerError:
        return self._errors.for_status(status, body, kw)

    def _put(self, path: str, body: Mapping[str, Any], ticket_id: int | None) -> list[str]:
        """PUT through the session, keeping the messages python-rt's edit_ticket drops."""
        response = self._rt.session.put(self.settings.rest_url + path, json=dict(body))
        if response.status_code != 200:
            raise self._for_status(
                response.status_code,
                response.text,
                {"operation": self._operation, "ticket_id": ticket_id},
            )
        answer = response.json()
        if not isinstance(answer, list) or not all(isinstance(m, str) for m in answer):
            raise TypeError(f"expected a list of messages, got {type(answer).__name__}")
        return answer
