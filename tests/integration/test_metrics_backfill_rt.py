"""``rollout metrics backfill`` against a real RT 5: the seeded release history
(``tests.support.metrics_seed``) loaded into RT with RT's own times and actors, backfilled into
a fresh bridge database, gives the records ``write_records`` writes straight into the tables.

The RT is this module's own (200 tickets would disturb the session's RT): its scrips are
disabled while loading and its hook URL is a port nothing listens on, so loading tells no one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bridge import records
from bridge.rt_setup.sandbox import Sandbox, SandboxInfo, free_port
from bridge.secrets import Secret
from bridge.settings import model as settings_model
from bridge.settings.model import TrackerSettings
from bridge.store import database, rebuild, releases, subscription_store, tables
from bridge.store.queue import utcnow
from bridge.tracker.client import TrackerClient
from repo_daemon.cli import metrics_backfill
from repo_daemon.metrics import backfill as backfilling
from repo_daemon.metrics import compute, report
from tests.support import metrics_figures, metrics_seed
from tests.support import rt_history_seed as seed

logger = logging.getLogger(__name__)

GARBAGE = 1201  # a ticket whose RolloutProgress went to a value the bridge does not know
TEAMS = tuple(
    settings_model.EarlyAdopterTeam(name=n, ngi=ngi, group=g, major_releases=m)
    for n, ngi, g, m in metrics_seed.TEAMS
)


@dataclass(frozen=True)
class Loaded:
    info: SandboxInfo
    stories: tuple[metrics_seed.Story, ...]
    seconds: float


@pytest.fixture(scope="module")
def loaded_rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    box = Sandbox(
        tmp_path_factory.mktemp("rt-backfill"),
        bridge_url=f"http://127.0.0.1:{free_port()}/hooks/rt",
    )
    info = box.up()
    try:
        stories = metrics_seed.seeded_history()
        garbage = seed.SeedTicket(
            ticket_id=GARBAGE,
            created_at=stories[-1].created_at + timedelta(days=1),
            creator=metrics_seed.PROVIDER,
            fields={seed.MAJOR: "UMD-5"},
            changes=(
                seed.Change(
                    at=stories[-1].created_at + timedelta(days=2),
                    field=seed.PROGRESS,
                    value="Unverified",
                    actor=metrics_seed.ADMIN,
                ),
                seed.Change(
                    at=stories[-1].created_at + timedelta(days=3),
                    field=seed.PROGRESS,
                    value="Almost done",
                    actor=metrics_seed.QC,
                    stand_in="InVerification",
                ),
            ),
        )
        done = seed.load(info, [*seed.tickets_of(stories), garbage], teams=[t.name for t in TEAMS])
        logger.warning("loaded %s tickets, %s changes in %.1f s", done.tickets, done.changes,
                       done.seconds)  # fmt: skip
        yield Loaded(info=info, stories=stories, seconds=done.seconds)
    finally:
        box.down()


@pytest.fixture
def client(loaded_rt: Loaded) -> Iterator[TrackerClient]:
    info = loaded_rt.info
    with TrackerClient(TrackerSettings(url=info.web_url, token=Secret(info.bridge_token()))) as c:
        yield c


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    made = database.create_engine(db_url)
    yield made
    made.dispose()


def _run(
    engine: sa.Engine, client: TrackerClient, info: SandboxInfo, **kw: Any
) -> backfilling.Report:
    return backfilling.backfill(engine, client, queue=info.queue, teams=TEAMS, **kw)


def _records(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The records the metrics read, without ids, RT transaction ids or bookkeeping times."""
    rel, hist, acc = tables.releases, tables.state_history, tables.early_adopter_acceptances
    with engine.connect() as conn:
        return {
            "releases": [
                tuple(r)
                for r in conn.execute(
                    sa.select(rel.c.ticket_id, rel.c.state, rel.c.major_release,
                              rel.c.emergency, rel.c.stage_report_at).order_by(rel.c.ticket_id)
                )
            ],
            "stays": [
                tuple(r)
                for r in conn.execute(
                    sa.select(hist.c.ticket_id, hist.c.state, hist.c.entered_at, hist.c.left_at,
                              hist.c.actor).order_by(hist.c.ticket_id, hist.c.entered_at)
                )
            ],
            "acceptances": [
                tuple(r)
                for r in conn.execute(
                    sa.select(acc.c.ticket_id, acc.c.team, acc.c.ngi, acc.c.major_release,
                              acc.c.accepted_by, acc.c.accepted_at, acc.c.withdrawn_by,
                              acc.c.withdrawn_at).order_by(acc.c.ticket_id, acc.c.accepted_at)
                )
            ],
        }  # fmt: skip


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in (tables.releases, tables.state_history, tables.early_adopter_acceptances,
                      tables.stage_slots, tables.event_log, tables.deliveries)
        }  # fmt: skip


