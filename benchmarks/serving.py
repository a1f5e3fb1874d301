"""Serving under a burst: ``--downloads`` concurrent downloads of one package of ``--size``
bytes from a production area, through the embedded server (``rollout repo serve``, run as
the command in a process of its own) and through nginx running the shipped standalone
configuration (``render_nginx_conf``). The client (``tests/support/serving_load.py``) is this
process: it opens every connection first, then all send their request at once, and checks the
status, length and SHA-256 of every body.

Prints, per server: connections opened, completed downloads, failures by kind, time (from
all connections open to the last byte), throughput, and download times (p50, p99, max).
Run from the repository root:

    .venv/bin/python -m benchmarks.serving
    .venv/bin/python -m benchmarks.serving --downloads 1000 --size 5M --runs 3 --servers nginx
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bridge.settings.model import RepositorySettings
from repo_daemon.publish import index
from repo_daemon.publish import repository as publish
from tests.support.nginx_server import NginxServer
from tests.support.release_factory import scratch_release
from tests.support.serving_load import LoadResult, download_all, embedded_server

AREA = "production/7/updates"
PACKAGE = "rpms/noarch/big-1.0-1.noarch.rpm"


def _size(text: str) -> int:
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def build_repository(workdir: Path, size: int) -> tuple[Path, str]:
    """A repository with one release of one ``size``-byte package in production; its root
    and the package's SHA-256."""
    data = os.urandom(size)
    repo = publish.Repository(RepositorySettings(root=workdir / "repo"), metadata=index.write_index)
    info = scratch_release(workdir / "scratch", "Big", "1.0.0", {PACKAGE: data})
    repo.publish_unverified(1, info, workdir / "scratch")
    repo.promote_to_production(1, info, "7", "Incremental")
    return repo.root, hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def nginx_server(root: Path, workdir: Path) -> Iterator[int]:
    """nginx with the shipped standalone configuration serving ``root``; yields its port."""
    with NginxServer(workdir / "nginx", root) as nginx:
        yield nginx.port


SERVERS = {"embedded": embedded_server, "nginx": nginx_server}


def run_load(
    server: str, root: Path, workdir: Path, *, downloads: int, size: int, sha256: str
) -> LoadResult:
    """One burst against a fresh ``server`` ("embedded" or "nginx")."""
    with SERVERS[server](root, workdir) as port:
        return download_all(
            "127.0.0.1", port, f"/{AREA}/{PACKAGE}", count=downloads, size=size, sha256=sha256
        )


def describe(server: str, result: LoadResult) -> str:
    failures = ", ".join(f"{n} {what}" for what, n in sorted(result.failures.items())) or "none"
    return (
        f"{server:9} {result.peak_open:5} open  {result.completed:5}/{result.downloads} complete"
        f"  failures: {failures}  {result.seconds:6.2f} s"
        f"  {result.mib_per_second:7.0f} MiB/s"
        f"  p50 {result.latency(0.5):5.2f} s  p99 {result.latency(0.99):5.2f} s"
        f"  max {max(result.latencies, default=float('nan')):5.2f} s"
        f"  (connecting {result.connect_seconds:4.2f} s)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--downloads", type=int, default=1000)
    parser.add_argument("--size", default="5M", help="package size (K, M, G suffixes)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--servers", nargs="+", choices=sorted(SERVERS), default=list(SERVERS))
    args = parser.parse_args(argv)
    size = _size(args.size)
    print(
        f"{args.downloads} concurrent downloads of {size:,} bytes, {args.runs} run(s); "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    failed = False
    with tempfile.TemporaryDirectory(prefix="rollout-serving-") as tmp:
        workdir = Path(tmp)
        root, sha256 = build_repository(workdir, size)
        for run in range(args.runs):
            for server in args.servers:
                where = workdir / f"{server}-{run}"
                where.mkdir()
                result = run_load(
                    server, root, where, downloads=args.downloads, size=size, sha256=sha256
                )
                failed = failed or result.completed != result.downloads
                print(describe(server, result), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
