"""Running the metadata tools (createrepo_c, apt-ftparchive, gpg): the ``CommandRunner`` seam,
the real one on ``subprocess``, and ``run`` which turns what a tool did into ``MetadataFailed``
with its exit code and the end of its stderr.

It builds no argument lists (``yum``, ``apt`` and ``signing`` do) and never uses a shell.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from repo_daemon.metadata import errors

STDERR_TAIL_LINES = 15
STDERR_TAIL_CHARS = 2000


@dataclass(frozen=True, kw_only=True)
class Completed:
    """What a finished command returned."""

    returncode: int
    stdout: bytes = b""
    stderr: bytes = b""


class CommandRunner(Protocol):
    """Runs one command (an argument list, never a shell line) in ``cwd`` and waits for it;
    its standard output goes to the file ``stdout`` when one is given (an index of 10,000
    packages is megabytes), else into ``Completed.stdout``.

    Raises ``FileNotFoundError`` when the program does not exist and
    ``subprocess.TimeoutExpired`` when it ran too long; a non-zero exit is returned, not raised.
    """

    def __call__(
        self, argv: Sequence[str], *, cwd: Path, stdout: Path | None = None
    ) -> Completed: ...


@dataclass(frozen=True)
class SubprocessRunner:
    """The real ``CommandRunner``: ``subprocess.run`` in the C locale, output captured."""

    timeout: float = 3600.0

    def __call__(self, argv: Sequence[str], *, cwd: Path, stdout: Path | None = None) -> Completed:
        with contextlib.ExitStack() as stack:
            out = subprocess.PIPE if stdout is None else stack.enter_context(stdout.open("wb"))
            proc = subprocess.run(
                list(argv),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.PIPE,
                timeout=self.timeout,
                check=False,
                env={**os.environ, "LC_ALL": "C"},
            )
        return Completed(returncode=proc.returncode, stdout=proc.stdout or b"", stderr=proc.stderr)


def run(
    runner: CommandRunner,
    argv: Sequence[str],
    *,
    cwd: Path,
    what: str,
    check: bool = True,
    stdout: Path | None = None,
) -> Completed:
    """Run ``argv`` with ``runner``; ``what`` says what it was doing, for the message.

    Raises ``MetadataToolMissing`` when the tool is not installed, ``MetadataFailed`` when it
    cannot start, times out (transient) or, with ``check``, exits non-zero.
    """
    tool = argv[0]
    try:
        result = runner(argv, cwd=cwd) if stdout is None else runner(argv, cwd=cwd, stdout=stdout)
    except FileNotFoundError as exc:
        if exc.filename not in (None, tool):
            raise errors.MetadataFailed(f"{tool} could not start {what}: {exc}", argv=argv) from exc
        raise errors.MetadataToolMissing(tool) from exc
    except subprocess.TimeoutExpired as exc:
        raise errors.MetadataFailed(
            f"{tool} did not finish {what} within {exc.timeout:g} s",
            argv=argv,
            transient=True,
        ) from exc
    if check and result.returncode != 0:
        end = tail(result.stderr or result.stdout)
        raise errors.MetadataFailed(
            f"{tool} failed with exit code {result.returncode} {what}: {end}",
            argv=argv,
            returncode=result.returncode,
            stderr_tail=end,
        )
    return result


def tail(output: bytes) -> str:
    """The last lines of a tool's output, bounded, for a message."""
    lines = output.decode("utf-8", "replace").strip().splitlines()
    end = "\n".join(lines[-STDERR_TAIL_LINES:])
    return end[-STDERR_TAIL_CHARS:] or "(no output)"
