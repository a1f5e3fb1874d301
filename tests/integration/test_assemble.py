"""The daemon's parts as ``rollout daemon`` assembles them from settings, and with a processor
passed in (as tests and tools do)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge import records
from bridge import secrets as bridge_secrets
from bridge.settings import model as settings_model
from bridge.store import database, queue
from repo_daemon.daemon import assemble as service
from repo_daemon.publish import repository as publish
from repo_daemon.workflow import processor as workflow
from repo_daemon.workflow import steps
from tests.support import repo_clients


@pytest.fixture
def settings(tmp_path: Path) -> settings_model.Settings:
    return settings_model.Settings(
        tracker=settings_model.TrackerSettings(
            url="http://127.0.0.1:9/", token=bridge_secrets.Secret("t")
        ),
        data_dir=tmp_path,
        repository=settings_model.RepositorySettings(
            root=tmp_path / "repo",
            signing_key=repo_clients.shared_key().fingerprint,
            gnupghome=repo_clients.shared_key().home,
        ),
    )


@pytest.fixture
def jobs(settings: settings_model.Settings) -> Iterator[queue.Queue]:
    engine = database.create_engine(settings.database())
    database.migrate(engine)
    yield queue.Queue(engine)
    engine.dispose()


class ClosingProcessor:
    """Processes nothing; remembers being closed."""

    def __init__(self) -> None:
        self.closed = False

    def gave_up(self, job: records.Job, message: str) -> None:
        """Nothing to tell anyone about a dead letter."""

    def process(self, job: records.Job) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_the_default_daemon_runs_the_workflow_and_collects_garbage(
    settings: settings_model.Settings, jobs: queue.Queue, tmp_path: Path
) -> None:
    parts = service.build_parts(settings, jobs, reconcile_changes=False)
    try:
        assert isinstance(parts.processor, workflow.WorkflowProcessor)
        assert parts.repository is not None
        assert parts.repository.root == (tmp_path / "repo").resolve()
        # The workflow publishes into the same trees the garbage collector cleans.
        work = parts.processor.repository
        assert isinstance(work, steps.RepositoryWork)
        assert work.repository.root == parts.repository.root
        daemon = parts.daemon(blocking=False)
        assert "collect_garbage" in daemon.job_ids()
        assert (tmp_path / "repo").is_dir()
    finally:
        parts.close()


def test_a_processor_passed_in_is_used_and_closed_without_garbage_collection(
    settings: settings_model.Settings, jobs: queue.Queue
) -> None:
    processor = ClosingProcessor()
    parts = service.build_parts(settings, jobs, processor=processor, reconcile_changes=False)
    try:
        assert parts.processor is processor and parts.runner.processor is processor
        assert parts.repository is None
        job_ids = parts.daemon(blocking=False).job_ids()
        assert "collect_garbage" not in job_ids
        assert "event_retention" in job_ids  # the event log's retention (refusals at least), always
        # Webhook deliveries: sent, endpoints judged, old ones pruned (docs/operations.md).
        assert {"deliveries", "delivery_health", "delivery_retention"} <= set(job_ids)
    finally:
        parts.close()
    assert processor.closed


def test_garbage_is_collected_in_the_repository_passed_in(
    settings: settings_model.Settings, jobs: queue.Queue, tmp_path: Path
) -> None:
    repository = publish.Repository(settings_model.RepositorySettings(root=tmp_path / "other"))
    parts = service.build_parts(
        settings, jobs, processor=ClosingProcessor(), repository=repository,
        reconcile_changes=False,
    )  # fmt: skip
    try:
        assert parts.repository is repository
        assert "collect_garbage" in parts.daemon(blocking=False).job_ids()
    finally:
        parts.close()
