"""``POST /hooks/rt`` as a bare ASGI endpoint: read the body under its cap, check it with
``webhooks``, store it through the group-commit ``inbox.Inbox``, answer once it is durable.

The receiver (``receiver.create_app``) sends every ``POST /hooks/rt`` here directly, before
FastAPI's middleware, routing and dependency machinery: on this path that machinery cost more
CPU than the check and the store together, and it added nothing (no dependencies, no model
validation; the body is checked by ``webhooks``). The FastAPI route stays for the OpenAPI
document and for an app mounted under a ``root_path``, and answers through ``answer`` too, so
both give the same bytes. Refusals are answered ``{"error": ...}`` and recorded by the
rate-limited ``inbox.RefusalRecorder``. It holds no parsing rules and no SQL; it never logs a
secret, a signature or a header.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from bridge.intake import inbox, intake_metrics, webhooks

logger = logging.getLogger(__name__)

RECORD_WAIT = 5.0  # seconds a refusal's answer waits for its record

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON_HEADER = (b"content-type", b"application/json")


class ClientGone(Exception):
    """The client hung up before its body was complete."""


@dataclass(frozen=True, kw_only=True)
class Answer:
    """What ``POST /hooks/rt`` answers: the status, the JSON body (as Starlette's
    ``JSONResponse`` renders it) and any extra headers (e.g. ``Retry-After``)."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def json_answer(status: int, content: dict[str, Any], **headers: str) -> Answer:
    """An ``Answer`` with ``content`` rendered exactly like Starlette's ``JSONResponse``."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Answer(status=status, body=body.encode("utf-8"), headers=tuple(headers.items()))


def problem(status: int, message: str, **headers: str) -> Answer:
    """A refusal's answer: ``{"error": message}``."""
    return json_answer(status, {"error": message}, **headers)


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name; the first of a repeated header counts (as
    with Starlette's ``Headers.get``)."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1").lower()
        if key not in found:
            found[key] = value.decode("latin-1")
    return found


def _remote(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown address"


async def read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    """The body, refused (413) past ``limit`` bytes: by Content-Length before reading, and by
    counting while reading, so a client that lies or sends chunks cannot get more in. Raises
    ``ClientGone`` when the client disconnects first."""
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise webhooks.HookRefused(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise webhooks.too_large(int(declared), limit)
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            body += chunk
            if len(body) > limit:
                raise webhooks.too_large(None, limit)
        if not message.get("more_body", False):
            return bytes(body)


class HookEndpoint:
    """``POST /hooks/rt``: ``answer`` computes the answer, calling it as an ASGI app sends it."""

    def __init__(
        self,
        *,
        verifier: webhooks.Verifier,
        limit: int,
        hooks: inbox.Inbox,
        refusals: inbox.RefusalRecorder,
        counts: intake_metrics.IntakeMetrics,
        clock: Callable[[], float],
    ) -> None:
        self._verifier = verifier
        self._limit = limit
        self._hooks = hooks
        self._refusals = refusals
        self._counts = counts
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = await self.answer(scope, receive)
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
        headers.append((b"content-length", str(len(answer.body)).encode("ascii")))
        headers.append(_JSON_HEADER)
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    async def answer(self, scope: Scope, receive: Receive) -> Answer:
        """Read, check and store the hook of this request; its answer (202 stored, 200 stored
        before, 4xx refused and recorded, 503 when the queue cannot take it)."""
        headers = _headers(scope)
        try:
            body = await read_body(receive, headers, self._limit)
            hook = webhooks.accept(body, headers, self._verifier, now=self._clock())
        except webhooks.HookRefused as refusal:
            return await self._refuse(refusal, _remote(scope))
        except ClientGone:
            # Gone before its body was complete: nobody to answer. The server's connection
            # guard logs it (one line per interval), not a traceback per client.
            self._counts.count_refused(400)
            return problem(400, "the client hung up before its body was complete")
        try:
            stored = await self._hooks.submit_async(hook)
        except (inbox.InboxClosed, inbox.QueueUnavailable) as exc:
            self._counts.count_refused(503)
            return problem(503, str(exc), **{"Retry-After": "5"})
        self._counts.count_accepted(created=stored.created)
        # What json_answer makes of {"job_id": N, "status": ...}, without the JSON encoder.
        if stored.created:
            return Answer(status=202, body=b'{"job_id":%d,"status":"queued"}' % stored.job_id)
        return Answer(status=200, body=b'{"job_id":%d,"status":"duplicate"}' % stored.job_id)

    async def _refuse(self, refusal: webhooks.HookRefused, remote: str) -> Answer:
        self._counts.count_refused(refusal.status)
        who = "signed by RT" if refusal.signed else "signature not verified"
        future = self._refusals.record(
            signed=refusal.signed,
            ticket_id=refusal.ticket_id,
            transaction_id=refusal.transaction_id,
            http_status=refusal.status,
            reason=refusal.reason,
            caller=f"{remote}; {who}",
            needs_comment=refusal.needs_comment,
        )
        if future is not None:
            # A failure to record is logged by the recorder; the refusal stands either way.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), RECORD_WAIT)
        return problem(refusal.status, refusal.reason)
