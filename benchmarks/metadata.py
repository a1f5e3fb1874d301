"""Repository metadata regeneration time: ``metadata.build_metadata`` next to createrepo_c and
apt-ftparchive run directly on the same tree, in the same run, for areas of 1,000 and 10,000
packages (by default).

Builds ``N`` distinct real ``.rpm`` files (one ``rpmbuild`` of a spec with ``N`` noarch
subpackages, each with one small file) and ``N`` distinct real ``.deb`` files (written here as
``ar`` archives with a control and a data tarball; one of each is checked with ``rpm -qp`` and
``dpkg-deb --info`` first). Distinct names matter: copies of one package under other file
names would give the tools duplicate entries, not a real index. Then, ``--runs`` times, each
in a fresh snapshot directory of hard links to those files (as ``publish`` builds one), in a
shuffled order so that load from elsewhere on the machine hits every variant alike:

- ``createrepo_c``: the binary with the options ``build_metadata`` uses (``createrepo_argv``);
- ``apt-ftparchive``: what a script would do: ``apt-ftparchive packages . > Packages``,
  ``gzip -9n``, ``apt-ftparchive release . > Release`` (the tool's default hashes);
- ``build_metadata`` for the YUM repository alone, the APT one alone, both unsigned, both
  signed (a throw-away ed25519 key in a temporary GNUPGHOME), and both with a warm
  ``cache_dir`` (the tools' checksum caches kept from the previous run);
- ``createrepo_c --update --update-md-path <previous snapshot>`` for comparison.

Files are in the page cache (just written): the figures are CPU and metadata work, not disk
reads. Bounded by ``--max-seconds`` (remaining runs are skipped). Run from the repository root:

    .venv/bin/python -m benchmarks.metadata
    .venv/bin/python -m benchmarks.metadata --sizes 1000,10000 --runs 3 --dir /srv/scratch

``--incremental AREA`` measures instead a publication that adds ``--added`` packages to an
area of AREA packages of each format, against ``createrepo_c --update`` and apt-ftparchive
with its cache run directly (``benchmarks/metadata_incremental.py`` says how):

    .venv/bin/python -m benchmarks.metadata --incremental 100000 --added 100 --runs 3
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import platform
import random
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from repo_daemon.metadata import build as metadata
from repo_daemon.metadata import signing, yum
from repo_daemon.release_xml import model as release_model

TOOLS = ("createrepo_c", "apt-ftparchive", "gpg", "gpgconf", "rpmbuild", "rpm", "dpkg-deb", "gzip")


def exe(tool: str) -> str:
    """The tool's absolute path (the one on PATH, as ``build_metadata`` runs it)."""
    path = shutil.which(tool)
    if path is None:
        raise SystemExit(f"{tool} is missing (scripts/bootstrap installs it)")
    return path


YUM = release_model.RepositorySpec(identifier="rpm", name="RPMs", type="YUM", relative_path="rpms")
APT = release_model.RepositorySpec(identifier="deb", name="Debs", type="APT", relative_path="debs")


# ---------------------------------------------------------------------------- packages


def build_rpms(workdir: Path, count: int) -> list[Path]:
    """``count`` distinct noarch RPMs from one rpmbuild of ``count`` subpackages."""
    top = workdir / "rpmbuild"
    lines = [
        "Name: rb-bench", "Version: 1.0", "Release: 1", "Summary: benchmark",
        "License: Apache-2.0", "BuildArch: noarch", "AutoReqProv: no", "",
        "%description", "benchmark", "",
        "%install",
        f"for i in $(seq 0 {count - 1}); do d=$(printf %05d $i);"
        " mkdir -p %{buildroot}/usr/share/rb-bench/$d;"
        " echo $d > %{buildroot}/usr/share/rb-bench/$d/README; done", "",
    ]  # fmt: skip
    for i in range(count):
        name = f"rb-bench-{i:05d}"
        lines += [
            f"%package -n {name}", f"Summary: benchmark package {i}", "",
            f"%description -n {name}", f"Benchmark package number {i}.", "",
            f"%files -n {name}", f"/usr/share/rb-bench/{i:05d}/README", "",
        ]  # fmt: skip
    top.mkdir(parents=True)
    spec = top / "bench.spec"
    spec.write_text("\n".join(lines), encoding="utf-8")
    subprocess.run(
        [exe("rpmbuild"), "-bb", "--quiet",
         "--define", f"_topdir {top}", "--define", f"_tmppath {top / 'tmp'}",
         "--define", "_build_id_links none", "--define", "__spec_install_post %{nil}",
         str(spec)],
        check=True, capture_output=True,
    )  # fmt: skip
    return sorted((top / "RPMS" / "noarch").glob("*.rpm"))


