"""Mirror runs: the shipped ``deploy/mirror/rollout-mirror`` against a real ``rsync --daemon``
(the product's rsyncd.conf, no chroot), for one area of N files in each layout, after one
publication of ``--new`` files: the time of a mirror run that brings the new release, for the
snapshots layout (the whole snapshot copied with ``--link-dest``: one hard link per file) and
the tree layout (payload adds, metadata snapshot, switch, delete pass), next to one plain
``rsync -rlt`` of the same payload tree into an up-to-date copy (the floor of a pass that
lists the area). Runs are interleaved. The areas are built by hand (tests/support/tree_layout),
so nothing here depends on the publish core. Run from the repository root:

    .venv/bin/python -m benchmarks.mirror
    .venv/bin/python -m benchmarks.mirror --sizes 1000,10000 --new 100 --runs 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests.integration.test_mirror_rsync import RsyncDaemon
from tests.support import paths, tree_layout

SCRIPT = paths.ROOT / "deploy" / "mirror" / "rollout-mirror"


def _files(release: int, count: int) -> dict[str, bytes]:
    return {
        f"el9/x86_64/Packages/r{release}/{i // 1000}/pkg-{i}.rpm": f"{release}:{i}\n".encode()
        for i in range(count)
    }


class Source:
    """One area per layout below ``root``, holding the same releases."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.seq = 0
        self.payload: dict[str, bytes] = {}

    def _metadata(self, area: str, name: str, layout: str) -> dict[str, bytes]:
        key = tree_layout.area_key(area)
        if layout == "tree":
            return tree_layout.sample_metadata(area, name, repomd=f"<{name}/>".encode())
        manifest = {"format": 1, "area": area, "snapshot": name}
        return {
            "el9/x86_64/repodata/repomd.xml": f"<{name}/>".encode(),
            "index.json": json.dumps({"area": area}).encode(),
            ".rollout-serial": f"{key}/{name}\n".encode(),
            ".rollout-manifest.json": json.dumps(manifest).encode(),
        }

    def publish(self, files: dict[str, bytes]) -> None:
        self.seq += 1
        name = f"{self.seq:06d}-20261206T{self.seq:06d}Z"
        self.payload.update(files)
        tree_area = "production/7/tree"
        tree_layout.build_tree_area(
            self.root, tree_area, files, self._metadata(tree_area, name, "tree"), name
        )
        tree_layout.switch(self.root, tree_area, name)
        area = "production/7/snap"
        snap = tree_layout.snapshot_dir(self.root, area, name)
        building = snap.with_name(f".building-{name}")
        pool = self.root / tree_layout.POOL
        for rel, data in self.payload.items():
            target = building / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(pool / hashlib.sha256(data).hexdigest(), target)
        for rel, data in self._metadata(area, name, "snapshots").items():
            (building / rel).parent.mkdir(parents=True, exist_ok=True)
            (building / rel).write_bytes(data)
        building.rename(snap)
        link = self.root / area
        swap = link.with_name(f"snap.swap-{self.seq:08x}")
        swap.symlink_to(f"../../.snapshots/{tree_layout.area_key(area)}/{name}")
        swap.replace(link)


def _timed(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{argv}: exit {done.returncode}: {done.stderr[-500:]}")
    return elapsed


def measure(workdir: Path, size: int, new: int, runs: int) -> dict[str, list[float]]:
    root = workdir / "repo"
    root.mkdir()
    source = Source(root)
    source.publish(_files(0, size))
    times: dict[str, list[float]] = {"snapshots": [], "tree": [], "plain rsync -rlt": []}
    with RsyncDaemon(workdir / "rsyncd", root, chroot=False) as daemon:
        src = daemon.url().rstrip("/")

        def mirror(layout: str) -> list[str]:
            area = f"production/7/{'tree' if layout == 'tree' else 'snap'}"
            return ["sh", str(SCRIPT), src, area, str(workdir / f"mirror-{layout}")]

        plain_dest = workdir / "plain"
        plain = ["rsync", "-rlt", f"{src}/.trees/production~7~tree/", f"{plain_dest}/"]
        for layout in ("snapshots", "tree"):
            _timed(mirror(layout))  # the first copy, not measured
        _timed(plain)
        for run in range(runs):
            source.publish(_files(run + 1, new))
            times["snapshots"].append(_timed(mirror("snapshots")))
            times["tree"].append(_timed(mirror("tree")))
            times["plain rsync -rlt"].append(_timed(plain))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args(argv)
    print(f"load before: {Path('/proc/loadavg').read_text().strip()}")
    print(
        f"{'area files':>10} | {'snapshots':>10} | {'tree':>10} | {'plain rsync':>11} | tree/snap"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        workdir = Path(tempfile.mkdtemp(prefix=f"mirror-{size}-", dir=args.dir))
        try:
            times = measure(workdir, size, args.new, args.runs)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(
            f"{size:>10} | {med['snapshots']:>9.2f}s | {med['tree']:>9.2f}s |"
            f" {med['plain rsync -rlt']:>10.2f}s | {med['tree'] / med['snapshots']:.2f}"
        )
    print(f"load after: {Path('/proc/loadavg').read_text().strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
