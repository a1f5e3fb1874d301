"""The ``rollout`` command explains itself and maps outcomes to exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from bridge.rt_setup import initialdata
from repo_daemon import cli
from tests.support import paths


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


ALL_COMMANDS = [(), *_commands(cli.cli)]


def test_the_command_tree_has_what_the_docs_promise() -> None:
    names = {" ".join(c) for c in ALL_COMMANDS}
    expected = {"tracker init", "tracker initdata", "tracker show", "tracker sandbox up",
                "tracker sandbox down", "tracker sandbox status", "demo", "daemon", "serve",
                "run", "reconcile", "db upgrade", "queue list", "queue show", "queue retry",
                "queue stats"}  # fmt: skip
    assert expected <= names


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "rollout")
def test_every_command_explains_itself(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: rollout {' '.join(path)}".rstrip())
    command: click.Command = cli.cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    summary = (command.help or "").strip()
    assert len(summary) > 20, f"`rollout {' '.join(path)}` has no real description"
    assert "".join(summary.split("\n")[0].split()) in "".join(out.split())  # wrapping aside
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.help, f"option {param.opts} of `rollout {' '.join(path)}` has no help"


def test_bad_configuration_exits_2_and_lists_problems(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tracker", "show", "1"]) == 2
    err = capsys.readouterr().err
    assert "rt_url is not set (ROLLOUT_RT_URL)" in err
    assert "no RT credentials" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tracker", "show", "not-a-number"]) == 2
    assert "not a valid integer" in capsys.readouterr().err


def test_initdata_prints_the_shipped_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["tracker", "initdata"]) == 0
    assert capsys.readouterr().out == initialdata.render("sw-rel")
    out = tmp_path / "data.pl"
    assert cli.main(["tracker", "initdata", "--queue", "releases", "-o", str(out)]) == 0
    assert "Name => 'releases'" in out.read_text()


def test_a_stopped_sandbox_status_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["tracker", "sandbox", "status", "--dir", str(tmp_path)]) == 1
    assert f"no sandbox in {tmp_path}" in capsys.readouterr().out


def test_workflow_show_prints_and_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["workflow", "show", "--format", "mermaid"]) == 0
    assert capsys.readouterr().out.startswith("stateDiagram-v2\n")
    assert cli.main(["workflow", "show", "--template", "direct"]) == 0
    assert "workflow direct:" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "x"\ninitial = "Submitted"\nterminal = []\ntransitions = ["nonsense"]\n'
        '[states]\nSubmitted = "new"\n'
    )
    assert cli.main(["workflow", "show", "--file", str(bad)]) == 2
    assert "row 1: cannot read 'nonsense'" in capsys.readouterr().err


FIXTURES = paths.ROOT / "fixtures"


def test_release_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["release", "validate", str(FIXTURES / "release_valid.xml")]) == 0
    out = capsys.readouterr().out
    assert "arc-ce 7.1.2" in out and "4 packages, 3,453,638 bytes" in out
    assert cli.main(["release", "validate", str(FIXTURES / "release_dotdot_path.xml")]) == 1
    assert "contains '..'" in capsys.readouterr().err
    assert cli.main(["release", "validate", str(tmp_path / "missing.xml")]) == 1
    assert "release.xml is invalid" in capsys.readouterr().err


def test_repo_gc_on_an_empty_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_REPO_ROOT", str(tmp_path / "repo"))
    assert cli.main(["repo", "gc"]) == 0
    assert "removed 0 pool files" in capsys.readouterr().out


def test_repo_prints_nginx_and_rsyncd_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_REPO_ROOT", str(tmp_path / "repo"))
    assert cli.main(["repo", "nginx-conf", "--listen", "0.0.0.0:80"]) == 0
    nginx = capsys.readouterr().out
    assert "listen 0.0.0.0:80" in nginx and str(tmp_path / "repo") in nginx
    assert cli.main(["repo", "rsyncd-conf", "--port", "8873"]) == 0
    rsyncd = capsys.readouterr().out
    assert "port = 8873" in rsyncd and "read only = yes" in rsyncd
