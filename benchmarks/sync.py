"""The bridge's sync (rsync from a loopback rsync daemon) and verification, next to plain
``rsync -a`` of the same tree from the same daemon in the same run, interleaved: (a) a release
sharing most of its bytes with one already in the repository's pool, (b) a fresh release.

    .venv/bin/python -m benchmarks.sync [--files 1000] [--size-gb 2] [--runs 3]
        [--shared 0.9] [--part both|shared|fresh] [--workdir DIR] [--max-seconds 900]

It writes ``--files`` files of random bytes (``rpms/noarch/*.rpm`` and ``debs/*.deb``, sizes
spread around the mean, ``--size-gb`` in all) into a temporary directory and starts an rsync
daemon on 127.0.0.1 serving it (``tests/support/rsync_server.py``).

(a) **Shared** (``--part shared``): the pool of a repository below the work directory
(``<root>/.pool/<sha[:2]>/<sha>``, 0444, as ``publish.pool`` lays it out) holds the files of
an earlier release; the provider's release shares ``--shared`` (90 %) of its bytes with it
(the same files, copied with other modification times) and the rest is new files. In each
run, in a rotating order, into fresh directories: plain ``rsync -a`` into an empty directory,
``sync.sync_and_verify(…, pool=…)`` (the pooled files placed as hard links, the rest
fetched and verified), ``rsync -a --sockopts=TCP_NODELAY`` (plain rsync with the one socket
option the bridge's rsync has, so the gain of that option is not counted as the pool's) and
``rsync -a --sockopts=TCP_NODELAY`` told to exclude the pooled files (rsync alone fetching
only the new files: the floor of any sync that goes through rsync). It prints wall
seconds, the ratios, and the bytes the daemon says it sent for each (its log), next to what
the sync's result says it placed and transferred.

(b) **Fresh** (``--part fresh``), in each run, in a rotating order, into fresh directories:

1. ``rsync -a -- rsync://127.0.0.1:PORT/bench/ DEST/`` (plain rsync, the reference);
2. ``repo_daemon.sync.fetch.sync("rsync", …)`` alone (then, untimed in the ratio of the
   sync alone, ``verify.verify`` afterwards: "sync then verify");
3. ``sync.sync_and_verify`` (each file hashed as soon as rsync completes it, then verify).

One unmeasured plain rsync warms the daemon and the page cache first. Only one copy exists at
a time (each is removed after it is timed), and dirty pages are flushed (``os.sync``) before
each timed step, so one step's memory and write-back do not land in the next one's time.
It prints wall seconds and the ratios to plain rsync, and CPU seconds of each side: the
receiving rsync (client and receiver: the children this process waited for), this process
(the bridge's threads: hashing, reading rsync's output) and the daemon's sender (its reaped
children). Needs about twice the release's size on disk: with less than 10 GB free it scales
the release down and says so. The load average is printed before and after. Not a test:
nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from repo_daemon.publish import pool as publish_pool
from repo_daemon.release_xml import model as release_model
from repo_daemon.sync import fetch as sync
from repo_daemon.sync import records as sync_records
from repo_daemon.sync import verify
from tests.support.rsync_server import RsyncDaemon

GB = 1000**3
WANTED_FREE = 10 * GB
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds
    cpu: float  # CPU seconds of this process and the children it waited for (the receiving
    #             side: rsync's client and receiver, our threads)
    own: float = 0.0  # of which this process (the bridge's threads: hashing, rsync's output)
    sender: float = 0.0  # the daemon's sender (its reaped children), not in ``cpu``


@dataclass(frozen=True)
class Run:
    plain: Timing  # rsync -a
    sync: Timing  # sync.sync alone
    total: Timing  # sync.sync_and_verify (hashing overlaps the transfer)
    verify: Timing  # verify.verify after sync.sync (for "sync then verify")

    def ratios(self, attr: str) -> tuple[float, float, float]:
        """(sync, sync_and_verify, sync then verify) / plain rsync, by wall or cpu."""
        plain = getattr(self.plain, attr)
        sync_, total, check = (getattr(t, attr) for t in (self.sync, self.total, self.verify))
        return sync_ / plain, total / plain, (sync_ + check) / plain


def daemon_cpu(daemon: RsyncDaemon | None) -> float:
    """CPU seconds of the daemon's reaped children (one sender per connection), so far."""
    if daemon is None or daemon.proc is None:
        return 0.0
    fields = Path(f"/proc/{daemon.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / _TICKS  # cutime, cstime


def measure(step: Callable[[], object], daemon: RsyncDaemon | None = None) -> Timing:
    os.sync()  # earlier steps' dirty pages are not this step's work
    sent_before = daemon_cpu(daemon)
    before, started = os.times(), time.perf_counter()
    step()
    wall, after = time.perf_counter() - started, os.times()
    cpu = sum(after[i] - before[i] for i in range(4))  # user, system, children's user, system
    own = sum(after[i] - before[i] for i in range(2))
    deadline = time.monotonic() + 2  # the daemon reaps its sender a moment after we finish
    sender = daemon_cpu(daemon) - sent_before
    while sender <= 0 and daemon is not None and time.monotonic() < deadline:
        time.sleep(0.02)
        sender = daemon_cpu(daemon) - sent_before
    return Timing(wall=wall, cpu=cpu, own=own, sender=sender)


def write_file(path: Path, size: int, rng: random.Random) -> release_model.PackageFile:
    """``size`` random bytes at ``path``; its PackageFile (path relative to nothing yet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    block = 1024 * 1024
    with path.open("wb") as out:
        left = size
        while left:
            data = rng.randbytes(min(block, left))
            digest.update(data)
            out.write(data)
            left -= len(data)
    return release_model.PackageFile(path=path.name, size=size, sha256=digest.hexdigest())


def make_release(
    root: Path, files: int, total: int, seed: int = 1, prefix: str = "bench"
) -> list[release_model.PackageFile]:
    """``files`` files of random bytes, ``total`` bytes in all, and their PackageFiles."""
    rng = random.Random(seed)  # noqa: S311  (incompressible test data, not secrets)
    weights = [rng.uniform(0.25, 1.75) for _ in range(files)]  # sizes around the mean
    scale = total / sum(weights)
    sizes = [int(w * scale) for w in weights]
    sizes[-1] += total - sum(sizes)
    packages = []
    for i, size in enumerate(sizes):
        rel = (
            f"rpms/noarch/{prefix}-{i:04d}-1.0-1.noarch.rpm"
            if i % 2
            else f"debs/{prefix}-{i:04d}_1.0-1_all.deb"
        )
        made = write_file(root / rel, size, rng)
        packages.append(release_model.PackageFile(path=rel, size=size, sha256=made.sha256))
    return packages


NODELAY = "--sockopts=TCP_NODELAY"  # as the bridge's own argument list has it


def plain_rsync(
    url: str, dest: Path, exclude_from: Path | None = None, *, nodelay: bool = False
) -> None:
    options = [f"--exclude-from={exclude_from}"] if exclude_from else []
    if nodelay:
        options.append(NODELAY)
    subprocess.run(
        ["rsync", "-a", *options, "--", url, f"{dest}/"],  # noqa: S607  (the rsync on PATH)
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )


def check_bytes(result: sync_records.SyncResult, packages: list[release_model.PackageFile]) -> None:
    if result.bytes != sum(p.size for p in packages):
        raise SystemExit(f"synced {result.bytes} bytes, expected {sum(p.size for p in packages)}")


_SENT = re.compile(r"sent (\d+) bytes\s+received \d+ bytes\s+total size \d+")


def sent_bytes(daemon: RsyncDaemon, seen: int) -> tuple[int, int]:
    """(bytes the daemon's log says its next connection after ``seen`` sent, connections)."""
    deadline = time.monotonic() + 10
    while True:
        found = [int(m[1]) for m in _SENT.finditer(daemon.log_file.read_text())]
        if len(found) > seen or time.monotonic() > deadline:
            return (found[seen] if len(found) > seen else -1), len(found)
        time.sleep(0.02)


def pool_release(root: Path, source: Path, packages: list[release_model.PackageFile]) -> None:
    """Lay ``packages`` (below ``source``) out as a repository's pool below ``root``, as a
    publication leaves it: hard links named by SHA-256, read-only."""
    pool = publish_pool.Pool(root)
    for p in packages:
        target = pool.path(p.sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / p.path, target)
        target.chmod(publish_pool.MODE)


def shared_part(
    work: Path, files: int, total: int, shared: float, runs: int, deadline: float
) -> None:
    """(a): a release sharing ``shared`` of its bytes with one in the pool."""
    old_source = work / "old"
    old = make_release(old_source, files, total, seed=2, prefix="old")
    repo = work / "repo"
    pool_release(repo, old_source, old)
    shutil.rmtree(old_source)
    # The new release: the old files (by size order) up to ``shared`` of the bytes, the rest new.
    kept, kept_bytes = [], 0
    for p in old:
        if kept_bytes + p.size > shared * total:
            break
        kept.append(p)
        kept_bytes += p.size
    source = work / "source-shared"
    pool = publish_pool.Pool(repo)
    for p in kept:  # the provider's copies: same bytes, other times
        (source / p.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pool.file(p.sha256), source / p.path)
    fresh = make_release(
        source, max(1, files - len(kept)), total - kept_bytes, seed=3, prefix="new"
    )
    packages = kept + fresh
    print(
        f"(a) shared: {len(packages)} files, {total / GB:.2f} GB; {len(kept)} files, "
        f"{kept_bytes / GB:.2f} GB ({kept_bytes / total:.0%}) already in the pool",
        flush=True,
    )
    excluded = work / "pooled-paths"  # for "rsync of the new files only"
    excluded.write_text("".join(f"/{p.path}\n" for p in kept))
    rows: list[tuple[Timing, Timing, int, int, sync_records.SyncResult, Timing, Timing]] = []
    with RsyncDaemon(work / "rsyncd-shared", {"bench": source}) as daemon:
        url = daemon.url("bench")
        plain_rsync(url, work / "warm-up")  # warms the daemon and the page cache
        shutil.rmtree(work / "warm-up")
        seen = 1
        (work / "scratch").mkdir()
        steps = ("plain", "plain_nodelay", "sync", "new_only")
        for i in range(runs):
            if time.monotonic() > deadline:
                print("stopping early: --max-seconds reached", file=sys.stderr)
                break
            found: dict[str, tuple[Timing, int]] = {}
            result: list[sync_records.SyncResult] = []
            for step in steps[i % 4 :] + steps[: i % 4]:
                dest = work / "scratch" / step  # below the work dir: the pool's file system
                if step == "plain":
                    timing = measure(lambda d=dest: plain_rsync(url, d))
                elif step == "plain_nodelay":
                    timing = measure(lambda d=dest: plain_rsync(url, d, nodelay=True))
                elif step == "new_only":
                    timing = measure(
                        lambda d=dest: plain_rsync(url, d, exclude_from=excluded, nodelay=True)
                    )
                else:
                    timing = measure(
                        lambda d=dest, r=result: r.append(
                            sync.sync_and_verify("rsync", url, d, packages, pool=pool)
                        )
                    )
                sent, seen = sent_bytes(daemon, seen)
                found[step] = (timing, sent)
                shutil.rmtree(dest)
            (plain, plain_sent), (ours, ours_sent) = found["plain"], found["sync"]
            new_only, nodelay = found["new_only"][0], found["plain_nodelay"][0]
            rows.append((plain, ours, plain_sent, ours_sent, result[0], new_only, nodelay))
            print(
                f"run {i + 1}: plain rsync -a {plain.wall:.2f} s, sent {plain_sent:,} B; "
                f"sync_and_verify with the pool {ours.wall:.2f} s (x{ours.wall / plain.wall:.3f})"
                f", sent {ours_sent:,} B; placed {result[0].placed_files} files "
                f"({result[0].placed_bytes:,} B), transferred {result[0].transferred_files} "
                f"files ({result[0].transferred_bytes:,} B); rsync -a of the new files only "
                f"{new_only.wall:.2f} s (x{new_only.wall / plain.wall:.3f}); plain rsync -a "
                f"{NODELAY} {nodelay.wall:.2f} s (the bridge x{ours.wall / nodelay.wall:.3f} "
                "of it)",
                flush=True,
            )
    if rows:
        print(
            f"median: plain rsync -a {statistics.median(r[0].wall for r in rows):.2f} s "
            f"({statistics.median(r[2] for r in rows):,} B sent); sync_and_verify with the "
            f"pool {statistics.median(r[1].wall for r in rows):.2f} s "
            f"({statistics.median(r[3] for r in rows):,} B sent); ratio x"
            f"{statistics.median(r[1].wall / r[0].wall for r in rows):.3f} "
            f"(runs: {', '.join(f'{r[1].wall / r[0].wall:.3f}' for r in rows)}); rsync -a of "
            f"the new files only ({NODELAY}) {statistics.median(r[5].wall for r in rows):.2f}"
            f" s, x{statistics.median(r[5].wall / r[0].wall for r in rows):.3f}; plain rsync -a"
            f" {NODELAY} {statistics.median(r[6].wall for r in rows):.2f} s, the bridge x"
            f"{statistics.median(r[1].wall / r[6].wall for r in rows):.3f} of it",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary dir")
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--shared", type=float, default=0.9, help="(a): bytes in the pool")
    parser.add_argument("--part", choices=("both", "shared", "fresh"), default="both")
    args = parser.parse_args(argv)

    base = args.workdir or Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    total = int(args.size_gb * GB)
    free = shutil.disk_usage(base).free
    if free < WANTED_FREE:
        scaled = max(int(free / 3), 10 * 1024 * 1024)
        if scaled < total:
            print(
                f"only {free / GB:.1f} GB free in {base} (the benchmark wants 10 GB: the "
                f"release, our copy and rsync's copy): scaling the release down from "
                f"{total / GB:.2f} GB to {scaled / GB:.2f} GB",
                file=sys.stderr,
            )
            total = scaled
    work = Path(tempfile.mkdtemp(prefix="rollout-sync-bench-", dir=base))
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    deadline = time.monotonic() + args.max_seconds
    print(f"load average before: {load_before}", flush=True)
    try:
        if args.part in ("both", "shared"):
            shared_part(work, args.files, total, args.shared, args.runs, deadline)
        if args.part in ("both", "fresh"):
            fresh_part(work, args.files, total, args.runs, deadline)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{os.cpu_count()} CPUs, rsync {rsync_version()}, Python {platform.python_version()}, "
        f"load average before: {load_before}, after: "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    return 0


def fresh_part(work: Path, files: int, total: int, runs_wanted: int, deadline: float) -> None:
    """(b): a fresh release, nothing of it in the pool."""
    source = work / "source"
    print(f"(b) fresh: writing {files} files, {total / GB:.2f} GB of random bytes …", flush=True)
    started = time.perf_counter()
    packages = make_release(source, files, total)
    print(f"  written in {time.perf_counter() - started:.1f} s", flush=True)
    runs: list[Run] = []
    with RsyncDaemon(work / "rsyncd", {"bench": source}) as daemon:
        url = daemon.url("bench")
        print("warm-up: one plain rsync, not measured", flush=True)
        plain_rsync(url, work / "warm-up")
        shutil.rmtree(work / "warm-up")
        for i in range(runs_wanted):
            if time.monotonic() > deadline:
                print("stopping early: --max-seconds reached", file=sys.stderr)
                break
            # One copy at a time (each removed after it is timed), in a rotating order:
            # each starts with the same free memory and disk.
            times: dict[str, Timing] = {}
            steps = ["plain", "sync", "sync_and_verify"]
            for step in steps[i % 3 :] + steps[: i % 3]:
                dest = work / step
                if step == "plain":
                    times[step] = measure(lambda d=dest: plain_rsync(url, d), daemon)
                elif step == "sync":
                    times[step] = measure(
                        lambda d=dest: check_bytes(
                            sync.sync("rsync", url, d, packages=packages), packages
                        ),
                        daemon,
                    )
                    times["verify"] = measure(lambda d=dest: verify.verify(d, packages))
                else:
                    times[step] = measure(
                        lambda d=dest: check_bytes(
                            sync.sync_and_verify("rsync", url, d, packages), packages
                        ),
                        daemon,
                    )
                shutil.rmtree(dest)
            run = Run(
                plain=times["plain"],
                sync=times["sync"],
                total=times["sync_and_verify"],
                verify=times["verify"],
            )
            runs.append(run)
            wall, cpu = run.ratios("wall"), run.ratios("cpu")
            print(
                f"run {i + 1}: wall s (ratio to plain): plain rsync -a {run.plain.wall:.2f}; "
                f"sync {run.sync.wall:.2f} (x{wall[0]:.3f}); sync_and_verify "
                f"{run.total.wall:.2f} (x{wall[1]:.3f}); sync then verify "
                f"{run.sync.wall + run.verify.wall:.2f} (x{wall[2]:.3f})\n"
                f"       CPU s (ratio): plain {run.plain.cpu:.2f}; sync {run.sync.cpu:.2f} "
                f"(x{cpu[0]:.3f}); sync_and_verify {run.total.cpu:.2f} (x{cpu[1]:.3f}); "
                f"sync then verify {run.sync.cpu + run.verify.cpu:.2f} (x{cpu[2]:.3f})",
                flush=True,
            )
    if runs:
        plain = statistics.median(r.plain.wall for r in runs)
        print(
            f"\n{files} files, {total / GB:.2f} GB, {len(runs)} runs\n"
            f"median wall seconds: plain rsync -a {plain:.2f} "
            f"({total / plain / 1024**2:.0f} MiB/s); "
            f"sync {statistics.median(r.sync.wall for r in runs):.2f}; "
            f"sync_and_verify {statistics.median(r.total.wall for r in runs):.2f}; "
            f"verify alone {statistics.median(r.verify.wall for r in runs):.2f}"
        )
        for attr in ("wall", "cpu"):
            ratios = [r.ratios(attr) for r in runs]
            print(
                f"median ratio to plain rsync ({attr}): "
                f"sync x{statistics.median(r[0] for r in ratios):.3f}, "
                f"sync_and_verify x{statistics.median(r[1] for r in ratios):.3f}, "
                f"sync then verify x{statistics.median(r[2] for r in ratios):.3f}"
            )
        for name, pick in (("plain rsync -a", "plain"), ("sync_and_verify", "total")):
            timings = [getattr(r, pick) for r in runs]
            print(
                f"median CPU s, {name}: receiving rsync "
                f"{statistics.median(t.cpu - t.own for t in timings):.2f}, this process "
                f"{statistics.median(t.own for t in timings):.2f}, daemon's sender "
                f"{statistics.median(t.sender for t in timings):.2f}; wall "
                f"{statistics.median(t.wall for t in timings):.2f} s on "
                f"{os.cpu_count()} CPUs"
            )


def rsync_version() -> str:
    argv = ["rsync", "--version"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    return out.stdout.split()[2]


if __name__ == "__main__":
    sys.exit(main())
