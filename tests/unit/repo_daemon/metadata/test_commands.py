"""``commands``: what a tool that is missing, fails or runs too long becomes
(``MetadataToolMissing``, ``MetadataFailed`` with exit code and stderr tail, transient on a
timeout), driven through ``build_metadata`` with a fake ``CommandRunner``."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from repo_daemon import errors
from repo_daemon.metadata import build as metadata
from repo_daemon.metadata import commands
from repo_daemon.metadata import errors as metadata_errors
from tests.support.metadata_runner import (
    FakeRunner,
    apt_repository,
    make_tree,
    signer,
    yum_repository,
)


@pytest.mark.parametrize(
    ("tool", "package"),
    [("createrepo_c", "createrepo-c"), ("apt-ftparchive", "apt-utils"), ("gpg", "gnupg")],
)
def test_a_missing_tool_names_its_debian_package(tmp_path: Path, tool: str, package: str) -> None:
    def missing(
        argv: Sequence[str], *, cwd: Path, stdout: Path | None = None
    ) -> commands.Completed:
        if argv[0] == tool:
            raise FileNotFoundError(2, "No such file or directory", tool)
        return FakeRunner()(argv, cwd=cwd, stdout=stdout)

    with pytest.raises(metadata_errors.MetadataToolMissing) as caught:
        metadata.build_metadata(
            make_tree(tmp_path),
            [yum_repository(), apt_repository()],
            signer=signer(),
            runner=missing,
        )
    assert str(caught.value) == (
        f"{tool} is not installed on the repository host: install the Debian package "
        f"{package} (apt-get install {package})"
    )
    assert isinstance(caught.value, errors.DaemonError)
    assert caught.value.transient is False


def test_a_failing_tool_reports_its_exit_code_and_the_end_of_its_stderr(tmp_path: Path) -> None:
    stderr = "".join(f"line {i}\n" for i in range(40)).encode()
    answers = {"createrepo_c": lambda a, c: commands.Completed(returncode=2, stderr=stderr)}
    with pytest.raises(metadata_errors.MetadataFailed) as caught:
        metadata.build_metadata(
            make_tree(tmp_path), [yum_repository()], runner=FakeRunner(answers=answers)
        )
    failed = caught.value
    assert failed.returncode == 2
    assert failed.argv[0] == "createrepo_c"
    assert failed.stderr_tail == "\n".join(f"line {i}" for i in range(25, 40))
    assert str(failed).startswith(f"createrepo_c failed with exit code 2 indexing {tmp_path}")
    assert str(failed).endswith("line 39")
    assert failed.transient is False


def test_a_timeout_is_transient(tmp_path: Path) -> None:
    def slow(argv: Sequence[str], *, cwd: Path, stdout: Path | None = None) -> commands.Completed:
        raise subprocess.TimeoutExpired(list(argv), 3600)

    with pytest.raises(metadata_errors.MetadataFailed, match="did not finish") as caught:
        metadata.build_metadata(make_tree(tmp_path), [apt_repository()], runner=slow)
    assert caught.value.transient is True
