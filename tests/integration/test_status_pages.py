"""The status pages on the receiver's app (FastAPI's TestClient) on real databases (SQLite and
PostgreSQL) holding a known history (``event_history``): what each page shows, text from
outside escaped, and who may see them (401 with the RT login challenge, 403, 422, 404)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from bridge import records, secrets
from bridge.intake import receiver
from bridge.settings import model as settings_model
from bridge.store import database, retry
from bridge.store import queue as jobqueue
from repo_daemon.web import metrics_api
from repo_daemon.web.status import pages
from tests.support import event_history, feed_access, metrics_seed
from tests.support.feed_access import ADA, QUINN

SECRET = "whsec_" + base64.b64encode(b"status-pages-test-secret").decode()
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = database.create_engine(db_url)
    yield engine
    engine.dispose()


def _client(engine: sa.Engine, history: event_history.History, roles: tuple[str, ...] = ("admin",)
            ) -> TestClient:  # fmt: skip
    settings = settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="https://rt.example.org/rt/"),
        receiver=settings_model.ReceiverSettings(hook_secret=secrets.Secret(SECRET)),
    )
    now = history.clock() + timedelta(hours=3)
    access = feed_access.feed_access(roles, realm=metrics_api.REALM)
    routes = pages.router(engine, settings, access, clock=lambda: now)
    app = receiver.create_app(settings, jobqueue.Queue(engine), routers=[routes])
    return TestClient(app)


@pytest.fixture
def history(engine: sa.Engine) -> event_history.History:
    found = event_history.write(engine)
    # A change that keeps failing, with an error quoting hostile text from outside.
    job = found.queue.enqueue(
        records.ReleaseRequest(
            ticket_id=5,
            transaction_id=501,
            actor=HOSTILE,
            current=records.RolloutState.UNVERIFIED,
            previous=records.RolloutState.SUBMITTED,
        )
    )
    claimed = [j for j in found.queue.claim("w1", limit=10) if j.id == job]
    policy = retry.RetryPolicy(base_delay=60, max_attempts=5, jitter=0)
    assert found.queue.fail(claimed[0], "w1", HOSTILE, transient=True, policy=policy)
    return found


def test_the_overview_shows_the_slot_its_holder_the_deferred_release_and_the_queue(
    engine: sa.Engine, history: event_history.History
) -> None:
    with _client(engine, history) as client:
        answer = client.get("/status", headers=ADA)
    assert answer.status_code == 200, answer.text
    html = answer.text
    slot = html[html.index('id="slot-1"') : html.index("</article>")]
    assert ">UMD-5<" in slot
    held = slot[slot.index("Held by") : slot.index("Deferred behind it")]
    assert 'href="/status/releases/3"' in held and "emergency" in held
    assert 'href="/status/releases/4"' in slot[slot.index("Deferred behind it") :]
    assert '<th scope="row">dead</th><td class="num">1</td>' in html
    assert '<th scope="row">StageRollout</th><td class="num">1</td>' in html
    assert "RT unavailable" in html  # the dead job's error
    assert "failing, retry pending" in html  # the job waiting for its retry
    assert "3 h ago" in html and "2026-11-24 09:01:04Z" in html
    assert "Latest events" in html and "transition_done" in html


def test_text_from_outside_is_escaped_on_the_overview_and_the_release_page(
    engine: sa.Engine, history: event_history.History
) -> None:
    with _client(engine, history) as client:
        pages_html = [client.get(u, headers=ADA).text for u in ("/status", "/status/releases/5")]
    for html in pages_html:
        assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages_html[0]


def test_the_release_page_shows_the_timeline_attempts_areas_and_the_rt_link(
    engine: sa.Engine, history: event_history.History
) -> None:
    with _client(engine, history) as client:
        one = client.get("/status/releases/1", headers=ADA).text
        three = client.get("/status/releases/3", headers=ADA).text
    assert "<h1>Release 1</h1>" in one
    timeline = one[one.index('id="states"') : one.index('id="changes"')]
    states = [s for s in ("Submitted", "Unverified", "InVerification", "StageRollout",
                          "Production") if f'<th scope="row">{s}</th>' in timeline]  # fmt: skip
    assert states == ["Submitted", "Unverified", "InVerification", "StageRollout", "Production"]
    assert 'href="https://rt.example.org/rt/Ticket/Display.html?id=1"' in one
    assert "production/umd5/base" in one  # the area the bridge recorded
    assert "No file list: the frozen release.xml is not on this host." in one
    assert "Attempts of job 3" in three and "RT unavailable" in three and "dead" in three


def test_an_unknown_ticket_is_404_and_a_word_is_422(
    engine: sa.Engine, history: event_history.History
) -> None:
    with _client(engine, history) as client:
        unknown = client.get("/status/releases/999", headers=ADA)
        word = client.get("/status/releases/abc", headers=ADA)
    assert unknown.status_code == 404 and "No release 999" in unknown.text
    assert word.status_code == 422 and "Not a ticket number" in word.text


def test_without_a_login_401_with_the_challenge_and_without_a_status_role_403(
    engine: sa.Engine, history: event_history.History
) -> None:
    with _client(engine, history, roles=("admin",)) as client:
        anonymous = client.get("/status")
        quinn = client.get("/status/metrics", headers=QUINN)
        wrong = client.get("/status/releases/1", headers=feed_access.basic("ada", "bad"))
        css = client.get(pages.CSS_PATH)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith('Basic realm="Rollout status"')
    assert "UMD-5" not in anonymous.text
    assert quinn.status_code == 403 and "no role" in quinn.text
    assert wrong.status_code == 401
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_the_metrics_page_draws_labelled_svg_plots_with_tables_and_downloads(
    engine: sa.Engine, history: event_history.History
) -> None:
    metrics_seed.write_records(engine, metrics_seed.seeded_history())
    with _client(engine, history) as client:
        answer = client.get(
            "/status/metrics", params={"from": "2025-11", "to": "2026-12"}, headers=ADA
        )
        bad = client.get("/status/metrics", params={"from": "2026-13"}, headers=ADA)
    assert answer.status_code == 200, answer.text
    html = answer.text
    assert html.count("<svg ") == 2 and html.count('role="img"') == 2
    assert '<title id="monthly-title">Releases per month</title>' in html
    assert '<title id="states-title">Time spent in each state</title>' in html
    assert 'href="/api/metrics?from=2025-11&amp;to=2026-12&amp;format=csv"' in html
    assert '<label for="from">' in html and '<label for="major_release">' in html
    assert '<th scope="row">2025-11</th>' in html and '<th scope="row">2026-12</th>' in html
    assert bad.status_code == 422 and "From:" in bad.text
