"""The tree-access check nginx asks before serving a protected area (``auth_request``):
``GET /access-check`` with the client's ``Authorization`` header and the original URI, answered
204 (serve it), 401 with ``WWW-Authenticate`` (no or bad credentials), 403 (a person without a
role that may read it), 404 (a path no area holds) or 503 (RT cannot be asked and the person is
not remembered). ``GET /access-check/stats`` counts RT calls (loopback only, for operators and
tests). ``build_server`` / ``serve`` run it on uvicorn (``rollout repo access-check``).

It only translates HTTP: the answer is ``serving.guard``'s. It never logs a header.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from repo_daemon.serving import access_parts

logger = logging.getLogger(__name__)

CHECK_PATH = "/access-check"


def create_app(parts: access_parts.AccessParts) -> FastAPI:
    """The check's app around the assembled ``parts`` (closed by the caller)."""
    app = FastAPI(title="Rollout tree access check", openapi_url=None, docs_url=None)
    guard = parts.guard

    @app.get(CHECK_PATH)
    def check(request: Request) -> Response:
        uri = request.headers.get("x-original-uri")
        if not uri:
            return JSONResponse(
                {"detail": "X-Original-URI is missing: this endpoint is for nginx's auth_request"},
                status_code=400,
            )
        kind = request.headers.get("x-rollout-area") or None
        answer = guard.check(uri, request.headers.get("authorization"), kind=kind)
        headers = dict(answer.headers)
        if answer.person is not None:
            headers["X-Rollout-Person"] = answer.person.name
        return Response(status_code=answer.status, headers=headers)

    @app.get(CHECK_PATH + "/stats")
    def stats() -> dict[str, Any]:
        checker = parts.checker
        recorder = parts.recorder
        return {
            "rt_login_calls": checker.total_login_calls if checker else 0,
            "rt_login_calls_by_login": dict(checker.login_calls) if checker else {},
            "rt_group_reads": checker.directory.reads if checker else 0,
            "stale_answers": checker.stale_answers if checker else 0,
            "fetches_written": recorder.written if recorder else 0,
        }

    return app


def build_server(
    parts: access_parts.AccessParts, host: str, port: int, *, access_log: bool = False
) -> uvicorn.Server:
    """A uvicorn server for the check on ``host:port``; logging left to the caller."""
    config = uvicorn.Config(
        create_app(parts),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=access_log,
        log_config=None,
        server_header=False,
        limit_concurrency=2000,
        timeout_keep_alive=30,  # nginx keeps its connections to the check open
        timeout_graceful_shutdown=10,
    )
    return uvicorn.Server(config)


def serve(parts: access_parts.AccessParts, host: str, port: int) -> None:
    """Run the check until SIGTERM or SIGINT, then return (the caller closes ``parts``).
    Raises ``OSError`` when it cannot start on the address."""
    server = build_server(parts, host, port)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, stop)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits when it cannot bind
        raise OSError(f"the access check could not start on {host}:{port}") from exc
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
