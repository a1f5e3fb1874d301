"""The receiver in process, on a real SQLite file and a real PostgreSQL (the ``db_url`` fixture):
stored hooks, duplicates, every refusal with its code, message and event, readiness when the
database goes away, and group commit through a real uvicorn server."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from bridge import records, secrets
from bridge.intake import receiver, webhooks
from bridge.rt_setup.sandbox import free_port
from bridge.settings import model as settings_model
from bridge.store import events, queue
from tests.support import paths

FIXTURES = paths.ROOT / "fixtures"
SECRET = "whsec_" + base64.b64encode(b"receiver-test-secret-24b").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"somebody-else-s-secret!!").decode()
KEY = secrets.hook_key(SECRET)
OTHER_KEY = secrets.hook_key(OTHER_SECRET)
REMOTE = ("192.0.2.7", 40123)
DEADLINE = 30.0
ALLOWED = (
    "Submitted, Unverified, InVerification, WaitingForResponse, StageRollout, Deferred, "
    "Production, Rejected, Ignored, NotPublished, Failed, Withdrawn"
)


def settings(*, port: int = 8750, secret: str | None = SECRET) -> settings_model.Settings:
    return settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="http://127.0.0.1:9/"),
        receiver=settings_model.ReceiverSettings(
            host="127.0.0.1",
            port=port,
            hook_secret=secrets.Secret(secret) if secret else None,
        ),
    )


def signed(
    body: bytes,
    msg_id: str,
    *,
    key: bytes = KEY,
    at: int | None = None,
    content_type: str = "application/json",
) -> dict[str, str]:
    headers = webhooks.signed_headers(key, msg_id, int(time.time()) if at is None else at, body)
    headers["content-type"] = content_type
    return headers


def hook_body(
    ticket_id: int, transaction_id: int, current: str = "Unverified", **more: Any
) -> bytes:
    fields = {"ticket_id": ticket_id, "transaction_id": transaction_id, "current": current}
    fields.update({"previous": "", "emergency": False, "actor": "root"} | more)
    return json.dumps(fields).encode()


@pytest.fixture
def jobs_queue(make_queue: Callable[..., queue.Queue]) -> queue.Queue:
    return make_queue()


@pytest.fixture
def client(jobs_queue: queue.Queue) -> Iterator[TestClient]:
    with TestClient(receiver.create_app(settings(), jobs_queue), client=REMOTE) as test_client:
        yield test_client


def refusals(q: queue.Queue) -> list[events.Event]:
    return q.events(kind=events.EventKind.HOOK_REFUSED)


# -- accepted -------------------------------------------------------------------------------------


def test_hook_is_queued_and_answered_202(client: TestClient, jobs_queue: queue.Queue) -> None:
    body = (FIXTURES / "webhook_rolloutprogress_unverified.json").read_bytes()
    response = client.post("/hooks/rt", content=body, headers=signed(body, "1234"))
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    assert response.json() == {"job_id": job_id, "status": "queued"}
    job = jobs_queue.get(job_id)
    assert job is not None
    assert job.request == records.ReleaseRequest(
        ticket_id=42,
        transaction_id=1234,
        current=records.RolloutState.UNVERIFIED,
        previous=records.RolloutState.SUBMITTED,
        emergency=False,
        actor="root",
        source=records.JobSource.HOOK,
    )
    assert job.status is records.JobStatus.QUEUED
    assert refusals(jobs_queue) == []


def test_form_encoded_hook_is_queued(client: TestClient, jobs_queue: queue.Queue) -> None:
    body = (FIXTURES / "webhook_rolloutprogress_unverified.form").read_bytes()
    headers = signed(body, "1234", content_type="application/x-www-form-urlencoded")
    response = client.post("/hooks/rt", content=body, headers=headers)
    assert response.status_code == 202
    job = jobs_queue.get(response.json()["job_id"])
    assert job is not None and (job.ticket_id, job.request.actor) == (42, "root")


def test_emergency_hook_keeps_its_flag(client: TestClient, jobs_queue: queue.Queue) -> None:
    body = (FIXTURES / "webhook_emergency_production.json").read_bytes()
    response = client.post("/hooks/rt", content=body, headers=signed(body, "1301"))
    assert response.status_code == 202
    job = jobs_queue.get(response.json()["job_id"])
    assert job is not None and job.request.emergency is True
    assert job.request.previous is records.RolloutState.IN_VERIFICATION


def test_hooks_of_other_fields_and_the_status_are_queued_in_rts_order(
    client: TestClient, jobs_queue: queue.Queue
) -> None:
    bodies = [
        (FIXTURES / "webhook_earlyadopters_added.json").read_bytes().replace(b"1234", b"1240"),
        (FIXTURES / "webhook_status_resolved.json").read_bytes().replace(b"1234", b"1241"),
    ]
    for body, txn in zip(bodies, ("1240", "1241"), strict=True):
        assert client.post("/hooks/rt", content=body, headers=signed(body, txn)).status_code == 202
    claimed = []
    while jobs := jobs_queue.claim("w"):
        claimed += jobs
        jobs_queue.complete(jobs[0].id, "w")
    assert [(j.request.field, j.request.before, j.request.after) for j in claimed] == [
        (records.TrackedField.EARLY_ADOPTERS, "", "desy"),
        (records.TrackedField.STATUS, "open", "resolved"),
    ]
    assert claimed[0].request.changed_at == datetime(2025, 10, 9, 8, 53, 20)


def test_repeated_transaction_is_answered_200_with_the_same_job(
    client: TestClient, jobs_queue: queue.Queue
) -> None:
    body = hook_body(42, 5000)
    first = client.post("/hooks/rt", content=body, headers=signed(body, "5000"))
    # RT (or a replay inside the window) sends it again, even with a fresh signature.
    again = client.post("/hooks/rt", content=body, headers=signed(body, "5000"))
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == {"job_id": first.json()["job_id"], "status": "duplicate"}
    assert len(jobs_queue.list_jobs()) == 1


# -- refused --------------------------------------------------------------------------------------

UNKNOWN = (FIXTURES / "webhook_unknown_state.json").read_bytes()
GOOD = (FIXTURES / "webhook_rolloutprogress_unverified.json").read_bytes()

# (id, body, headers(body) or None for no signature headers, status, message,
#  recorded ticket id, recorded transaction id, needs_comment)
REFUSALS: list[Any] = [
    (
        "unsigned",
        UNKNOWN,
        lambda b: {"content-type": "application/json"},
        401,
        "not signed: missing headers webhook-id, webhook-timestamp, webhook-signature",
        42,
        1235,
        False,
    ),
    (
        "wrong-secret",
        UNKNOWN,
        lambda b: signed(b, "1235", key=OTHER_KEY),
        401,
        "webhook-signature: does not match (wrong secret, or the body or headers were changed "
        "on the way)",
        42,
        1235,
        False,
    ),
    (
        "stale",
        GOOD,
        lambda b: signed(b, "1234", at=int(time.time()) - 3600),
        401,
        None,  # "too old (3600 s ago…)": the exact age depends on the clock; checked by prefix
        42,
        1234,
        False,
    ),
    (
        "unknown-state",
        UNKNOWN,
        lambda b: signed(b, "1235"),
        422,
        f"current: unknown RolloutProgress value 'Published'; allowed: {ALLOWED}",
        42,
        1235,
        True,
    ),
    (
        "missing-ticket-id",
        (FIXTURES / "webhook_missing_ticket_id.json").read_bytes(),
        lambda b: signed(b, "1236"),
        422,
        "ticket_id: missing",
        None,
        1236,
        False,
    ),
    (
        "non-integer-transaction-id",
        (FIXTURES / "webhook_non_integer_transaction_id.json").read_bytes(),
        lambda b: signed(b, "12x"),
        422,
        "transaction_id: must be a positive integer, got '12x'",
        42,
        None,
        True,
    ),
    (
        "unchanged",
        (FIXTURES / "webhook_unchanged_state.json").read_bytes(),
        lambda b: signed(b, "1237"),
        422,
        "current and previous are both 'Unverified': RolloutProgress did not change",
        42,
        1237,
        True,
    ),
    (
        "not-json",
        (FIXTURES / "webhook_not_json.json").read_bytes(),
        lambda b: signed(b, "1238"),
        400,
        "body is not valid JSON: Expecting ',' delimiter at line 2 column 1",
        None,
        None,
        False,
    ),
    (
        "wrong-content-type",
        GOOD,
        lambda b: signed(b, "1234", content_type="text/plain"),
        415,
        "Content-Type 'text/plain' is not supported; send application/json or "
        "application/x-www-form-urlencoded",
        None,
        None,
        False,
    ),
    (
        "webhook-id-mismatch",
        GOOD,
        lambda b: signed(b, "999"),
        400,
        "webhook-id '999' does not match transaction_id 1234; RT's scrip sends the transaction id "
        "as webhook-id",
        42,
        1234,
        True,
    ),
    (
        "too-large",
        b'{"actor": "' + b"x" * 70_000 + b'"}',
        lambda b: signed(b, "1"),
        413,
        "body is 70013 bytes; the limit is 65536 bytes",
        None,
        None,
        False,
    ),
]


@pytest.mark.parametrize(
    ("body", "make_headers", "status", "message", "ticket_id", "transaction_id", "needs_comment"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_refusal(
    client: TestClient,
    jobs_queue: queue.Queue,
    body: bytes,
    make_headers: Callable[[bytes], dict[str, str]],
    status: int,
    message: str | None,
    ticket_id: int | None,
    transaction_id: int | None,
    needs_comment: bool,
) -> None:
    response = client.post("/hooks/rt", content=body, headers=make_headers(body))
    assert response.status_code == status
    error = response.json()["error"]
    if message is None:
        assert error.startswith("webhook-timestamp: too old (")
    else:
        assert response.json() == {"error": message}
    assert jobs_queue.list_jobs() == []
    (event,) = refusals(jobs_queue)
    who = "signed by RT" if status not in (401, 413) else "signature not verified"
    assert event.detail == f"HTTP {status}: {error} (from 192.0.2.7:40123; {who})"
    assert (event.http_status, event.reason) == (status, error)
    assert event.caller == f"192.0.2.7:40123; {who}"
    assert (event.ticket_id, event.transaction_id) == (ticket_id, transaction_id)
    assert event.needs_comment is needs_comment
    assert [e.id for e in jobs_queue.pending_comments()] == ([event.id] if needs_comment else [])


def test_chunked_body_over_the_limit_is_cut_off(
    client: TestClient, jobs_queue: queue.Queue
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(70):
            yield b"x" * 1024

    response = client.post(
        "/hooks/rt", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {"error": "body is larger than the limit of 65536 bytes"}
    (event,) = refusals(jobs_queue)
    assert event.needs_comment is False


def test_no_secret_or_signature_in_logs_or_events(
    client: TestClient, jobs_queue: queue.Queue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    headers_seen = []
    for key, body in ((KEY, hook_body(1, 7001)), (OTHER_KEY, hook_body(1, 7002)), (KEY, UNKNOWN)):
        msg_id = str(json.loads(body)["transaction_id"])
        headers = signed(body, msg_id, key=key)
        headers_seen.append(headers)
        client.post("/hooks/rt", content=body, headers=headers)
    recorded = json.dumps([vars(e) for e in jobs_queue.events()], default=str)
    for text in (caplog.text, recorded):
        assert SECRET not in text and OTHER_SECRET not in text
        assert base64.b64encode(KEY).decode() not in text
        for headers in headers_seen:
            assert headers["webhook-signature"].split(",")[1] not in text
    assert "hook refused" in caplog.text  # refusals are logged, just without secrets


# -- health and readiness --------------------------------------------------------------------


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


def _take_database_away(db_url: str, jobs_queue: queue.Queue, tmp_path: Path) -> str:
    """Make the database really unavailable; returns a word the reason must contain."""
    url = sa.make_url(db_url)
    if url.get_backend_name() == "postgresql":
        admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{url.database}" WITH (FORCE)'))
        admin.dispose()
        return "does not exist"
    # SQLite: the data directory goes away (unmounted, renamed). Connections open on the old
    # file would go on writing to it, so the pool is emptied as after an error: the next
    # connection finds nothing.
    assert url.database is not None and Path(url.database).parent == tmp_path
    tmp_path.rename(tmp_path.with_name(tmp_path.name + "-gone"))
    jobs_queue.engine.dispose()
    return "unable to open database file"


def test_readyz_and_hooks_answer_503_when_the_database_is_gone(
    client: TestClient, jobs_queue: queue.Queue, db_url: str, tmp_path: Path
) -> None:
    assert client.get("/readyz").status_code == 200
    reason = _take_database_away(db_url, jobs_queue, tmp_path)

    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["error"].startswith("the queue database is unavailable (OperationalError: ")
    assert reason in ready.json()["error"]
    assert client.get("/healthz").status_code == 200  # the process itself is fine

    body = hook_body(42, 6000)
    response = client.post("/hooks/rt", content=body, headers=signed(body, "6000"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    error = response.json()["error"]
    assert error.startswith("the queue database is unavailable (OperationalError: ")
    assert reason in error


# -- group commit through a real server -----------------------------------------------------------


def _fire(port: int, transaction_ids: list[int], statuses: list[int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    try:
        for tid in transaction_ids:
            body = hook_body(tid % 7 + 1, tid)
            conn.request("POST", "/hooks/rt", body=body, headers=signed(body, str(tid)))
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
    finally:
        conn.close()


def test_concurrent_hooks_share_commits_on_a_real_server(jobs_queue: queue.Queue) -> None:
    server = receiver.build_server(settings(port=free_port()), jobs_queue, freeze_gc=False)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + DEADLINE
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        statuses: list[int] = []
        ids = list(range(10_000, 10_400))
        workers = [
            threading.Thread(target=_fire, args=(server.config.port, ids[n::16], statuses))
            for n in range(16)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(DEADLINE)
        assert statuses == [202] * 400
        stored = {j.request.transaction_id for j in jobs_queue.list_jobs(limit=1000)}
        assert stored == set(ids)
        writer = server.config.app.state.inbox
        assert writer.stored == 400
        assert writer.largest_batch > 1 and writer.commits < 400  # hooks shared commits
    finally:
        server.should_exit = True
        thread.join(DEADLINE)
    assert not thread.is_alive()
