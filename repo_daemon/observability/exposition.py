"""Serving Prometheus's ``GET /metrics``: the registry of one process (the database's gauges,
the process's own counters, ``rollout_build_info``), the route on the receiver (``rollout
serve`` / ``rollout run``, mounted by ``assemble``), and the small server ``rollout daemon``
starts on ``ROLLOUT_DAEMON_METRICS_PORT``.

Who may read it is ``ROLLOUT_METRICS_ROLES`` (``anyone`` by default: Prometheus scrapes without
a login), checked by ``events_access.FeedAccess`` with the caller's RT login otherwise. It
holds no SQL (``pipeline_metrics``) and never logs a header.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
import uvicorn
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Info, ProcessCollector, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

import bridge
from bridge.intake import intake_metrics
from bridge.settings import model as settings_model
from repo_daemon.daemon import job_metrics
from repo_daemon.observability import pipeline_metrics
from repo_daemon.web import events_access

logger = logging.getLogger(__name__)

PATH = "/metrics"

# No ``*_created`` series beside each counter: Prometheus's text format does not use them and
# they double what a scrape carries (a process-wide choice of prometheus_client).
disable_created_metrics()  # type: ignore[no-untyped-call]
STOP_TIMEOUT = 10.0  # seconds the daemon's metrics server may take to stop


def build_info() -> Info:
    """``rollout_build_info{version}`` (always 1)."""
    info = Info("rollout_build", "The bridge's version (always 1).", registry=None)
    info.info({"version": bridge.__version__})
    return info


def registry(
    engine: sa.Engine,
    settings: settings_model.Settings,
    *,
    local: Iterable[Collector] = (),
    pipeline: Collector | None = None,
) -> CollectorRegistry:
    """A process's metrics: the database's gauges (``pipeline``, else a ``PipelineCollector``
    on ``engine``), the ``local`` process counters, the build info and the standard
    ``process_*`` metrics."""
    found = CollectorRegistry(auto_describe=True)
    found.register(pipeline or pipeline_metrics.PipelineCollector(engine, settings))
    for collector in (*local, build_info()):
        found.register(collector)
    ProcessCollector(registry=found)
    return found


def local_metrics(*, receiver: bool, daemon: bool) -> tuple[Collector, ...]:
    """The counters of the parts this process runs: the receiver's, the daemon's, or both."""
    return (
        *((intake_metrics.INTAKE,) if receiver else ()),
        *((job_metrics.JOBS,) if daemon else ()),
    )


def metrics_access(settings: settings_model.Settings) -> events_access.FeedAccess:
    """Who may read ``/metrics``: ``metrics_roles`` (``anyone``: no login asked)."""
    return events_access.feed_access(settings, roles=settings.access.metrics_roles, what=PATH)


_REFUSED = {
    401: "log in with your RT user name and password, or an RT auth token",
    403: "your RT account has no role that may read /metrics",
    503: "RT cannot check logins now; try again later",
}


def router(metrics: CollectorRegistry, access: events_access.FeedAccess) -> APIRouter:
    """``GET /metrics``: ``metrics`` in the format the scraper asks for (Prometheus's text
    format, or OpenMetrics), for the people ``access`` admits."""
    api = APIRouter()

    @api.get(PATH, summary="Prometheus metrics", include_in_schema=False)
    def scrape(request: Request) -> Response:  # sync: FastAPI runs it on a worker thread
        answer = access.check(request.headers.get("authorization"))
        if not answer.allowed:
            raise HTTPException(
                answer.status, _REFUSED[answer.status], headers=answer.headers or None
            )
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(metrics), media_type=content_type)

    return api


@dataclass(kw_only=True)
class Endpoint:
    """``/metrics`` to mount on the receiver, and what to close after serving."""

    router: APIRouter
    close: Callable[[], None]


def endpoint(settings: settings_model.Settings, engine: sa.Engine, *, daemon: bool) -> Endpoint:
    """The receiver's ``/metrics``: the database's gauges and the receiver's counters, with
    the daemon's when it runs in the same process (``rollout run``)."""
    access = metrics_access(settings)
    metrics = registry(engine, settings, local=local_metrics(receiver=True, daemon=daemon))
    return Endpoint(router=router(metrics, access), close=access.close)


class DaemonMetricsServer:
    """``/metrics`` of a daemon started alone, on its own address (``metrics_host`` /
    ``metrics_port``), served by uvicorn on a thread. ``start`` binds first, so an address in
    use is an error at once; ``stop`` ends it."""

    def __init__(
        self,
        settings: settings_model.Settings,
        engine: sa.Engine,
        *,
        local: Sequence[Collector] | None = None,
    ) -> None:
        self.host = settings.daemon.metrics_host
        self.port = settings.daemon.metrics_port
        self._access = metrics_access(settings)
        collectors = local_metrics(receiver=False, daemon=True) if local is None else local
        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        app.include_router(router(registry(engine, settings, local=collectors), self._access))
        self._server = uvicorn.Server(
            uvicorn.Config(
                app, log_config=None, access_log=False, lifespan="off", server_header=False
            )
        )
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def start(self) -> None:
        """Listen and serve in the background; ``OSError`` naming the address if it cannot
        bind."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise OSError(
                exc.errno, f"the daemon's /metrics cannot listen on {self.host}:{self.port}: "
                f"{exc.strerror}",
            ) from None  # fmt: skip
        self.port = sock.getsockname()[1]
        self._socket = sock
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="metrics", daemon=True
        )
        self._thread.start()
        logger.info(
            "serving /metrics on http://%s:%d%s", self.host, self.port, PATH,
            extra={"action": "start"},
        )  # fmt: skip

    @property
    def started(self) -> bool:
        """Whether the server answers requests."""
        return bool(self._server.started)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
        if self._socket is not None:
            self._socket.close()
        self._access.close()
