"""The HTTP receiver of RT's scrip: ``POST /hooks/rt``, ``GET /healthz``, ``GET /readyz``.

``create_app`` wires the pieces: the hook itself is ``hook_endpoint.HookEndpoint`` (read the
body under a size cap, check it with ``webhooks``, store it through the group-commit
``inbox.Inbox``, answer 202 only once it is durable; refusals answered with ``{"error": ...}``
and recorded by the rate-limited ``inbox.RefusalRecorder``), reached before FastAPI's stack;
the app holds the writers, the health checks, the OpenAPI document and the routers beside.
``build_server`` / ``serve`` run it on uvicorn (httptools, uvloop); ``rollout serve`` and
``rollout run`` start it. It holds no parsing rules and no SQL; it never logs a secret, a
signature or a header.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any, Literal

import pydantic
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from bridge import errors, secrets
from bridge.intake import connections, hook_endpoint, inbox, intake_metrics, webhooks
from bridge.settings import model as settings_model
from bridge.store import queue as jobqueue

logger = logging.getLogger(__name__)

HOOK_PATH = "/hooks/rt"
NO_SECRET = "hook_secret is not set (ROLLOUT_HOOK_SECRET or ROLLOUT_HOOK_SECRET_FILE)"  # noqa: S105
READY_TIMEOUT = 5.0  # seconds /readyz waits for the database


class ReceiverFailed(errors.BridgeError):
    """The receiver could not start (e.g. the address is in use)."""


# -- what the API speaks (for the OpenAPI document; parsing itself is in ``webhooks``) -------


class HookBody(pydantic.BaseModel):
    """What RT's scrip posts (JSON, or the same fields form-encoded)."""

    ticket_id: int = pydantic.Field(gt=0, description="The RT ticket.")
    transaction_id: int = pydantic.Field(gt=0, description="RT's transaction; also webhook-id.")
    field: str = pydantic.Field(
        "RolloutProgress",
        description="What changed: RolloutProgress, EarlyAdopters, StageRollout Report, "
        "EmergencyRelease or Status (the ticket's status); missing means RolloutProgress.",
    )
    current: str = pydantic.Field(
        description="The new value (for a multi-value field, the value added; empty when one "
        "was removed)."
    )
    previous: str = pydantic.Field(
        "", description="The old value (the value removed); for RolloutProgress empty means "
        "Submitted."
    )  # fmt: skip
    emergency: bool = pydantic.Field(False, description="EmergencyRelease is Yes.")
    actor: str = pydantic.Field("", description="The RT user who made the change.")
    changed_at: int | None = pydantic.Field(
        None, gt=0, description="RT's time of the transaction, Unix seconds."
    )


class Accepted(pydantic.BaseModel):
    """The hook is stored (202 ``queued``), or was stored before (200 ``duplicate``)."""

    job_id: int
    status: Literal["queued", "duplicate"]


class Problem(pydantic.BaseModel):
    """Why the hook was refused, or why the receiver cannot take it now."""

    error: str


_HOOK_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            webhooks.JSON_TYPE: {"schema": HookBody.model_json_schema()},
            webhooks.FORM_TYPE: {"schema": HookBody.model_json_schema()},
        },
    },
    "parameters": [
        {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    ],
}
_HOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Accepted, "description": "Already queued (same transaction_id)."},
    202: {"model": Accepted, "description": "Stored durably; the daemon will process it."},
    400: {"model": Problem, "description": "Not JSON, or webhook-id is not transaction_id."},
    401: {"model": Problem, "description": "Unsigned, badly signed or stale."},
    413: {"model": Problem, "description": "Body over the size limit."},
    415: {"model": Problem, "description": "Not JSON or form-encoded."},
    422: {"model": Problem, "description": "A field is missing or invalid."},
    503: {"model": Problem, "description": "The queue database is unavailable."},
}


def require_secret(settings: settings_model.Settings) -> bytes:
    """The HMAC key of the hook secret; ``ConfigError`` when there is none (or it is unusable)."""
    secret = settings.receiver.hook_secret
    if secret is None:
        raise errors.ConfigError([NO_SECRET])
    try:
        return secrets.hook_key(secret.reveal())
    except ValueError as exc:
        raise errors.ConfigError([f"hook_secret: {exc}"]) from None


