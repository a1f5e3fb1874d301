"""The metrics' API as ``rollout serve`` serves it (a real uvicorn process): mounted beside the
hook and not public; against the real RT, read by a member of the staged-rollout team (a
status role) with their RT login and refused (403) to a provider; the report the same on
SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.rt_setup.sandbox import SandboxInfo
from bridge.store import database
from tests.integration.test_events_api_served import FeedServer
from tests.support import metrics_seed as seed
from tests.support.feed_access import basic
from tests.support.rt_people import PASSWORD, person

WHOLE = "/api/metrics?from=2025-10&to=2026-11"


def _seeded(url: str) -> None:
    engine = database.create_engine(url)
    database.migrate(engine)
    seed.write_records(engine, seed.seeded_history())
    engine.dispose()


def test_rollout_serve_mounts_the_metrics_not_public(db_url: str, tmp_path: Path) -> None:
    _seeded(db_url)
    server = FeedServer(
        db_url=db_url, data_dir=tmp_path / "a", extra={"ROLLOUT_STATUS_ROLES": "anyone"}
    ).start()
    try:
        status, _, body = server.ask(WHOLE)
        assert status == 200
        assert tuple(body["monthly"]["M.REPO-1"].values()) == seed.EXPECTED["monthly"]["M.REPO-1"]
        assert "/api/metrics/{table}" in server.ask("/openapi.json")[2]["paths"]
    finally:
        assert server.stop() == 0
    closed = FeedServer(db_url=db_url, data_dir=tmp_path / "b", extra={}).start()
    try:
        status, headers, body = closed.ask("/api/metrics/monthly")
        assert status == 401 and body["status"] == 401 and "monthly" not in body
        assert headers["www-authenticate"].startswith('Basic realm="Rollout status"')
    finally:
        assert closed.stop() == 0


@pytest.mark.rt
def test_against_rt_the_staged_rollout_team_reads_the_metrics_and_a_provider_does_not(
    rt_sandbox: SandboxInfo, tmp_path: Path
) -> None:
    (tmp_path / "db").mkdir()
    url = database.default_url(tmp_path / "db")
    _seeded(url)
    for name, group in (("metrics-sr", "sw-rel-sr"), ("metrics-provider", "sw-rel-providers")):
        person(rt_sandbox, name, group).close()
    server = FeedServer(
        db_url=url,
        data_dir=tmp_path / "data",
        extra={"ROLLOUT_RT_URL": rt_sandbox.web_url, "ROLLOUT_RT_TOKEN": rt_sandbox.bridge_token()},
    ).start()
    try:
        status, _, body = server.ask(WHOLE, basic("metrics-sr", PASSWORD))
        assert status == 200, body
        assert len(body["uptake"]) == len(seed.EXPECTED["M.SA1.3-1"])
        status, _, body = server.ask("/api/metrics/teams", basic("metrics-provider", PASSWORD))
        assert status == 403
        assert body["detail"] == "your RT account has no role that may read the metrics"
        assert server.ask(WHOLE, basic("metrics-sr", "not-the-password"))[0] == 401
    finally:
        assert server.stop() == 0
