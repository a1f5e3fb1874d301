"""docs/events.md's feed section stays true: its `rollout events` sessions are run, in order,
on the story of tests/support/feed_story.py and must print exactly what the page shows; its
API example and its 422 example are asked of the API."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from bridge.store import database
from repo_daemon import cli
from tests.integration.test_events_api import make_client
from tests.support import feed_story, paths
from tests.support.feed_access import ADA

DOC = (paths.ROOT / "docs" / "events.md").read_text()
SECTION = DOC.split("<!-- section: feed -->", 1)[1].split("<!-- end section: feed -->", 1)[0]
BLOCKS = re.findall(r"```console\n(.*?)```", SECTION, flags=re.S)


def _sessions() -> list[tuple[list[str], str]]:
    """(argv, expected output) of every `$ rollout ...` in the section, in order."""
    found: list[tuple[list[str], str]] = []
    for block in BLOCKS:
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, output = chunk.partition("\n")
            argv = shlex.split(command)
            if argv[0] == "rollout":
                found.append((argv[1:], output))
    return found


@pytest.fixture
def story_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))
    for name in ("ROLLOUT_DATABASE_URL", "ROLLOUT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    engine = database.create_engine(database.default_url(tmp_path))
    database.migrate(engine)
    feed_story.write_story(engine)
    engine.dispose()
    return tmp_path


def test_the_sessions_on_the_page_print_what_it_shows(
    story_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sessions = _sessions()
    assert len(sessions) == 5
    for argv, expected in sessions:
        assert cli.main(argv) == 0, argv
        assert capsys.readouterr().out == expected, argv


def test_the_api_example_answers_what_the_page_shows(story_db: Path) -> None:
    example = next(b for b in BLOCKS if b.startswith("$ curl"))
    url = re.search(r"'(https://bridge\.example\.org[^']+)'", example)
    assert url is not None
    engine = database.create_engine(database.default_url(story_db))
    try:
        with make_client(engine) as client:
            body = client.get(url.group(1), headers=ADA).json()
    finally:
        engine.dispose()
    (event,) = body["events"]
    shown = re.search(r'\{"id":(\d+),"at":"([^"]+)","kind":"(\w+)"', example)
    assert shown is not None
    assert (str(event["id"]), event["at"], event["kind"]) == shown.groups()
    assert f'"next":"{body["next"]}"' in example
    assert f'"resume_after":{body["resume_after"]}' in example


def test_the_422_example_is_what_the_api_says(story_db: Path) -> None:
    engine = database.create_engine(database.default_url(story_db))
    try:
        with make_client(engine) as client:
            (problem,) = client.get("/api/events?since=soon", headers=ADA).json()["detail"]
    finally:
        engine.dispose()
    flat = " ".join(SECTION.split())
    assert f'"loc":["query","since"],"msg":"{problem["msg"]}"' in flat


def test_the_setting_is_in_the_configuration_reference() -> None:
    configuration = (paths.ROOT / "docs" / "configuration.md").read_text()
    assert "| `ROLLOUT_EVENTS_API_ROLES` | `admin` |" in configuration
