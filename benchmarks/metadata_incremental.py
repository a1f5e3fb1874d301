"""Incremental metadata at scale: an area of ``--area`` packages of each format (100,000 by
default) gets ``--added`` more (100); the bridge's metadata step (``build.build_metadata`` with
the previous snapshot and the area's cache, as ``metadata_step`` calls it) is timed next to
the tools run directly on the same tree, interleaved, in the same run:

- direct: ``createrepo_c --update --update-md-path <previous snapshot>/rpms`` with the
  options the bridge passes, then ``apt-ftparchive --db <its own warm cache> packages .``
  (the bridge's hash options: MD5 and SHA256), ``gzip -9n``, ``apt-ftparchive release .``;
- bridge: ``build_metadata(new, [YUM, APT], previous_tree=previous, cache_dir=cache)``,
  unsigned (the same work as the direct run), and signed (what the daemon does).

Each measurement runs on a fresh snapshot of hard links (as ``publish`` builds one, not
timed) and from a cache restored to its state after the previous snapshot (not timed), so
every run adds the same 100 packages to a warm area.

How the packages are made, cheaply: ``--distinct`` (1,000) real noarch RPMs from one
``rpmbuild``; the area's RPM files are copies of them that differ in the RPM *lead*'s 16
reserved bytes (a counter; rpm and createrepo_c ignore the lead, ``rpm -K`` still says
"digests OK"), so every file has its own SHA-256 (createrepo_c's old-metadata loader keys
filelists and other by it: plain copies or hard links collapse to the distinct ones) while
names and versions repeat every 1,000 packages. The ``.deb`` files are all distinct real
packages (``metadata.deb_bytes``, one small file each). Small packages: the figures are the
tools' per-package bookkeeping (parsing and writing the XML of 100,000 packages, the cache
look-ups), not hashing; with real packages the full rebuild costs far more, the incremental
one about the same. Run from the repository root:

    .venv/bin/python -m benchmarks.metadata --incremental 100000 --added 100 --runs 3
"""

from __future__ import annotations

import random
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import metadata as bench
from repo_daemon.metadata import apt, yum
from repo_daemon.metadata import build as metadata

LEAD_MAGIC = b"\xed\xab\xee\xdb"


def area_rpms(work: Path, count: int, distinct: int) -> list[Path]:
    """``count`` RPM files with distinct bytes from ``distinct`` built ones (see the module)."""
    built = bench.build_rpms(work / "build", min(distinct, count))
    sources = [(p.name, p.read_bytes()) for p in built]
    out = work / "rpm-files"
    out.mkdir()
    files = []
    for i in range(count):
        name, data = sources[i % len(sources)]
        if data[:4] != LEAD_MAGIC:
            raise SystemExit(f"{name} has no RPM lead")
        path = out / f"p{i:06d}-{name}"
        path.write_bytes(data[:80] + i.to_bytes(16, "big") + data[96:])
        files.append(path)
    subprocess.run([bench.exe("rpm"), "-K", str(files[-1])], check=True, capture_output=True)
    return files


def area_debs(work: Path, count: int) -> list[Path]:
    out = work / "deb-files"
    out.mkdir()
    files = []
    for i in range(count):
        name = f"rb-bench-{i:06d}"
        path = out / f"{name}_1.0-1_all.deb"
        path.write_bytes(bench.deb_bytes(name, "1.0-1"))
        files.append(path)
    return files


def direct(tree: Path, previous: Path, db: Path) -> None:
    """createrepo_c --update, then apt-ftparchive with its cache, gzip, Release."""
    argv = yum.createrepo_argv(tree / "rpms", update_from=previous / "rpms")
    subprocess.run(argv, check=True, capture_output=True)
    d = tree / "debs"
    with (d / "Packages").open("wb") as out:
        subprocess.run(apt.packages_argv(cache_db=db), cwd=d, stdout=out, check=True)
    with (d / "Packages").open("rb") as src, (d / "Packages.gz").open("wb") as out:
        subprocess.run([bench.exe("gzip"), "-9n"], stdin=src, stdout=out, check=True)
    with (d / "Release").open("wb") as out:
        subprocess.run([bench.exe("apt-ftparchive"), "release", "."], cwd=d, stdout=out, check=True)


