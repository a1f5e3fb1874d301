"""``rollout db upgrade`` creates the schema and is safe to run again."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.store import database
from repo_daemon import cli


def test_db_upgrade_creates_the_schema_and_can_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))
    url = database.default_url(tmp_path)
    engine = database.create_engine(url)
    try:
        assert not database.schema_is_current(engine)
        assert cli.main(["db", "upgrade"]) == 0
        assert database.schema_is_current(engine)
    finally:
        engine.dispose()
    assert cli.main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out == f"database {url} is at the newest schema\n" * 2