def test_the_backfilled_records_equal_the_seeded_history_and_the_log_rebuilds_them(
    loaded_rt: Loaded, client: TrackerClient, engine: sa.Engine, tmp_path: Path
) -> None:
    started = time.monotonic()
    report = _run(engine, client, loaded_rt.info)
    took = time.monotonic() - started
    logger.warning("backfilled %s releases in %.1f s (%s RT round trips)",
                   len(report.backfilled), took, client.total_round_trips())  # fmt: skip

    assert report.backfilled == tuple(s.ticket_id for s in loaded_rt.stories)
    assert [s.ticket_id for s in report.skipped] == [GARBAGE]
    (tmp_path / "straight").mkdir()
    straight = database.create_engine(database.default_url(tmp_path / "straight"))
    database.migrate(straight)
    metrics_seed.write_records(straight, loaded_rt.stories)
    assert _records(engine) == _records(straight)
    straight.dispose()
    assert rebuild.check(engine).differences == ()


def test_a_second_run_writes_nothing(
    loaded_rt: Loaded, client: TrackerClient, engine: sa.Engine
) -> None:
    _run(engine, client, loaded_rt.info)
    before = _counts(engine)

    again = _run(engine, client, loaded_rt.info)

    assert again.backfilled == ()
    assert len(again.known) == len(loaded_rt.stories)
    assert _counts(engine) == before


def test_a_ticket_the_bridge_knows_is_left_alone(
    loaded_rt: Loaded, client: TrackerClient, engine: sa.Engine
) -> None:
    store = releases.ReleaseStore(engine)
    store.ensure(1005, state=records.RolloutState.UNVERIFIED, major_release="UMD-4",
                 emergency=False)  # fmt: skip
    before = store.history(1005)

    report = _run(engine, client, loaded_rt.info)

    assert 1005 in report.known and 1005 not in report.backfilled
    assert store.history(1005) == before
    known = store.get(1005)
    assert known is not None and known.state is records.RolloutState.UNVERIFIED


def test_a_ticket_with_an_unknown_rollout_progress_is_skipped_and_reported(
    loaded_rt: Loaded, client: TrackerClient, engine: sa.Engine
) -> None:
    report = _run(engine, client, loaded_rt.info, ticket=GARBAGE)

    assert report.backfilled == ()
    (skipped,) = report.skipped
    assert skipped.ticket_id == GARBAGE
    assert "'Almost done', not a state the bridge knows" in skipped.reason
    assert releases.ReleaseStore(engine).get(GARBAGE) is None


def test_subscribers_get_no_delivery_of_a_backfill(
    loaded_rt: Loaded, client: TrackerClient, engine: sa.Engine
) -> None:
    subscription_store.SubscriptionStore(engine, clock=utcnow).add(
        "everything",
        subscription_store.Spec(url="https://hooks.example.org/in", kinds=("*",)),
        actor="tests",
        enabled=True,
    )
    report = _run(engine, client, loaded_rt.info, ticket=1002)

    assert report.backfilled == (1002,)
    assert _counts(engine)["deliveries"] == 0


def test_the_command_backfills_one_ticket_and_a_dry_run_writes_nothing(
    loaded_rt: Loaded, db_url: str, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = loaded_rt.info
    monkeypatch.setenv("ROLLOUT_RT_URL", info.web_url)
    monkeypatch.setenv("ROLLOUT_RT_TOKEN", info.bridge_token())
    monkeypatch.setenv("ROLLOUT_DATABASE_URL", db_url)
    monkeypatch.setenv("ROLLOUT_QUEUE", info.queue)
    monkeypatch.setenv(
        "ROLLOUT_EARLY_ADOPTERS",
        ",".join(f"{t.name}:{t.ngi}:{t.group}:{'+'.join(t.major_releases)}" for t in TEAMS),
    )

    @click.group()
    @click.pass_context
    def group(ctx: click.Context) -> None:
        ctx.obj = {"config_file": None}

    group.add_command(metrics_backfill.backfill)
    runner = CliRunner()

    dry = runner.invoke(group, ["backfill", "--dry-run", "--ticket", "1002"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith("would backfill 1 release of 1 ticket in ")
    assert _counts(engine)["releases"] == 0

    done = runner.invoke(group, ["backfill", "--ticket", "1002"])
    assert done.exit_code == 0, done.output
    assert done.output.startswith("backfilled 1 release of 1 ticket in ")
    assert [r[0] for r in _records(engine)["releases"]] == [1002]


def _fetches(engine: sa.Engine, stories: tuple[metrics_seed.Story, ...]) -> None:
    """The first fetches from the staged-rollout areas, as ``write_records`` writes them: the
    access check records them as sites download, RT's history has none to backfill."""
    rows = [
        {"ticket_id": s.ticket_id, "person": f.person, "teams": f.team,
         "area": f"stagerollout/{s.major_release}", "first_at": f.at}
        for s in stories
        for f in s.fetches
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(tables.release_fetches.insert(), rows)


def test_the_figures_of_the_backfilled_history_equal_the_hand_worked_table(
    loaded_rt: Loaded, client: TrackerClient, engine: sa.Engine
) -> None:
    _run(engine, client, loaded_rt.info)
    _fetches(engine, loaded_rt.stories)
    since, until = metrics_seed.PERIOD

    found = compute.compute(engine, report.Query(since=since, until=until))

    assert metrics_figures.figures_of(found, metrics_seed.EXPECTED) == metrics_seed.EXPECTED