def _problem(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


class _ReceiverApp(FastAPI):
    """FastAPI, with ``POST /hooks/rt`` sent straight to its ``HookEndpoint`` (see there why)."""

    hook: hook_endpoint.HookEndpoint | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.hook is not None
            and scope["type"] == "http"
            and scope["path"] == HOOK_PATH
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            await self.hook(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: settings_model.Settings,
    queue: jobqueue.Queue,
    *,
    clock: Callable[[], float] = time.time,
    max_batch: int = 256,
    freeze_gc: bool = False,
    routers: Sequence[APIRouter] = (),
    metrics: intake_metrics.IntakeMetrics | None = None,
) -> FastAPI:
    """The receiver as an ASGI app. Its lifespan starts and stops the writer threads.

    ``routers`` are mounted beside the hook (the repository side's API, e.g. the audit feed:
    composed by ``repo_daemon.daemon.assemble``, which this package never imports).

    ``freeze_gc`` moves everything alive at start-up out of the garbage collector's sight
    (``gc.freeze``): a full collection over the ~100,000 long-lived objects of SQLAlchemy,
    FastAPI and pydantic otherwise stalls every request for 30-50 ms now and then. It is
    process-wide, so only servers (``build_server``) turn it on. Raises ``ConfigError`` when
    no hook secret is configured. Hooks accepted and refused are counted in ``metrics`` (the
    process's ``intake_metrics.INTAKE`` unless given).
    """
    counts = metrics if metrics is not None else intake_metrics.INTAKE
    verifier = webhooks.Verifier(
        [require_secret(settings)], tolerance=settings.receiver.hook_tolerance
    )
    limit = settings.receiver.max_body_bytes
    hooks = inbox.Inbox(queue, max_batch=max_batch)
    refusals = inbox.RefusalRecorder(queue)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        hooks.start()
        refusals.start()
        if freeze_gc:
            gc.collect()
            gc.freeze()
        logger.info("receiving hooks at %s", HOOK_PATH)
        try:
            yield
        finally:
            await asyncio.to_thread(hooks.close)
            await asyncio.to_thread(refusals.close)
            logger.info(
                "hook writer stopped: %d hooks stored in %d commits (largest %d)",
                hooks.stored,
                hooks.commits,
                hooks.largest_batch,
            )

    app = _ReceiverApp(
        title="Rollout bridge receiver",
        summary="Takes RT's hooks (the ticket changes the bridge follows) into the durable queue.",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.inbox = hooks
    app.state.refusals = refusals
    for extra in routers:
        app.include_router(extra)

    endpoint = hook_endpoint.HookEndpoint(
        verifier=verifier, limit=limit, hooks=hooks, refusals=refusals, counts=counts, clock=clock
    )
    app.hook = endpoint

    @app.post(
        HOOK_PATH,
        status_code=202,
        response_model=Accepted,
        responses=_HOOK_RESPONSES,
        openapi_extra=_HOOK_OPENAPI,
        summary="A change of a ticket (a field the bridge follows, or its status), from RT's scrip",
    )
    async def receive_hook(request: Request) -> Response:
        # Reached only under a root_path (else ``_ReceiverApp`` answers first): the same answer.
        answer = await endpoint.answer(request.scope, request.receive)
        return Response(
            answer.body,
            status_code=answer.status,
            headers=dict(answer.headers) or None,
            media_type="application/json",
        )

    @app.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        summary="The queue database answers and hooks are being taken",
        responses={503: {"model": Problem}},
    )
    async def readyz() -> JSONResponse:
        if not hooks.running:
            return _problem(503, "not taking hooks: the writer is starting or shutting down")
        try:
            await asyncio.wait_for(asyncio.to_thread(queue.ping), READY_TIMEOUT)
        except TimeoutError:
            return _problem(503, f"the queue database did not answer within {READY_TIMEOUT:g} s")
        except Exception as exc:
            return _problem(
                503, f"the queue database is unavailable ({inbox.describe(exc, queue.engine)})"
            )
        return JSONResponse({"status": "ready"})

    return app


def build_server(
    settings: settings_model.Settings,
    queue: jobqueue.Queue,
    *,
    access_log: bool = False,
    freeze_gc: bool = True,
    routers: Sequence[APIRouter] = (),
) -> uvicorn.Server:
    """A uvicorn server (httptools, uvloop) for the receiver on the configured address.

    Logging is left to the caller (``log_config=None``); the access log is off unless asked
    for; ``freeze_gc`` as in ``create_app``. Raises ``ConfigError`` when no hook secret is
    configured. ``routers`` as in ``create_app``.
    """
    return _build(settings, queue, access_log=access_log, freeze_gc=freeze_gc, routers=routers)[0]


def _build(
    settings: settings_model.Settings,
    queue: jobqueue.Queue,
    *,
    access_log: bool,
    freeze_gc: bool,
    routers: Sequence[APIRouter] = (),
) -> tuple[uvicorn.Server, FastAPI]:
    app = create_app(settings, queue, freeze_gc=freeze_gc, routers=routers)
    limits = settings.receiver.limits
    server_config = uvicorn.Config(
        app,
        host=settings.receiver.host,
        port=settings.receiver.port,
        loop="uvloop",
        # uvicorn's httptools protocol, with header/body deadlines, a header size cap and a
        # per-client connection cap (``connections``).
        http=connections.protocol_class(connections.ConnectionGuard(limits)),
        lifespan="on",
        access_log=access_log,
        log_config=None,
        server_header=False,
        limit_concurrency=limits.max_connections,  # beyond it, 503 instead of queueing
        # A reverse proxy in front (uncapped) says who the client is in X-Forwarded-For.
        forwarded_allow_ips=["127.0.0.1", "::1", *limits.uncapped_clients],
        timeout_keep_alive=5,
        timeout_graceful_shutdown=30,
    )
    return uvicorn.Server(server_config), app


def serve(
    settings: settings_model.Settings,
    queue: jobqueue.Queue,
    *,
    access_log: bool = False,
    routers: Sequence[APIRouter] = (),
) -> None:
    """Run the receiver until SIGTERM or SIGINT, then stop cleanly and return.

    On the signal it stops accepting connections, lets every request in flight finish (each
    one answered: stored, refused, or 503), commits what the writer holds, stops the writer.
    Raises ``ConfigError`` without a hook secret, ``ReceiverFailed`` when it cannot start.
    ``routers`` as in ``create_app``.
    """
    server, app = _build(settings, queue, access_log=access_log, freeze_gc=True, routers=routers)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    # uvicorn handles the signals while it runs and afterwards re-raises the one it caught;
    # a handler of ours makes that re-raise harmless, so serve() returns normally.
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, stop)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits when it cannot bind or start
        raise ReceiverFailed(
            f"the receiver could not start on {settings.receiver.host}:{settings.receiver.port}"
            " (see the log above)"
        ) from exc
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        app.state.inbox.close()
        app.state.refusals.close()
