"""Running the metadata tools (createrepo_c, apt-ftparchive, gpg): the ``CommandRunner`` seam,
the real one on ``subprocess``, and ``run`` which turns what a tool did into ``MetadataFailed``
with its exit code and the end of its stderr.

A tool dies with the process that runs it: on Linux each is started with a parent-death
signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so a daemon killed with SIGKILL (no cleanup
code runs) leaves no createrepo_c indexing a half-built snapshot that nobody will finish.

It builds no argument lists (``yum``, ``apt`` and ``signing`` do) and never uses a shell.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

from repo_daemon.metadata import errors

logger = logging.getLogger(__name__)

STDERR_TAIL_LINES = 15
STDERR_TAIL_CHARS = 2000
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


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
    """The real ``CommandRunner``: ``subprocess.run`` in the C locale, output captured, the
    tool killed when the calling thread dies (``die_with_caller``).

    The thread that starts a tool is the one that waits for it (``subprocess.run``; on a
    timeout it kills the tool before returning), so the parent-death signal, which Linux ties
    to the *thread* that forked, fires exactly when the daemon process dies mid-run: whichever
    thread or worker pool runs jobs, that thread cannot end while its tool runs. Keep it that
    way: never hand a started tool to another thread to wait for.
    """

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
                preexec_fn=die_with_caller(),
            )
        return Completed(returncode=proc.returncode, stdout=proc.stdout or b"", stderr=proc.stderr)


def _load_prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, looked up once in the parent (the child must not load libraries
    between fork and exec); None where there is none (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
        prctl.argtypes = [ctypes.c_int, *[ctypes.c_ulong] * 4]
        prctl.restype = ctypes.c_int
    except (OSError, AttributeError):
        logger.warning("prctl is unavailable: metadata tools will not die with the daemon")
        return None
    return cast("Callable[..., int]", prctl)


_PRCTL = _load_prctl()


def die_with_caller() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when the thread that starts it (and
    so the daemon process) dies; None where Linux's ``prctl`` is missing.

    It runs in the child between ``fork`` and ``exec`` and does only two system calls: set
    the parent-death signal, then check that the parent is still the one that forked it (if
    it died in between, the signal will never come, so the child kills itself).
    """
    prctl = _PRCTL
    if prctl is None:
        return None
    parent = os.getpid()
    death = int(signal.SIGKILL)

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, death, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), death)

    return preexec


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
