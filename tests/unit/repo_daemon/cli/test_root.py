"""The root of ``rollout``: every command is there and explains itself, and outcomes map to
exit codes (0, 1 with the cause chain, 2 for configuration and usage)."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from repo_daemon import cli
from repo_daemon.cli import root


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


ALL_COMMANDS = [(), *_commands(root.cli)]


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
    command: click.Command = root.cli
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
