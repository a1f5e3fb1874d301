"""docs/events.md, section "integrity", stays true: each console block is run (on a fresh
database with the history of ``tests/support/event_history.py``, written in 2020, after the SQL
blocks and retention the page describes before it) and must print what the page shows, but
for hashes and the data directory."""

from __future__ import annotations

import re
import shlex
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bridge.store import database, queue, retention
from bridge.store import events as eventlog
from repo_daemon import cli
from tests.support import event_history, paths

DOC = (paths.ROOT / "docs" / "events.md").read_text()
SECTION = DOC.split("<!-- section: integrity -->")[1].split("<!-- end section: integrity -->")[0]
BLOCKS = re.findall(r"```(console|sql)\n(.*?)```", SECTION, flags=re.S)
CONSOLES = [text for lang, text in BLOCKS if lang == "console"]
SQL = [text.strip() for lang, text in BLOCKS if lang == "sql"]
HASH = re.compile(r"[0-9a-f]{64}")
DATA_DIR = "/var/lib/rollout"


def _runs(block: str) -> list[tuple[list[str], list[str]]]:
    """Each ``$ rollout …`` command of a console block, with the lines it prints."""
    found: list[tuple[list[str], list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            found.append((shlex.split(line[2:])[1:], []))
        else:
            found[-1][1].append(line)
    return found


def _prune_old_claims(history: event_history.History) -> None:
    rule = retention.Rule(
        kinds=(eventlog.EventKind.JOB_CLAIMED, eventlog.EventKind.ACTION_DONE),
        older_than=timedelta(days=90),
    )
    history.clock.now = queue.utcnow()  # as the command would, today
    retention.prune(history.queue, [rule], export_dir=None)


# What comes before each console block, in the page's words: the SQL block shown just above
# it, and for the rebuild after retention, the prune the page describes.
SETUP = {
    "verify-broken": (SQL[0], False),
    "rebuild-differs": (SQL[1], True),
}


def _setup_of(block: str) -> tuple[str | None, bool]:
    if "chain broken" in block:
        return SETUP["verify-broken"]
    if "not checked (history pruned)" in block:
        return SETUP["rebuild-differs"]
    return None, False


def test_the_page_has_the_blocks_this_test_runs() -> None:
    assert len(CONSOLES) == 5 and len(SQL) == 2
    assert [c for c in CONSOLES if "not checked" in c and "rollout events prune" not in c]


@pytest.mark.parametrize("block", CONSOLES, ids=[f"block{i + 1}" for i in range(len(CONSOLES))])
def test_each_console_block_prints_what_the_page_shows(
    block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(data_dir))
    engine = database.create_engine(database.default_url(data_dir))
    database.migrate(engine)
    history = event_history.write(engine, event_history.FakeClock(datetime(2020, 1, 6, 9)))
    sql, pruned = _setup_of(block)
    if pruned:
        _prune_old_claims(history)
    if sql:
        with engine.begin() as conn:
            conn.execute(sa.text(sql.rstrip(";")))
    engine.dispose()
    for argv, shown in _runs(block):
        code = cli.main(argv)
        out = capsys.readouterr().out.replace(str(data_dir), DATA_DIR)
        expected = "\n".join(shown) + "\n"
        assert HASH.sub("HASH", out) == HASH.sub("HASH", expected), argv
        failing = out.startswith(("chain broken", "release ", "1 difference"))
        assert code == (1 if failing else 0), (argv, out)
