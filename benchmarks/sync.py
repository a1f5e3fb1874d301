"""First sync of a large release through the bridge's sync (rsync from a loopback rsync daemon)
and verify, next to plain ``rsync -a`` of the same tree from the same daemon in the same run.

    .venv/bin/python -m benchmarks.sync [--files 1000] [--size-gb 2] [--runs 3]
        [--workdir DIR] [--max-seconds 900]

It writes ``--files`` files of random bytes (``rpms/noarch/*.rpm`` and ``debs/*.deb``, sizes
spread around the mean, ``--size-gb`` in all) into a temporary directory, starts an rsync
daemon on 127.0.0.1 serving it (``tests/support/rsync_server.py``), and in each run, in a rotating
order, into fresh directories:

1. ``rsync -a -- rsync://127.0.0.1:PORT/bench/ DEST/`` (plain rsync, the reference);
2. ``repo_daemon.sync.fetch.sync("rsync", …)`` alone (then, untimed in the ratio of the
   sync alone, ``verify.verify`` afterwards: "sync then verify");
3. ``sync.sync_and_verify`` (each file hashed as soon as rsync completes it, then verify).

One unmeasured plain rsync warms the daemon and the page cache first. Only one copy exists at
a time (each is removed after it is timed), and dirty pages are flushed (``os.sync``) before
each timed step, so one step's memory and write-back do not land in the next one's time.
It prints wall seconds and the ratios to plain rsync, and the same for CPU seconds of the
receiving side (this process and the rsync it waited for; steadier than wall time on a
shared machine). Needs about twice the release's size on disk: with less than 10 GB free it
scales the release down and says so. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from repo_daemon.release_xml import model as release_model
from repo_daemon.sync import fetch as sync
from repo_daemon.sync import records as sync_records
from repo_daemon.sync import verify
from tests.support.rsync_server import RsyncDaemon

GB = 1000**3
WANTED_FREE = 10 * GB


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds
    cpu: float  # CPU seconds of this process and the children it waited for (the receiving
    #             side: rsync's client and receiver, our threads); the daemon's sender is not
    #             counted, it is the same work for every step


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


def measure(step: Callable[[], object]) -> Timing:
    os.sync()  # earlier steps' dirty pages are not this step's work
    before, started = os.times(), time.perf_counter()
    step()
    wall, after = time.perf_counter() - started, os.times()
    cpu = sum(after[i] - before[i] for i in range(4))  # user, system, children's user, system
    return Timing(wall=wall, cpu=cpu)


def make_release(
    root: Path, files: int, total: int, seed: int = 1
) -> list[release_model.PackageFile]:
    """``files`` files of random bytes, ``total`` bytes in all, and their PackageFiles."""
    rng = random.Random(seed)  # noqa: S311  (incompressible test data, not secrets)
    weights = [rng.uniform(0.25, 1.75) for _ in range(files)]  # sizes around the mean
    scale = total / sum(weights)
    sizes = [int(w * scale) for w in weights]
    sizes[-1] += total - sum(sizes)
    packages = []
    block = 1024 * 1024
    for i, size in enumerate(sizes):
        rel = (
            f"rpms/noarch/bench-{i:04d}-1.0-1.noarch.rpm"
            if i % 2
            else f"debs/bench-{i:04d}_1.0-1_all.deb"
        )
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with path.open("wb") as out:
            left = size
            while left:
                data = rng.randbytes(min(block, left))
                digest.update(data)
                out.write(data)
                left -= len(data)
        packages.append(release_model.PackageFile(path=rel, size=size, sha256=digest.hexdigest()))
    return packages


def plain_rsync(url: str, dest: Path) -> None:
    subprocess.run(
        ["rsync", "-a", "--", url, f"{dest}/"],  # noqa: S607  (the rsync on PATH, as ours)
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )


def check_bytes(result: sync_records.SyncResult, packages: list[release_model.PackageFile]) -> None:
    if result.bytes != sum(p.size for p in packages):
        raise SystemExit(f"synced {result.bytes} bytes, expected {sum(p.size for p in packages)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary dir")
    parser.add_argument("--max-seconds", type=float, default=900.0)
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
    try:
        source = work / "source"
        print(f"writing {args.files} files, {total / GB:.2f} GB of random bytes …", flush=True)
        started = time.perf_counter()
        packages = make_release(source, args.files, total)
        print(f"  written in {time.perf_counter() - started:.1f} s", flush=True)
        runs: list[Run] = []
        with RsyncDaemon(work / "rsyncd", {"bench": source}) as daemon:
            url = daemon.url("bench")
            print("warm-up: one plain rsync, not measured", flush=True)
            plain_rsync(url, work / "warm-up")
            shutil.rmtree(work / "warm-up")
            for i in range(args.runs):
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
                        times[step] = measure(lambda d=dest: plain_rsync(url, d))
                    elif step == "sync":
                        times[step] = measure(
                            lambda d=dest: check_bytes(
                                sync.sync("rsync", url, d, packages=packages), packages
                            )
                        )
                        times["verify"] = measure(lambda d=dest: verify.verify(d, packages))
                    else:
                        times[step] = measure(
                            lambda d=dest: check_bytes(
                                sync.sync_and_verify("rsync", url, d, packages), packages
                            )
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
                f"\n{args.files} files, {total / GB:.2f} GB, {len(runs)} runs, "
                f"{os.cpu_count()} CPUs, rsync {rsync_version()}, "
                f"Python {platform.python_version()}, load average before: {load_before}\n"
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
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def rsync_version() -> str:
    argv = ["rsync", "--version"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    return out.stdout.split()[2]


if __name__ == "__main__":
    sys.exit(main())
