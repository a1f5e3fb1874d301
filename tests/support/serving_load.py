"""Load on the servers of the trees, for the serving tests and ``benchmarks/serving.py``: many
concurrent HTTP downloads of one file from one client process (every connection is opened
first, then all send their request at once, and every body is read to the end and checked:
status 200, length, SHA-256), and ``rollout repo serve`` run as the command, in a process of
its own, so that the client never shares the server's interpreter.

Plain asyncio streams (HTTP/1.1, ``Connection: close``, no client library in the way): what is
measured is the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bridge.rt_setup.sandbox import free_port
from tests.support import paths

_CHUNK = 1024 * 1024


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoadResult:
    """What ``download_all`` saw. ``seconds`` runs from the moment every connection was open
    (or had failed) until the last body was read; ``connect_seconds`` is the time to open
    them all."""

    downloads: int
    completed: int  # status 200, the whole body, the expected SHA-256
    failures: dict[str, int]  # what went wrong -> how many times
    connect_seconds: float
    seconds: float
    bytes_read: int
    latencies: tuple[float, ...]  # request sent -> body read, completed downloads only
    peak_open: int  # connections open at the same time

    @property
    def mib_per_second(self) -> float:
        return self.bytes_read / 1024**2 / self.seconds if self.seconds else 0.0

    def latency(self, quantile: float) -> float:
        """The ``quantile`` (0–1) of the completed downloads' times, in seconds."""
        if not self.latencies:
            return float("nan")
        if len(self.latencies) == 1:
            return self.latencies[0]
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return cuts[min(98, max(0, round(quantile * 100) - 1))]


def raise_file_limit(wanted: int) -> int:
    """Raise the soft limit of open files to ``wanted`` (at most the hard limit); the limit
    in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return int(soft)


def download_all(
    host: str,
    port: int,
    path: str,
    *,
    count: int,
    size: int,
    sha256: str,
    timeout: float = 120.0,
) -> LoadResult:
    """``count`` concurrent GETs of ``path`` on ``host:port``, each expected to answer 200
    with ``size`` bytes whose SHA-256 is ``sha256``. Raises the open-files limit as needed;
    gives up on whatever is unfinished after ``timeout`` seconds (counted as failures)."""
    limit = raise_file_limit(count + 64)
    if limit < count + 16:
        raise RuntimeError(f"open files limited to {limit}: cannot open {count} connections")
    return asyncio.run(_run(host, port, path, count, size, sha256, timeout))


@dataclasses.dataclass
class _State:
    count: int
    opened: int = 0
    settled: int = 0  # connected or failed to
    peak: int = 0
    bytes_read: int = 0

    def __post_init__(self) -> None:
        self.all_settled = asyncio.Event()

    def settle(self) -> None:
        self.settled += 1
        if self.settled == self.count:
            self.all_settled.set()


async def _run(
    host: str, port: int, path: str, count: int, size: int, sha256: str, timeout: float
) -> LoadResult:
    state = _State(count)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: rollout-load\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    started = time.perf_counter()
    tasks = [
        asyncio.create_task(_one(host, port, request, size, sha256, state)) for _ in range(count)
    ]
    failures: Counter[str] = Counter()
    latencies = []
    released = started
    try:
        async with asyncio.timeout(timeout):
            await state.all_settled.wait()
            released = time.perf_counter()
            outcomes = await asyncio.gather(*tasks)
    except TimeoutError:
        for task in tasks:
            task.cancel()
        outcomes = []
        for task in tasks:
            try:
                outcomes.append(await task)
            except asyncio.CancelledError:
                outcomes.append(("timed out", 0.0))
    finished = time.perf_counter()
    for problem, seconds in outcomes:
        if problem is None:
            latencies.append(seconds)
        else:
            failures[problem] += 1
    return LoadResult(
        downloads=count,
        completed=len(latencies),
        failures=dict(failures),
        connect_seconds=released - started,
        seconds=finished - released,
        bytes_read=state.bytes_read,
        latencies=tuple(sorted(latencies)),
        peak_open=state.peak,
    )


async def _one(
    host: str, port: int, request: bytes, size: int, sha256: str, state: _State
) -> tuple[str | None, float]:
    """One download: (None, seconds) when it completed, else (what went wrong, 0)."""
    try:
        reader, writer = await asyncio.open_connection(host, port, limit=_CHUNK)
    except OSError as exc:
        state.settle()
        return f"connect: {type(exc).__name__}", 0.0
    state.opened += 1
    state.peak = max(state.peak, state.opened)
    state.settle()
    try:
        await state.all_settled.wait()  # every download starts together
        sent = time.perf_counter()
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ", 2)
        if len(status) < 2 or status[1] != "200":
            return f"status {status[1] if len(status) > 1 else '?'}", 0.0
        fields = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
        length = {k.strip().lower(): v.strip() for k, v in fields.items()}.get("content-length")
        if length != str(size):
            return f"content-length {length}", 0.0
        digest = hashlib.sha256()
        remaining = size
        while remaining:
            chunk = await reader.read(min(_CHUNK, remaining))
            if not chunk:
                return "short body", 0.0
            digest.update(chunk)
            remaining -= len(chunk)
            state.bytes_read += len(chunk)
        if digest.hexdigest() != sha256:
            return "sha256 mismatch", 0.0
        return None, time.perf_counter() - sent
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        return f"read: {type(exc).__name__}", 0.0
    finally:
        state.opened -= 1
        writer.close()


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port}") from None
            time.sleep(0.05)


@contextlib.contextmanager
def embedded_server(root: Path, workdir: Path, *, open_files: int = 1024) -> Iterator[int]:
    """``rollout repo serve`` (``python -m repo_daemon``) serving ``root``; yields its port.
    It starts with a soft limit of ``open_files`` (a login shell's usual 1,024: the command
    must raise it itself). Its log goes to ``workdir/embedded.log``."""
    port = free_port()

    def limit_files() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, hard))

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")},
        "PYTHONPATH": str(paths.ROOT),
        "ROLLOUT_REPO_ROOT": str(root),
        "ROLLOUT_DATA_DIR": str(workdir / "data"),
    }
    argv = [sys.executable, "-m", "repo_daemon", "repo", "serve", "--port", str(port)]
    with (workdir / "embedded.log").open("wb") as log:
        process = subprocess.Popen(
            argv, env=env, cwd=paths.ROOT, stdout=log, stderr=log, preexec_fn=limit_files
        )
        try:
            _wait_listening(port, process)
            yield port
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
