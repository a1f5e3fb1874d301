"""The receiver counts the hooks it accepts and refuses, by a bounded reason."""

from __future__ import annotations

import json
import time

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.pool import StaticPool

from bridge.intake import intake_metrics, receiver, webhooks
from bridge.store import database, queue
from tests.unit.bridge.intake.test_receiver import KEY, settings


def counts(metrics: intake_metrics.IntakeMetrics) -> dict[tuple[str, str], float]:
    return {
        (s.name, next(iter(s.labels.values()))): s.value
        for family in metrics.collect()
        for s in family.samples
        if s.name.endswith("_total")
    }


def test_hooks_accepted_and_refused_are_counted_by_reason() -> None:
    engine = sa.create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    database.migrate(engine)
    metrics = intake_metrics.IntakeMetrics()
    app = receiver.create_app(settings(), queue.Queue(engine), metrics=metrics)
    body = json.dumps({"ticket_id": 7, "transaction_id": 70, "current": "Unverified"}).encode()
    signed = webhooks.signed_headers(KEY, "70", int(time.time()), body)
    signed |= {"content-type": "application/json"}
    with TestClient(app) as client:
        assert client.post(receiver.HOOK_PATH, content=body, headers=signed).status_code == 202
        assert client.post(receiver.HOOK_PATH, content=body, headers=signed).status_code == 200
        unsigned = {"content-type": "application/json"}
        assert client.post(receiver.HOOK_PATH, content=body, headers=unsigned).status_code == 401
        bad = b"{not json"
        headers = webhooks.signed_headers(KEY, "71", int(time.time()), bad)
        headers |= {"content-type": "application/json"}
        assert client.post(receiver.HOOK_PATH, content=bad, headers=headers).status_code == 400
        big = b"x" * (settings().receiver.max_body_bytes + 1)
        assert client.post(receiver.HOOK_PATH, content=big, headers=unsigned).status_code == 413
    assert counts(metrics) == {
        ("rollout_hooks_accepted_total", "queued"): 1.0,
        ("rollout_hooks_accepted_total", "duplicate"): 1.0,
        ("rollout_hooks_refused_total", "malformed"): 1.0,
        ("rollout_hooks_refused_total", "signature"): 1.0,
        ("rollout_hooks_refused_total", "too_large"): 1.0,
        ("rollout_hooks_refused_total", "media_type"): 0.0,
        ("rollout_hooks_refused_total", "invalid"): 0.0,
        ("rollout_hooks_refused_total", "unavailable"): 0.0,
        ("rollout_hooks_refused_total", "other"): 0.0,
    }


def test_every_refusal_status_has_a_reason_and_others_are_one_value() -> None:
    assert [intake_metrics.reason_of(s) for s in (400, 401, 413, 415, 422, 503, 418)] == [
        "malformed", "signature", "too_large", "media_type", "invalid", "unavailable", "other",
    ]  # fmt: skip
