"""``GET /api/metrics`` and ``/api/metrics/{table}`` on the receiver's app (in-memory
SQLite, the in-memory RT of ``tests.support.feed_access``): JSON and CSV, RFC 7807 problems
for bad periods and unknown tables, and who may read them."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.pool import StaticPool

from bridge import secrets
from bridge.intake import receiver
from bridge.settings import model as settings_model
from bridge.store import database
from bridge.store import queue as jobqueue
from repo_daemon.web import metrics_api
from tests.support import feed_access
from tests.support import metrics_seed as seed
from tests.support.feed_access import ADA, QUINN

SECRET = "whsec_" + base64.b64encode(b"metrics-api-test-secret-24").decode()
PROBLEM = "application/problem+json"


@pytest.fixture
def client() -> Iterator[TestClient]:
    engine = sa.create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    database.migrate(engine)
    seed.write_records(engine, seed.seeded_history()[:30])
    settings = settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="http://127.0.0.1:9/"),
        receiver=settings_model.ReceiverSettings(hook_secret=secrets.Secret(SECRET)),
    )
    access = feed_access.feed_access(roles=("admin",), realm=metrics_api.REALM)
    routes = metrics_api.router(engine, access, clock=lambda: datetime(2025, 12, 6))
    app = receiver.create_app(settings, jobqueue.Queue(engine), routers=[routes])
    with TestClient(app, base_url="https://bridge.example.org") as test_client:
        yield test_client
    engine.dispose()


def test_the_whole_report_as_json_for_the_period_asked(client: TestClient) -> None:
    answer = client.get("/api/metrics?from=2025-10&to=2025-11&major_release=UMD-4", headers=ADA)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["query"] == {"from": "2025-10-01T00:00:00Z", "to": "2025-12-01T00:00:00Z",
                             "major_release": "UMD-4"}  # fmt: skip
    assert body["months"] == ["2025-10", "2025-11"]
    assert sum(body["monthly"]["M.REPO-1"].values()) == sum(
        1
        for s in seed.seeded_history()[:30]
        if s.major_release == "UMD-4" and s.created_at < datetime(2025, 12, 1)
    )


def test_without_bounds_from_the_earliest_month_through_now(client: TestClient) -> None:
    body = client.get("/api/metrics/monthly", headers=ADA).json()
    assert body["months"] == ["2025-10", "2025-11", "2025-12"]
    assert set(body) == {"query", "months", "monthly"}


@pytest.mark.parametrize("table", ["monthly", "uptake", "teams", "ngis", "durations"])
def test_each_table_as_csv_to_download(client: TestClient, table: str) -> None:
    answer = client.get(f"/api/metrics/{table}?format=csv&from=2025-10", headers=ADA)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == f'attachment; filename="metrics-{table}.csv"'
    assert answer.text.count("\r\n") > 1


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("from=2025-13", "the request is not valid: from: '2025-13' is not a date"),
        ("to=last-week", "to: 'last-week' is not a month (YYYY-MM) or a day (YYYY-MM-DD)"),
        ("from=2026-05&to=2026-04", "from: the period is empty: from=2026-05&to=2026-04"),
        ("format=xml", "query.format"),
    ],
)
def test_a_bad_parameter_is_a_problem_saying_where_and_what(
    client: TestClient, query: str, detail: str
) -> None:
    answer = client.get(f"/api/metrics?{query}", headers=ADA)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    assert detail in answer.json()["detail"]
    assert answer.json()["errors"]


def test_an_unknown_table_is_a_404_problem(client: TestClient) -> None:
    answer = client.get("/api/metrics/everything", headers=ADA)
    assert answer.status_code == 404 and answer.headers["content-type"] == PROBLEM
    assert "one of monthly, uptake, teams, ngis, durations" in answer.json()["detail"]


def test_only_the_status_roles_read_the_metrics(client: TestClient) -> None:
    anonymous = client.get("/api/metrics")
    assert anonymous.status_code == 401 and anonymous.headers["content-type"] == PROBLEM
    assert anonymous.headers["www-authenticate"].startswith('Basic realm="Rollout status"')
    refused = client.get("/api/metrics/monthly", headers=QUINN)  # QC; only admin here
    assert refused.status_code == 403
    assert refused.json()["detail"] == "your RT account has no role that may read the metrics"
    assert "monthly" not in refused.text


def test_the_json_durations_carry_their_samples_only_when_asked(client: TestClient) -> None:
    plain = client.get("/api/metrics/durations?from=2025-10", headers=ADA).json()
    full = client.get("/api/metrics/durations?from=2025-10&samples=1", headers=ADA).json()
    assert set(plain["lead_time"]) == {"n", "median_seconds", "p90_seconds"}
    assert len(full["lead_time"]["samples"]) == full["lead_time"]["n"] > 0
    for name in ("stage_to_production", "production_to_report", "lead_time"):
        assert {k: v for k, v in full[name].items() if k != "samples"} == plain[name]
    assert all("samples" not in d for d in plain["time_in_state"].values())
    assert all("samples" in d for d in full["time_in_state"].values())
