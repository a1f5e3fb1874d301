"""The daemon's parts as ``rollout daemon`` assembles them from settings."""

from __future__ import annotations

from pathlib import Path

from bridge import secrets
from bridge.settings import model as settings_model
from bridge.store import database, queue
from repo_daemon.daemon import assemble as service
from repo_daemon.workflow import processor as transitions


def test_the_default_daemon_runs_the_workflow_and_collects_garbage(tmp_path: Path) -> None:
    settings = settings_model.Settings(
        tracker=settings_model.TrackerSettings(
            url="http://127.0.0.1:9/", token=secrets.Secret("t")
        ),
        data_dir=tmp_path,
        repository=settings_model.RepositorySettings(root=tmp_path / "repo"),
    )
    engine = database.create_engine(settings.database())
    database.migrate(engine)
    parts = service.build_parts(settings, queue.Queue(engine), reconcile_changes=False)
    try:
        assert isinstance(parts.processor, transitions.WorkflowProcessor)
        assert parts.processor.work is not None
        daemon = parts.daemon(blocking=False)
        assert "collect_garbage" in daemon.job_ids()
        assert (tmp_path / "repo").is_dir()
    finally:
        parts.close()
        engine.dispose()