def run(area: int, added: int, runs: int, distinct: int, base: Path, deadline: float) -> int:
    work = base / f"area{area}"
    work.mkdir()
    started = time.monotonic()
    rpms = area_rpms(work, area + added, distinct)
    debs = area_debs(work, area + added)
    print(
        f"built {len(rpms)} rpm and {len(debs)} deb files in {time.monotonic() - started:.0f} s",
        flush=True,
    )
    signer = bench.make_key(work / "gnupg")

    previous = bench.snapshot(work, rpms[:area], debs[:area], "previous")
    t0 = time.perf_counter()
    metadata.build_metadata(previous, [bench.YUM, bench.APT], cache_dir=work / "cache-bridge")
    full = time.perf_counter() - t0
    t0 = time.perf_counter()
    (work / "cache-direct").mkdir()
    argv = apt.packages_argv(cache_db=work / "cache-direct" / apt.CACHE_DB)
    subprocess.run(argv, cwd=previous / "debs", stdout=subprocess.DEVNULL, check=True)
    warm = time.perf_counter() - t0
    print(
        f"previous snapshot: full build_metadata {full:.1f} s; direct apt cache {warm:.1f} s",
        flush=True,
    )
    for name in ("cache-bridge", "cache-direct"):
        shutil.copytree(work / name, work / f"{name}.pristine")

    def restore(name: str) -> Path:
        shutil.rmtree(work / name)
        shutil.copytree(work / f"{name}.pristine", work / name)
        return work / name

    # name → (the cache it starts from, what is timed on the new snapshot with that cache)
    direct_name = "direct: createrepo_c --update + apt-ftparchive --db"
    variants: dict[str, tuple[str, Callable[[Path, Path], object]]] = {
        direct_name: ("cache-direct", lambda t, c: direct(t, previous, c / apt.CACHE_DB)),
        "bridge: build_metadata, unsigned": (
            "cache-bridge",
            lambda t, c: metadata.build_metadata(
                t, [bench.YUM, bench.APT], previous_tree=previous, cache_dir=c
            ),
        ),
        "bridge: build_metadata, signed": (
            "cache-bridge",
            lambda t, c: metadata.build_metadata(
                t, [bench.YUM, bench.APT], signer=signer, previous_tree=previous, cache_dir=c
            ),
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    loads: list[str] = []
    for number in range(runs):
        if time.monotonic() > deadline:
            print(f"time is up after {number} runs")
            break
        order = list(variants)
        random.Random(number).shuffle(order)  # noqa: S311  (an order, not a secret)
        for name in order:
            tree = bench.snapshot(work, rpms, debs, f"r{number}-{len(times[name])}-{len(name)}")
            cache_name, variant = variants[name]
            cache = restore(cache_name)
            t0 = time.perf_counter()
            variant(tree, cache)
            times[name].append(time.perf_counter() - t0)
            loads.append(Path("/proc/loadavg").read_text().split(" ", 1)[0])
            # Each figure as it comes: a run cut short still leaves what it measured.
            figure = f"{times[name][-1]:.2f} s, load {loads[-1]}"
            print(f"run {number + 1}: {name}: {figure}", flush=True)
            shutil.rmtree(tree)
    subprocess.run([bench.exe("gpgconf"), "--homedir", str(work / "gnupg"), "--kill", "all"])
    shutil.rmtree(work)

    print(f"\n{area:,} packages of each format + {added}; load (1 min) after each: {loads}")
    print("| variant | median | min–max | each |\n|---|---|---|---|")
    for name, values in times.items():
        if values:
            each = " ".join(f"{v:.2f}" for v in values)
            print(
                f"| {name} | {statistics.median(values):.2f} s | "
                f"{min(values):.2f}–{max(values):.2f} | {each} |"
            )
    reference = times[direct_name]
    for name in list(variants)[1:]:
        if times[name] and reference:
            ratio = statistics.median(times[name]) / statistics.median(reference)
            pairs = [f"{a / b:.2f}" for a, b in zip(times[name], reference, strict=False)]
            print(f"{name} / direct: {ratio:.2f} (run by run: {' '.join(pairs)}; target ≤ 1.20)")
    return 0
