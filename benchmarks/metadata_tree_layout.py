"""The metadata step in the tree layout next to the snapshots layout, interleaved, in the same
run: an area of ``--area`` packages of each format (10,000 by default) gets ``--added`` more
(100), with the previous metadata and a warm apt-ftparchive cache, as ``metadata_step`` runs it.

- snapshots: ``build_metadata(<snapshot of hard links>, previous_tree=<previous snapshot>)``;
  the snapshot's links (what ``publish`` makes before the step, O(area)) are timed apart;
- tree: ``build_metadata(<empty snapshot>, payload_dir=<tree>, payload_files=<the area's>)``
  with the previous metadata reached through links in the tree; the tree holds the new
  packages already (``publish`` links only the release's, O(release), not timed here).

The packages are ``benchmarks.metadata_incremental``'s (distinct RPMs by their lead, distinct
real .deb files). Each measurement starts from the cache as the previous publication left it.
Run from the repository root:

    .venv/bin/python -m benchmarks.metadata_tree_layout --area 10000 --runs 3
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import metadata as bench
from benchmarks import metadata_incremental as incremental_bench
from repo_daemon.metadata import build as metadata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--area", type=int, default=10_000)
    parser.add_argument("--added", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--distinct", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=None, help="where to work (its disk)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as base:
        work = Path(base)
        rpms = incremental_bench.area_rpms(work, args.area + args.added, args.distinct)
        debs = incremental_bench.area_debs(work, args.area + args.added)
        repositories = [bench.YUM, bench.APT]
        previous = bench.snapshot(work, rpms[: args.area], debs[: args.area], "previous")
        metadata.build_metadata(previous, repositories, cache_dir=work / "cache")
        shutil.copytree(work / "cache", work / "cache.pristine")
        tree = bench.snapshot(work, rpms, debs, "tree")
        for link in ("rpms/repodata", "debs/Packages", "debs/Release", "debs/by-hash"):
            (tree / link).symlink_to(previous / link)  # the metadata links of the live tree
        listed = [f"rpms/{p.name}" for p in rpms] + [f"debs/{p.name}" for p in debs]

        def cache() -> Path:
            shutil.rmtree(work / "cache")
            shutil.copytree(work / "cache.pristine", work / "cache")
            return work / "cache"

        times: dict[str, list[float]] = {"snapshots": [], "snapshots' links": [], "tree": []}
        loads: list[str] = []
        for number in range(args.runs):
            order = ["snapshots", "tree"]
            random.Random(number).shuffle(order)  # noqa: S311  (an order, not a secret)
            for layout in order:
                started = time.perf_counter()
                if layout == "snapshots":
                    snapshot = bench.snapshot(work, rpms, debs, f"s{number}")
                    times["snapshots' links"].append(time.perf_counter() - started)
                    kept = cache()
                    started = time.perf_counter()
                    metadata.build_metadata(
                        snapshot, repositories, previous_tree=previous, cache_dir=kept
                    )
                else:
                    snapshot = work / f"t{number}"
                    snapshot.mkdir()
                    kept = cache()
                    started = time.perf_counter()
                    metadata.build_metadata(
                        snapshot,
                        repositories,
                        previous_tree=tree,
                        cache_dir=kept,
                        payload_dir=tree,
                        payload_files=listed,
                    )
                times[layout].append(time.perf_counter() - started)
                loads.append(Path("/proc/loadavg").read_text().split(" ", 1)[0])
                print(f"run {number + 1}: {layout}: {times[layout][-1]:.2f} s, load {loads[-1]}")
                shutil.rmtree(snapshot)
    print(f"\n{args.area:,} packages of each format + {args.added}; loads: {loads}")
    print("| step | median | min–max |\n|---|---|---|")
    for name, values in times.items():
        median, low, high = statistics.median(values), min(values), max(values)
        print(f"| {name} | {median:.2f} s | {low:.2f}–{high:.2f} |")
    ratio = statistics.median(times["tree"]) / statistics.median(times["snapshots"])
    print(f"tree / snapshots (metadata step alone): {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
