"""Promotion time: a release of many packages moved from unverified to stagerollout and to
production, once with large files (2 GB in all by default) and once with 1 KB files, to show
that promotion costs per file, not per byte (hard links into the pool, no bytes copied).

Writes random package files into a scratch tree on the disk of ``--dir`` (the system's temp
directory by default), pools them with ``publish_unverified`` (the one step that touches the
bytes: hard links plus an fsync of each new file), then times ``promote_to_stagerollout``
and ``promote_to_production`` ``--runs`` times, each run with another release of the same
files. Checks free space first and scales the large case down when less than 8 GB is free.
With ``--area-sizes 1000,10000,100000``, it measures instead how promotion depends on the
size of the target area: a 1,000-file release promoted into a production area already holding
N files (contents from a pool of 1,000 distinct 1 KB files, so setting up 100,000 files costs
links, not bytes), ``--runs`` times per size, each timed promotion withdrawn again (untimed)
so the area keeps N files, and ``os.sync()`` (untimed) before each timed promotion so none
pays for the write-back of the one before. ``--layout snapshots,tree`` runs both layouts,
interleaved run by run, and prints per layout and size the median and the ratio of the
largest size's median to the smallest's. No metadata step (measured elsewhere).
Run from the repository root:

    .venv/bin/python -m benchmarks.promotion
    .venv/bin/python -m benchmarks.promotion --packages 1000 --total-bytes 2G --runs 5
    .venv/bin/python -m benchmarks.promotion --area-sizes 1000,10000,100000 \
        --layout snapshots,tree --runs 5
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bridge.settings.model import RepositorySettings
from repo_daemon.publish import areas, fsops
from repo_daemon.publish import repository as publish
from repo_daemon.release_xml import model as release_model
from tests.support.release_factory import release_info

GB = 1024**3
MIN_FREE = 8 * GB
_BLOCK = 1024 * 1024


def _size(text: str) -> int:
    units = {"K": 1024, "M": 1024**2, "G": GB}
    text = text.strip().upper().removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _generate(scratch: Path, packages: int, each: int) -> tuple[release_model.PackageFile, ...]:
    """``packages`` files of ``each`` bytes: a random block, made unique per file."""
    block = os.urandom(min(each, _BLOCK))
    files = []
    for i in range(packages):
        path = f"rpms/bench-{i:05d}.rpm"
        target = scratch / path
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with target.open("wb") as out:
            remaining = each
            for source in itertools.chain([os.urandom(32)], itertools.repeat(block)):
                chunk = source[:remaining]
                out.write(chunk)
                digest.update(chunk)
                remaining -= len(chunk)
                if not remaining:
                    break
        files.append(release_model.PackageFile(path=path, size=each, sha256=digest.hexdigest()))
    return tuple(files)


def _release(
    short: str, packages: tuple[release_model.PackageFile, ...]
) -> release_model.ReleaseInfo:
    return release_info(short, "1.0.0", packages, technology_provider="benchmark")


@dataclasses.dataclass
class Case:
    name: str
    packages: int
    each: int
    generate: float = 0.0
    pool_in: float = 0.0
    publish_again: list[float] = dataclasses.field(default_factory=list)
    stage: list[float] = dataclasses.field(default_factory=list)
    production: list[float] = dataclasses.field(default_factory=list)
    same_inode: bool = False
    links: int = 0


def _run(case: Case, work: Path, runs: int, layout: str = "snapshots") -> None:
    scratch = work / f"scratch-{case.name}"
    started = time.perf_counter()
    packages = _generate(scratch, case.packages, case.each)
    case.generate = time.perf_counter() - started
    repo = publish.Repository(
        RepositorySettings(root=work / f"repo-{case.name}", keep_snapshots=3, area_layout=layout)
    )
    first = _release("Bench0", packages)
    started = time.perf_counter()
    repo.publish_unverified(1, first, scratch)
    case.pool_in = time.perf_counter() - started
    for run in range(runs):
        # another release of the same files each run: the pool has them, the work per run
        # is the same (the areas hold 1 release's worth of paths), nothing is copied
        info = _release(f"Bench{run}", packages)
        ticket = run + 1
        if run:
            started = time.perf_counter()
            repo.publish_unverified(ticket, info, scratch)
            case.publish_again.append(time.perf_counter() - started)
        started = time.perf_counter()
        repo.promote_to_stagerollout(ticket, info, "7")
        case.stage.append(time.perf_counter() - started)
        if run == 0:
            probe = packages[-1]
            inodes = {
                (repo.root / area / probe.path).stat().st_ino
                for area in ("unverified/Bench0/1.0.0", "stagerollout/7")
            }
            inodes.add(repo.pool.path(probe.sha256).stat().st_ino)
        started = time.perf_counter()
        repo.promote_to_production(ticket, info, "7", "Incremental")
        case.production.append(time.perf_counter() - started)
        if run == 0:
            inodes.add((repo.root / "production/7/updates" / probe.path).stat().st_ino)
            case.same_inode = len(inodes) == 1
    case.links = repo.pool.path(packages[-1].sha256).stat().st_nlink
    fsops.delete_tree(repo.root)
    shutil.rmtree(scratch)


def _growth(work: Path, releases: int, packages: int, each: int) -> list[tuple[int, float]]:
    """Promotion time as a production area accumulates ``releases`` releases of ``packages``
    distinct files each: (files in the area after the promotion, seconds)."""
    repo = publish.Repository(RepositorySettings(root=work / "repo-growth", keep_snapshots=3))
    found = []
    for n in range(releases):
        scratch = work / f"scratch-growth-{n}"
        packages_n = tuple(
            dataclasses.replace(p, path=f"r{n:03d}/{p.path}")
            for p in _generate(scratch / f"r{n:03d}", packages, each)
        )
        # _generate wrote below scratch/r<n>/; the release's paths carry that prefix
        info = _release(f"Grow{n}", packages_n)
        repo.publish_unverified(n + 1, info, scratch)
        started = time.perf_counter()
        repo.promote_to_production(n + 1, info, "7", "Incremental")
        found.append(((n + 1) * packages, time.perf_counter() - started))
        shutil.rmtree(scratch)
    fsops.delete_tree(repo.root)
    return found


def _blobs(work: Path, count: int) -> tuple[release_model.PackageFile, ...]:
    """``count`` distinct 1 KB files, generated once (their contents fill every area)."""
    return _generate(work / "scratch-blobs", count, 1024)


def _filled(
    blobs: tuple[release_model.PackageFile, ...], prefix: str, count: int
) -> tuple[release_model.PackageFile, ...]:
    """``count`` package paths below ``prefix`` whose contents cycle through ``blobs``."""
    return tuple(
        dataclasses.replace(blobs[i % len(blobs)], path=f"{prefix}/{i // 1000:03d}/p{i:06d}.rpm")
        for i in range(count)
    )


@dataclasses.dataclass
class SizeCase:
    layout: str
    size: int
    repo: publish.Repository
    times: list[float] = dataclasses.field(default_factory=list)


def _area_sizes(work: Path, sizes: list[int], layouts: list[str], runs: int, packages: int) -> None:
    """Median promotion time of a ``packages``-file release into an area of each size, per
    layout, runs interleaved across layouts."""
    blobs = _blobs(work, 1000)
    results: list[SizeCase] = []
    for size in sizes:
        cases = []
        for layout in layouts:
            settings = RepositorySettings(
                root=work / f"repo-{layout}-{size}", keep_snapshots=3, area_layout=layout
            )
            repo = publish.Repository(settings)
            repo.publish_unverified(1, _release("Blobs", blobs), work / "scratch-blobs")
            started = time.perf_counter()
            repo.promote_to_production(2, _release("Filler", _filled(blobs, "fill", size)), "7",
                                       "Incremental")  # fmt: skip
            print(f"  {layout}: an area of {size} files set up in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
            cases.append(SizeCase(layout=layout, size=size, repo=repo))
        for run in range(runs):
            for case in cases:
                info = _release(f"Run{run}", _filled(blobs, f"run{run}", packages))
                ticket = 10 + run
                case.repo.publish_unverified(ticket, info, work / "scratch-blobs")
                # the write-back of the setup and of the other layout's run is not this one's
                os.sync()
                started = time.perf_counter()
                case.repo.promote_to_production(ticket, info, "7", "Incremental")
                case.times.append(time.perf_counter() - started)
                case.repo.remove_from(ticket, [areas.Area("production/7/updates")])
        for case in cases:
            shown = " ".join(f"{v * 1000:.0f}" for v in case.times)
            print(f"  {case.layout:<9} area of {size:>7} files: "
                  f"{statistics.median(case.times) * 1000:7.1f} ms median ({shown} ms); "
                  f"load {_load()}", flush=True)  # fmt: skip
            fsops.delete_tree(case.repo.root)
        results.extend(cases)
    print(f"\n| layout | {' | '.join(f'{n:,} files' for n in sizes)} | largest / smallest |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for layout in layouts:
        medians = [statistics.median(c.times) for c in results if c.layout == layout]
        cells = " | ".join(f"{m * 1000:.0f} ms" for m in medians)
        print(f"| {layout} | {cells} | {medians[-1] / medians[0]:.2f}× |")


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--total-bytes", default="2G", help="of the large case (e.g. 2G, 500M)")
    parser.add_argument("--small-bytes", default="1K", help="of each file of the small case")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where to work (its disk)")
    parser.add_argument(
        "--growth", type=int, default=20, help="releases accumulated in one area (0: skip)"
    )
    parser.add_argument(
        "--layout", default="snapshots", help="snapshots, tree, or both: snapshots,tree"
    )
    parser.add_argument(
        "--area-sizes", default="", help="e.g. 1000,10000,100000: promotion by target area size"
    )
    args = parser.parse_args()
    layouts = [x.strip() for x in args.layout.split(",") if x.strip()]
    if any(x not in ("snapshots", "tree") for x in layouts):
        parser.error(f"--layout: {args.layout!r}; use snapshots, tree or snapshots,tree")
    if args.area_sizes:
        sizes = [int(x) for x in args.area_sizes.split(",")]
        work = Path(tempfile.mkdtemp(prefix="rollout-promotion-", dir=args.dir))
        print(f"promotion of a {args.packages}-file release by target area size; "
              f"load before: {_load()}", flush=True)  # fmt: skip
        try:
            _area_sizes(work, sizes, layouts, args.runs, args.packages)
        finally:
            fsops.delete_tree(work)
        print(f"load after: {_load()}")
        return

    base = args.dir or Path(tempfile.gettempdir())
    total = _size(args.total_bytes)
    free = shutil.disk_usage(base).free
    print(f"free space on the disk of {base}: {_human(free)}")
    if free < MIN_FREE:
        scaled = max(args.packages * 1024, min(total, free // 4))
        print(
            f"less than {_human(MIN_FREE)} free: the large case is scaled down from "
            f"{_human(total)} to {_human(scaled)} (a quarter of the free space). Promotion "
            "time does not depend on bytes; the figures stay comparable, the claim less bold."
        )
        total = scaled
    cases = [
        Case(name="large", packages=args.packages, each=max(total // args.packages, 1)),
        Case(name="small", packages=args.packages, each=_size(args.small_bytes)),
    ]
    work = Path(tempfile.mkdtemp(prefix="rollout-promotion-", dir=base))
    try:
        for case in cases:
            print(
                f"\n{case.name}: {case.packages} packages of {_human(case.each)} "
                f"({_human(case.packages * case.each)})",
                flush=True,
            )
            _run(case, work, args.runs, layouts[0])
            print(f"  generate scratch          {case.generate:8.3f} s")
            print(f"  publish_unverified (pool) {case.pool_in:8.3f} s")
            for label, values in (
                ("publish_unverified again", case.publish_again),
                ("promote_to_stagerollout", case.stage),
                ("promote_to_production", case.production),
            ):
                if values:
                    shown = " ".join(f"{v:.3f}" for v in values)
                    print(f"  {label:<25} {statistics.median(values):8.3f} s median ({shown})")
            print(
                f"  same inode in pool, unverified, stagerollout, production: {case.same_inode}; "
                f"links to one pool file at the end: {case.links}"
            )
        if args.growth:
            print(
                f"\ngrowth: {args.growth} releases of {args.packages} packages of "
                f"{_human(cases[1].each)} promoted one after another into production/7/updates",
                flush=True,
            )
            for files, seconds in _growth(work, args.growth, args.packages, cases[1].each):
                print(f"  area holds {files:6d} files after promotion: {seconds:6.3f} s")
    finally:
        fsops.delete_tree(work)

    print(
        "\n| case | packages | bytes | pool in (publish_unverified) | stagerollout (median) "
        "| production (median) |"
    )
    print("|---|---|---|---|---|---|")
    for case in cases:
        print(
            f"| {case.name} | {case.packages} | {_human(case.packages * case.each)} "
            f"| {case.pool_in:.3f} s | {statistics.median(case.stage) * 1000:.0f} ms "
            f"| {statistics.median(case.production) * 1000:.0f} ms |"
        )


if __name__ == "__main__":
    main()
