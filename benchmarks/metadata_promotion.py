"""The metadata step of one promotion into a large tree-layout area, split into the bridge's
own Python and the tools (createrepo_c, apt-ftparchive, gzip, gpg), next to the tools run
directly (``createrepo_c --update`` plus apt-ftparchive with its cache) on the same area.

For each ``--area-sizes`` N: an area of N files in ``production/7/updates`` with
``ROLLOUT_AREA_LAYOUT=tree``, a quarter real RPMs (distinct by their lead, as
``benchmarks.metadata_incremental``), a quarter real .deb files, half other files (``.dat``,
as ``benchmarks.scale``), brought by releases of ``--filler`` files each; then a
``--release``-file release of the same mix is promoted (timed, with the shipped metadata step:
``metadata_step`` composed with ``write_index``, signed) and withdrawn again (untimed), ``--runs``
times. Every code tree of ``--code name=path`` (e.g. the commit before a change) builds its own
area and is run in its own process with ``PYTHONPATH=path``, the runs interleaved, so the
figures come from one machine state. Run from the repository root:

    .venv/bin/python -m benchmarks.metadata_promotion --area-sizes 10000,40000 \
        --code before=/tmp/before --code after=$PWD --runs 3
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MEASURED = 9_999_999  # the ticket of the measured release


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# ------------------------------------------------------------------------ the files (parent)


def _files(work: Path, count: int, start: int) -> list[tuple[str, Path]]:
    """``count`` files (path in the area, file in ``work``): ¼ RPMs, ¼ debs, ½ .dat."""
    from benchmarks import metadata as bench
    from benchmarks import metadata_incremental as incremental_bench

    rpms_n = debs_n = count // 4
    out: list[tuple[str, Path]] = []
    rpm_dir = work / f"rpm-{start}"
    rpm_dir.mkdir(parents=True)
    rpms = incremental_bench.area_rpms(rpm_dir, rpms_n, 1000) if rpms_n else []
    for k, path in enumerate(rpms):
        i = start + k
        out.append((f"rpms/{i // 1000:03d}/{i:07d}-{path.name.split('-', 1)[1]}", path))
    deb_dir = work / f"deb-{start}"
    deb_dir.mkdir()
    for k in range(debs_n):
        i = start + k
        name = f"rb-bench-{i:07d}"
        target = deb_dir / f"{name}_1.0-1_all.deb"
        target.write_bytes(bench.deb_bytes(name, "1.0-1"))
        out.append((f"debs/{i // 1000:03d}/{target.name}", target))
    dat_dir = work / f"dat-{start}"
    dat_dir.mkdir()
    for k in range(count - rpms_n - debs_n):
        i = start + k
        target = dat_dir / f"f{i:07d}.dat"
        target.write_bytes(f"file {i}\n".encode() * 4)
        out.append((f"data/{i // 1000:03d}/scale-{i:07d}.dat", target))
    return out


def _release_spec(short: str, files: list[tuple[str, Path]], scratch: Path) -> dict[str, Any]:
    """Lay ``files`` out below ``scratch`` (hard links) and describe the release."""
    listed = []
    for path, source in files:
        target = scratch / path
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, target)
        data = source.read_bytes()
        listed.append([path, len(data), hashlib.sha256(data).hexdigest()])
    return {"short": short, "scratch": str(scratch), "files": listed}


# ------------------------------------------------------------------------ in the code's process


def _info(spec: dict[str, Any]) -> Any:
    from repo_daemon.release_xml import model as release_model
    from tests.support.release_factory import release_info

    repositories = tuple(
        release_model.RepositorySpec(identifier=i, name=i, type=t, relative_path=path)
        for i, t, path in (("rpm", "YUM", "rpms"), ("deb", "APT", "debs"), ("dat", "YUM", "data"))
    )
    packages = tuple(
        release_model.PackageFile(path=p, size=s, sha256=h) for p, s, h in spec["files"]
    )
    return release_info(spec["short"], "1.0.0", packages, repositories=repositories)


class _Timing:
    """A ``CommandRunner`` that adds up the wall time of each tool."""

    def __init__(self) -> None:
        from repo_daemon.metadata import commands

        self.inner = commands.SubprocessRunner()
        self.seconds: dict[str, float] = {}

    def __call__(self, argv: Any, *, cwd: Path, stdout: Path | None = None) -> Any:
        started = time.perf_counter()
        try:
            return self.inner(argv, cwd=cwd, stdout=stdout)
        finally:
            tool = Path(argv[0]).name
            self.seconds[tool] = self.seconds.get(tool, 0.0) + time.perf_counter() - started


def _repository(root: Path, spec: dict[str, Any], runner: Any, *, metadata: bool) -> Any:
    from bridge.settings.model import RepositorySettings
    from repo_daemon.metadata import build, signing
    from repo_daemon.publish import index
    from repo_daemon.publish import repository as publish

    settings = RepositorySettings(root=root, keep_snapshots=3, area_layout="tree")
    if not metadata:
        return publish.Repository(settings)
    signer = signing.Signer(key_id=spec["key"], gnupghome=Path(spec["gnupg"]))
    step = build.metadata_step(root, "http://127.0.0.1:1/", signer=signer, runner=runner)
    timed: dict[str, float] = {}

    def wrap(name: str, inner: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> None:
            started = time.perf_counter()
            try:
                inner(*args, **kwargs)
            finally:
                timed[name] = timed.get(name, 0.0) + time.perf_counter() - started

        return run

    repo = publish.Repository(
        settings,
        metadata=index.compose(wrap("metadata_step", step), wrap("write_index", index.write_index)),
    )
    repo.bench_timed = timed
    return repo


def _setup(root: Path, spec: dict[str, Any]) -> None:
    bare = _repository(root, spec, None, metadata=False)
    fillers = spec["fillers"]
    for n, release in enumerate(fillers[:-1]):
        info = _info(release)
        bare.publish_unverified(n + 1, info, Path(release["scratch"]))
        bare.promote_to_production(n + 1, info, "7", "Incremental")
    repo = _repository(root, spec, _Timing(), metadata=True)
    info = _info(fillers[-1])
    repo.publish_unverified(len(fillers), info, Path(fillers[-1]["scratch"]))
    repo.promote_to_production(len(fillers), info, "7", "Incremental")  # the full metadata
    measured = spec["measured"]
    repo.publish_unverified(MEASURED, _info(measured), Path(measured["scratch"]))


def _direct(root: Path, out: Path) -> dict[str, float]:
    """createrepo_c --update and apt-ftparchive with a cache run directly on the area."""
    from benchmarks import metadata as bench
    from repo_daemon.metadata import apt, yum

    area = root / "production/7/updates"
    seconds: dict[str, float] = {}
    shutil.rmtree(out, ignore_errors=True)
    for name in ("rpms", "data"):
        (out / name).mkdir(parents=True)
        argv = yum.createrepo_argv(
            area / name, update_from=(area / name).resolve(), output=out / name
        )
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        seconds["createrepo_c"] = seconds.get("createrepo_c", 0.0) + time.perf_counter() - started
    cache = out / "apt.db"
    slug = "production-7-updates"
    shutil.copyfile(root / ".metadata-cache" / slug / apt.CACHE_DB, cache)  # untimed
    started = time.perf_counter()
    with (out / "Packages").open("wb") as packages:
        subprocess.run(apt.packages_argv(cache_db=cache), cwd=area / "debs", stdout=packages,
                       check=True)  # fmt: skip
    with (out / "Packages").open("rb") as src, (out / "Packages.gz").open("wb") as gz:
        subprocess.run([bench.exe("gzip"), "-9n"], stdin=src, stdout=gz, check=True)
    seconds["apt-ftparchive"] = time.perf_counter() - started
    shutil.rmtree(out)
    return seconds


def _measure(root: Path, spec: dict[str, Any], profile: Path | None) -> dict[str, Any]:
    from repo_daemon.publish import areas

    runner = _Timing()
    repo = _repository(root, spec, runner, metadata=True)
    info = _info(spec["measured"])
    os.sync()
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    repo.promote_to_production(MEASURED, info, "7", "Incremental")
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(profile))
    total = time.perf_counter() - started
    result = {"promotion": total, "tools": dict(runner.seconds), **repo.bench_timed}
    result["direct"] = _direct(root, root.parent / f"direct-{root.name}")
    repo.remove_from(MEASURED, [areas.Area("production/7/updates")])  # untimed
    return result


# ------------------------------------------------------------------------ the parent


class _Worker:
    """One code tree's process (``PYTHONPATH=code``), kept for the whole size as a daemon
    keeps running: it builds its area, then measures one promotion per request."""

    def __init__(self, code: Path, root: Path, spec: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", "serve", str(root),
             str(spec)],
            env={**os.environ, "PYTHONPATH": str(code)}, cwd=code, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip

    def ask(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise SystemExit(f"the worker died (exit {self.proc.wait()})")
        return answer.strip()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


def _serve(root: Path, spec: dict[str, Any]) -> None:
    for line in sys.stdin:
        what = line.strip()
        if what == "setup":
            _setup(root, spec)
            print("ready", flush=True)
        else:
            profile = Path(what.split("=", 1)[1]) if what.startswith("profile=") else None
            print(json.dumps(_measure(root, spec, profile)), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--area-sizes", default="10000")
    parser.add_argument("--release", type=int, default=100)
    parser.add_argument("--filler", type=int, default=1000, help="files per filler release")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--code", action="append", default=[], help="name=path (repeatable)")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile the first run")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--worker", nargs=3, metavar=("WHAT", "ROOT", "SPEC"))
    args = parser.parse_args(argv)
    if args.worker:
        _, root, spec_path = args.worker
        _serve(Path(root), json.loads(Path(spec_path).read_text()))
        return 0
    from benchmarks import metadata as bench

    codes = dict(c.split("=", 1) for c in args.code) or {"this": str(ROOT)}
    work = Path(tempfile.mkdtemp(prefix="rollout-metadata-promotion-", dir=args.dir))
    try:
        signer = bench.make_key(work / "gnupg")
        for size in [int(x) for x in args.area_sizes.split(",")]:
            here = work / f"n{size}"
            files = _files(here / "src", size + args.release, 0)
            fillers = [
                _release_spec(f"Fill{k}", files[k : k + args.filler], here / f"scratch-{k}")
                for k in range(0, size, args.filler)
            ]
            spec = {
                "fillers": fillers,
                "measured": _release_spec("Measured", files[size:], here / "scratch-measured"),
                "key": signer.key_id,
                "gnupg": str(signer.gnupghome),
            }
            spec_path = here / "spec.json"
            spec_path.write_text(json.dumps(spec))
            workers = {
                name: _Worker(Path(code), here / f"repo-{name}", spec_path)
                for name, code in codes.items()
            }
            for name, worker in workers.items():
                started = time.perf_counter()
                worker.ask("setup")
                print(f"{size:,} files, {name}: area set up in "
                      f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
            results: dict[str, list[dict[str, Any]]] = {name: [] for name in codes}
            for run in range(args.runs):
                for name, worker in workers.items():
                    what = "measure"
                    if args.profile and run == args.runs - 1:
                        what = f"profile={args.profile}-{name}-{size}.prof"
                    out = json.loads(worker.ask(what))
                    out["load"] = _load()
                    results[name].append(out)
                    print(f"  run {run + 1} {name}: {json.dumps(out)}", flush=True)
            for worker in workers.values():
                worker.close()
            _report(size, args.release, results)
            shutil.rmtree(here)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.profile:
        for path in sorted(args.profile.parent.glob(f"{args.profile.name}-*.prof")):
            print(f"\n== {path.name}")
            pstats.Stats(str(path)).sort_stats("cumulative").print_stats(25)
    return 0


def _report(size: int, release: int, results: dict[str, list[dict[str, Any]]]) -> None:
    """Medians over the runs of each run's figures (the bridge's own Python and the ratios
    are taken per run, then their median)."""
    print(f"\n{size:,} files + a {release}-file release (medians of the runs; seconds)")
    print(
        "| code | promotion | metadata step + index | of which tools | bridge's Python "
        "| direct tools | (step + index − gpg) / direct | loads |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, runs in results.items():

        def med(values: list[float]) -> float:
            return statistics.median(values)

        meta = [r["metadata_step"] + r["write_index"] for r in runs]
        tools = [sum(r["tools"].values()) for r in runs]
        direct = [sum(r["direct"].values()) for r in runs]
        gpg = [r["tools"].get("gpg", 0.0) for r in runs]
        split = {
            k: round(med([r["tools"].get(k, 0.0) for r in runs]), 2)
            for k in sorted({k for r in runs for k in r["tools"]})
        }
        own = med([m - t for m, t in zip(meta, tools, strict=True)])
        ratio = med([(m - g) / d for m, g, d in zip(meta, gpg, direct, strict=True)])
        loads = ", ".join(r["load"].split()[0] for r in runs)
        print(
            f"| {name} | {med([r['promotion'] for r in runs]):.2f} | {med(meta):.2f} | "
            f"{med(tools):.2f} {split} | {own:.2f} | {med(direct):.2f} | {ratio:.2f}× | {loads} |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