def _tar_gz(members: list[tuple[str, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), compresslevel=1, mtime=0)


def deb_bytes(name: str, version: str) -> bytes:
    """A real Debian binary package (what ``dpkg-deb --build`` writes, gzip members)."""
    control = (
        f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: Rollout bridge benchmark <bench@example.org>\n"
        f"Description: benchmark package {name}\n"
    ).encode()
    members = [
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", _tar_gz([("./", None), ("./control", control)])),
        ("data.tar.gz", _tar_gz([
            ("./", None), ("./usr/", None), ("./usr/share/", None),
            (f"./usr/share/{name}", None), (f"./usr/share/{name}/README", name.encode()),
        ])),
    ]  # fmt: skip
    out = [b"!<arch>\n"]
    for member, data in members:
        out.append(f"{member:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode())
        out.append(data + (b"\n" if len(data) % 2 else b""))
    return b"".join(out)


def build_debs(workdir: Path, count: int) -> list[Path]:
    out = workdir / "debs"
    out.mkdir()
    files = []
    for i in range(count):
        name = f"rb-bench-{i:05d}"
        path = out / f"{name}_1.0-1_all.deb"
        path.write_bytes(deb_bytes(name, "1.0-1"))
        files.append(path)
    return files


def check_packages(rpm: Path, deb: Path) -> None:
    """The generated files are real packages to the real tools."""
    subprocess.run([exe("rpm"), "-qp", str(rpm)], check=True, capture_output=True)
    subprocess.run([exe("dpkg-deb"), "--info", str(deb)], check=True, capture_output=True)


# ---------------------------------------------------------------------------- measuring


def snapshot(work: Path, rpms: list[Path], debs: list[Path], name: str) -> Path:
    """A fresh snapshot of hard links, as ``publish`` builds one (not timed)."""
    tree = work / name
    for sub, files in (("rpms", rpms), ("debs", debs)):
        (tree / sub).mkdir(parents=True)
        for f in files:
            os.link(f, tree / sub / f.name)
    return tree


def direct_createrepo(tree: Path) -> None:
    subprocess.run(yum.createrepo_argv(tree / "rpms"), check=True, capture_output=True)


def direct_createrepo_update(tree: Path, previous: Path) -> None:
    argv = yum.createrepo_argv(tree / "rpms")
    argv[1:1] = ["--update", f"--update-md-path={previous / 'rpms'}"]
    subprocess.run(argv, check=True, capture_output=True)


def direct_apt_ftparchive(tree: Path) -> None:
    d = tree / "debs"
    with (d / "Packages").open("wb") as out:
        subprocess.run([exe("apt-ftparchive"), "packages", "."], cwd=d, stdout=out, check=True)
    with (d / "Packages").open("rb") as src, (d / "Packages.gz").open("wb") as out:
        subprocess.run([exe("gzip"), "-9n"], stdin=src, stdout=out, check=True)
    with (d / "Release.new").open("wb") as out:
        subprocess.run([exe("apt-ftparchive"), "release", "."], cwd=d, stdout=out, check=True)
    (d / "Release.new").rename(d / "Release")


def make_key(home: Path) -> signing.Signer:
    home.mkdir(mode=0o700)
    subprocess.run(
        [exe("gpg"), "--homedir", str(home), "--batch", "--passphrase", "", "--quick-generate-key",
         "Rollout benchmark <bench@example.org>", "ed25519", "sign", "never"],
        check=True, capture_output=True,
    )  # fmt: skip
    listing = subprocess.run(
        [exe("gpg"), "--homedir", str(home), "--with-colons", "--list-secret-keys"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    return signing.Signer(key_id=fpr, gnupghome=home)


def bench_size(count: int, runs: int, base: Path, deadline: float) -> dict[str, list[float]]:
    work = base / f"n{count}"
    work.mkdir()
    started = time.monotonic()
    rpms = build_rpms(work, count)
    debs = build_debs(work, count)
    assert len(rpms) == len(debs) == count, (len(rpms), len(debs))
    check_packages(rpms[0], debs[0])
    print(f"{count}: built {count} rpms and {count} debs in {time.monotonic() - started:.1f} s")
    signer = make_key(work / "gnupg")
    cache = work / "cache"

    variants: dict[str, Callable[[Path, Path], object]] = {
        "createrepo_c (direct)": lambda t, p: direct_createrepo(t),
        "build_metadata YUM": lambda t, p: metadata.build_metadata(t, [YUM]),
        "apt-ftparchive (direct)": lambda t, p: direct_apt_ftparchive(t),
        "build_metadata APT": lambda t, p: metadata.build_metadata(t, [APT]),
        "build_metadata both": lambda t, p: metadata.build_metadata(t, [YUM, APT]),
        "build_metadata both, signed, previous_tree": lambda t, p: metadata.build_metadata(
            t, [YUM, APT], signer=signer, previous_tree=p
        ),
        "build_metadata both, warm cache_dir": lambda t, p: metadata.build_metadata(
            t, [YUM, APT], cache_dir=cache
        ),
        "createrepo_c --update from previous (direct)": direct_createrepo_update,
    }
    # Warm the caches once, so "warm cache_dir" means warm in every measured run.
    metadata.build_metadata(snapshot(work, rpms, debs, "warmup"), [YUM, APT], cache_dir=cache)
    times: dict[str, list[float]] = {name: [] for name in variants}
    previous = work / "warmup"
    for run in range(runs):
        if time.monotonic() > deadline:
            print(f"{count}: time is up after {run} runs")
            break
        order = list(variants)
        random.Random(run).shuffle(order)  # noqa: S311  (an order, not a secret)
        for name in order:
            variant = variants[name]
            tree = snapshot(work, rpms, debs, f"r{run}-{len(times[name])}-{hash(name) & 0xFFFF}")
            t0 = time.perf_counter()
            variant(tree, previous)
            times[name].append(time.perf_counter() - t0)
            shutil.rmtree(tree)
    subprocess.run([exe("gpgconf"), "--homedir", str(work / "gnupg"), "--kill", "all"], check=False)
    shutil.rmtree(work)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.metadata", description=__doc__)
    parser.add_argument(
        "--sizes", default="1000,10000", help="packages per format, e.g. 1000,10000"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to work (its disk)")
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument(
        "--incremental", type=int, default=0, metavar="AREA",
        help="time adding --added packages to an area of AREA packages of each format",
    )  # fmt: skip
    parser.add_argument("--added", type=int, default=100)
    parser.add_argument("--distinct", type=int, default=1000, help="RPMs built (--incremental)")
    args = parser.parse_args(argv)
    for tool in TOOLS:
        exe(tool)
    deadline = time.monotonic() + args.max_seconds
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}")
    for name in ("createrepo_c", "apt-ftparchive"):
        answer = subprocess.run([exe(name), "--version"], capture_output=True, text=True)
        lines = answer.stdout.splitlines()
        print(f"{name}: {lines[0] if lines else '?'}")
    if args.incremental:
        from benchmarks import metadata_incremental

        with tempfile.TemporaryDirectory(prefix="rollout-bench-md-", dir=args.dir) as scratch:
            return metadata_incremental.run(
                args.incremental, args.added, args.runs, args.distinct, Path(scratch), deadline
            )
    with tempfile.TemporaryDirectory(prefix="rollout-bench-md-", dir=args.dir) as scratch:
        results = {
            int(n): bench_size(int(n), args.runs, Path(scratch), deadline)
            for n in args.sizes.split(",")
        }
    print("\n| variant | " + " | ".join(f"{n:,} packages (median, min–max)" for n in results)
          + " |")  # fmt: skip
    print("|---|" + "---|" * len(results))
    for name in next(iter(results.values())):
        cells = []
        for times in results.values():
            t = times.get(name) or [float("nan")]
            cells.append(f"{statistics.median(t):.2f} s ({min(t):.2f}–{max(t):.2f})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    for n, times in results.items():
        for ours, direct in (("build_metadata YUM", "createrepo_c (direct)"),
                             ("build_metadata APT", "apt-ftparchive (direct)")):  # fmt: skip
            if times[ours] and times[direct]:
                ratio = statistics.median(times[ours]) / statistics.median(times[direct])
                print(f"{n:,}: {ours} / {direct} = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
