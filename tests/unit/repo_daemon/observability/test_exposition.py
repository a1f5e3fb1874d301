"""``/metrics`` on a known database state: every gauge's exact samples, the label values
bounded, a failing database, the HTTP route with and without a login, the daemon's settings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.pool import StaticPool

import bridge
from bridge import errors
from bridge.intake import intake_metrics
from bridge.settings import load
from bridge.store import database, releases
from repo_daemon.daemon import job_metrics
from repo_daemon.observability import exposition, pipeline_metrics
from tests.support import feed_access, prometheus_story
from tests.support.feed_access import ADA, QUINN


@pytest.fixture
def engine() -> Iterator[sa.Engine]:
    found = sa.create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    database.migrate(found)
    yield found
    found.dispose()


def samples(metrics: CollectorRegistry | pipeline_metrics.PipelineCollector) -> dict[Any, float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in metrics.collect()
        for s in family.samples
    }


def test_the_database_gauges_of_a_known_state_are_exact(engine: sa.Engine) -> None:
    story = prometheus_story.write(engine)
    collector = pipeline_metrics.PipelineCollector(
        engine, prometheus_story.settings(), clock=story.clock
    )
    assert samples(collector) == {
        ("rollout_database_up", ()): 1.0,
        **prometheus_story.EXPECTED,
    }


def test_an_empty_database_gives_zeros_and_no_times(engine: sa.Engine) -> None:
    found = samples(pipeline_metrics.PipelineCollector(engine, prometheus_story.settings()))
    assert {k: v for k, v in found.items() if v} == {("rollout_database_up", ()): 1.0}
    assert not any("timestamp" in name for name, _ in found)


def test_a_thousand_releases_add_no_series(engine: sa.Engine) -> None:
    story = prometheus_story.write(engine)
    settings = prometheus_story.settings()
    before = set(samples(pipeline_metrics.PipelineCollector(engine, settings, clock=story.clock)))
    store = releases.ReleaseStore(engine, clock=story.clock)
    for n in range(100, 1100):
        store.ensure(n, state=prometheus_story.S.SUBMITTED, major_release=f"X-{n}", emergency=False)
        store.set_repository_path(n, f"unverified/thing-{n}/{n}.0")
        if n % 10 == 0:
            store.set_repository_path(n, f"stagerollout/X-{n}")
            store.take_slot(f"X-{n}", n, emergency=False)
    after = samples(pipeline_metrics.PipelineCollector(engine, settings, clock=story.clock))
    assert set(after) == before
    no_ticket = {v for _name, labels in after for _label, v in labels}
    assert not any(str(n) in v for n in range(100, 1100) for v in no_ticket)
    assert (
        after[("rollout_stage_slot_holders", (("emergency", "false"), ("major_release", "other")))]
        == 101
    )


def test_a_database_that_cannot_be_read_is_reported_down() -> None:
    broken = sa.create_engine("sqlite://")  # never migrated: no tables
    found = samples(pipeline_metrics.PipelineCollector(broken, prometheus_story.settings()))
    assert found == {("rollout_database_up", ()): 0.0}


def app_with(engine: sa.Engine, access: Any, registry: CollectorRegistry) -> TestClient:
    app = FastAPI()
    app.include_router(exposition.router(registry, access))
    return TestClient(app)


def test_get_metrics_answers_prometheus_text_without_a_login_by_default(
    engine: sa.Engine,
) -> None:
    story = prometheus_story.write(engine)
    settings = prometheus_story.settings()
    collector = pipeline_metrics.PipelineCollector(engine, settings, clock=story.clock)
    registry = exposition.registry(
        engine, settings, pipeline=collector,
        local=(intake_metrics.IntakeMetrics(), job_metrics.JobMetrics()),
    )  # fmt: skip
    client = app_with(engine, exposition.metrics_access(settings), registry)
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    parsed = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }
    assert parsed[("rollout_build_info", (("version", bridge.__version__),))] == 1.0
    assert parsed[("rollout_queue_jobs", (("status", "dead"),))] == 1.0
    assert parsed[("rollout_hooks_refused_total", (("reason", "signature"),))] == 0.0
    assert parsed[("rollout_jobs_processed_total", (("outcome", "done"),))] == 0.0
    openmetrics = client.get("/metrics", headers={"accept": "application/openmetrics-text"})
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")


def test_get_metrics_restricted_to_roles_asks_for_an_rt_login(engine: sa.Engine) -> None:
    registry = exposition.registry(engine, prometheus_story.settings())
    client = app_with(engine, feed_access.feed_access(roles=("admin",)), registry)
    unknown = client.get("/metrics")
    assert unknown.status_code == 401
    assert unknown.headers["www-authenticate"].startswith("Basic")
    assert client.get("/metrics", headers=QUINN).status_code == 403
    assert client.get("/metrics", headers=ADA).status_code == 200


def test_the_receiver_serves_both_parts_counters_only_in_rollout_run(engine: sa.Engine) -> None:
    settings = prometheus_story.settings()
    served = {}
    for daemon in (False, True):
        endpoint = exposition.endpoint(settings, engine, daemon=daemon)
        app = FastAPI()
        app.include_router(endpoint.router)
        text = TestClient(app).get("/metrics").text
        endpoint.close()
        served[daemon] = {f.name for f in text_string_to_metric_families(text)}
    assert "rollout_hooks_accepted" in served[False]
    assert "rollout_jobs_processed" not in served[False]
    assert {"rollout_hooks_accepted", "rollout_jobs_processed"} <= served[True]


def test_metrics_settings_are_read_and_checked() -> None:
    env = {"ROLLOUT_RT_URL": "http://rt.example.org/", "ROLLOUT_RT_TOKEN": "t"}
    default = load.load_settings(env)
    assert default.access.metrics_roles == ("anyone",)
    assert (default.daemon.metrics_host, default.daemon.metrics_port) == ("127.0.0.1", 0)
    chosen = load.load_settings(
        env
        | {
            "ROLLOUT_METRICS_ROLES": "admin,sr",
            "ROLLOUT_DAEMON_METRICS_PORT": "9108",
            "ROLLOUT_DAEMON_METRICS_HOST": "192.0.2.10",
        }
    )
    assert chosen.access.metrics_roles == ("admin", "sr")
    assert (chosen.daemon.metrics_host, chosen.daemon.metrics_port) == ("192.0.2.10", 9108)
    with pytest.raises(errors.ConfigError) as refused:
        load.load_settings(env | {"ROLLOUT_DAEMON_METRICS_PORT": "70000",
                                  "ROLLOUT_METRICS_ROLES": "robots"})  # fmt: skip
    assert refused.value.problems == [
        "daemon_metrics_port: '70000' is not a TCP port (0: off)",
        "metrics_roles: robots is not a role (known: admin, anyone, provider, qc, sr)",
    ]


def test_the_oldest_job_age_follows_the_clock(engine: sa.Engine) -> None:
    story = prometheus_story.write(engine)
    collector = pipeline_metrics.PipelineCollector(
        engine, prometheus_story.settings(), clock=story.clock
    )
    story.clock.advance(timedelta(minutes=10).total_seconds())
    assert samples(collector)[("rollout_queue_oldest_job_age_seconds", ())] == 4320.0 + 600.0
