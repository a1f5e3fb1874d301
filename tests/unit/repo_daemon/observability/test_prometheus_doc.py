"""docs/prometheus.md lists exactly the metrics ``/metrics`` exposes (name, type, labels) and
exactly the alerts docs/prometheus/alerts.yml ships."""

from __future__ import annotations

import re

import sqlalchemy as sa
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.pool import StaticPool

from bridge import records
from bridge.intake import intake_metrics
from bridge.store import database
from repo_daemon.daemon import job_metrics, runner
from repo_daemon.observability import exposition
from tests.support import paths, prometheus_story

DOC = (paths.ROOT / "docs" / "prometheus.md").read_text()
RULES = (paths.ROOT / "docs" / "prometheus" / "alerts.yml").read_text()


def documented() -> dict[str, tuple[str, frozenset[str]]]:
    rows = re.findall(r"^\| `(rollout_\w+)` \| (\w+) \| ([^|]*) \|", DOC, flags=re.M)
    return {name: (kind, frozenset(re.findall(r"`(\w+)`", labels))) for name, kind, labels in rows}


def exposed() -> dict[str, tuple[str, frozenset[str]]]:
    engine = sa.create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    database.migrate(engine)
    story = prometheus_story.write(engine)
    jobs = job_metrics.JobMetrics()
    request = records.ReleaseRequest(
        ticket_id=1, transaction_id=1, current=records.RolloutState.UNVERIFIED,
        previous=records.RolloutState.SUBMITTED,
    )  # fmt: skip
    job = records.Job(
        id=1, request=request, status=records.JobStatus.DONE, attempts=1,
        scheduled_at=story.now, created_at=story.now,
    )  # fmt: skip
    jobs.observe(job, runner.DrainReport(done=1), 0.2)
    registry = exposition.registry(
        engine, prometheus_story.settings(), local=(intake_metrics.IntakeMetrics(), jobs)
    )
    text = generate_latest(registry).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith("process_"):
            continue
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = frozenset(k for s in family.samples for k in s.labels if k != "le")
        found[name] = (family.type, labels)
    return found


def test_the_doc_lists_every_metric_exposed_with_its_type_and_labels() -> None:
    assert documented() == exposed()


def test_the_doc_explains_every_shipped_alert() -> None:
    shipped = re.findall(r"^      - alert: (\w+)$", RULES, flags=re.M)
    in_doc = re.findall(r"^\| `(Rollout\w+)` \|", DOC, flags=re.M)
    assert len(shipped) == 8
    assert in_doc == shipped
