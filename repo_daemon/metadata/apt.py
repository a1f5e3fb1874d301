"""APT repository metadata: a flat repository (``Packages``, ``Packages.gz``, ``Release`` with
``Acquire-By-Hash`` and ``by-hash/SHA256/``), ``InRelease`` and ``Release.gpg`` when a key is
given, and the previous snapshot's indexes kept reachable by hash.

It writes only inside the repository directory (and the tool's cache when given); the
argument lists and Release fields are pure, running them goes through a ``CommandRunner``.

The tree layout (packages in a payload tree that may hold more than the area's releases):
apt-ftparchive is run, exactly as in a snapshot, over a directory of hard links of the listed
packages: ``LINKS_DIR`` in the area's cache, brought up to date (``payload.keep_linked``: links
only for the packages that changed), or without a cache a private one
(``payload.link_exactly``). Not ``apt-ftparchive generate`` with a
``FileList``: that takes a configuration of its own (archive dir, path prefixes, compression
and Contents settings) whose ``Filename`` lines and cache keys would have to be shown equal to
``packages .``'s, while the links give the very same run: the same ``Filename: ./…`` lines,
the same ``--db`` keys (``./<path>``), the same inode, size and mtime per file, so the
checksum cache and its record (``incremental``) stay valid across layouts (an area migrated
between them keeps its cache). Hard links, not symlinks: apt-ftparchive resolves a symlinked
package to its real path, which would change the cache keys.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from repo_daemon.metadata import commands, errors, incremental, payload, repository_dirs, signing

# The apt indexes written, uncompressed and gzip'd (apt reads both; xz would double the time
# spent here for a few hundred KiB saved on a 10,000-package index).
APT_INDEXES = ("Packages", "Packages.gz")
# What this module writes in a repository directory. A snapshot that has any of them before
# the metadata is built got them from a release: refused (``repository_dirs.refuse_existing``).
APT_OUTPUTS = (*APT_INDEXES, "Packages.xz", "Release", "InRelease", "Release.gpg", "by-hash")
CACHE_DB = "apt-ftparchive.db"  # in the area's cache directory (``--db``)
LINKS_DIR = "apt-packages"
"""In the area's cache directory (the tree layout): the hard links of exactly the area's
packages that apt-ftparchive indexes, kept between publications (``payload.keep_linked``)."""


@dataclass(frozen=True, kw_only=True)
class ReleaseFields:
    """The descriptive fields of an apt ``Release`` file.

    apt refuses to update from a source whose Origin, Label, Suite or Codename changed since
    the last update unless told to (``--allow-releaseinfo-change``), so these must stay the
    same for an area from one publication to the next: nothing here depends on a release.
    """

    origin: str
    label: str
    suite: str
    codename: str
    description: str = ""
    date: datetime | None = None  # None: now


def packages_argv(*, cache_db: Path | None = None) -> list[str]:
    """``apt-ftparchive packages .``, run in the repository directory, writing ``Packages`` on
    its standard output with ``Filename: ./…`` relative to it (what a flat repository needs).
    MD5sum and SHA256 per package, as Debian's own indexes carry."""
    argv = [
        "apt-ftparchive",
        "-o",
        "APT::FTPArchive::Packages::SHA1=false",
        "-o",
        "APT::FTPArchive::Packages::SHA512=false",
    ]
    if cache_db is not None:
        argv += ["--db", str(cache_db)]
    return [*argv, "packages", "."]


def release_argv(fields: ReleaseFields) -> list[str]:
    """``apt-ftparchive release .``, run in the repository directory after the indexes exist.

    Hashes only the indexes written here (not whatever else the release ships), with MD5Sum
    and SHA256: apt uses the strongest hash listed, so ``by-hash/SHA256/`` is the only by-hash
    directory it ever asks for.
    """
    values = {
        "Origin": fields.origin,
        "Label": fields.label,
        "Suite": fields.suite,
        "Codename": fields.codename,
        "Description": fields.description,
        "Acquire-By-Hash": "yes",
    }
    if fields.date is not None:
        values["Date"] = format_datetime(fields.date.astimezone(UTC), usegmt=True)
    argv = ["apt-ftparchive"]
    for name, value in values.items():
        if value:
            argv += ["-o", f"APT::FTPArchive::Release::{name}={value}"]
    argv += ["-o", "APT::FTPArchive::Release::Default-Patterns=false"]
    for name in APT_INDEXES:
        argv += ["-o", f"APT::FTPArchive::Release::Patterns::={name}"]
    for digest, on in (("MD5", True), ("SHA1", False), ("SHA256", True), ("SHA512", False)):
        argv += ["-o", f"APT::FTPArchive::Release::{digest}={'true' if on else 'false'}"]
    return [*argv, "release", "."]


def release_fields(
    repository: repository_dirs.Repository,
    *,
    origin: str,
    label: str,
    suite: str | None,
    codename: str | None,
    area_path: str,
    timestamp: int | None,
) -> ReleaseFields:
    """The Release fields of one APT repository. Suite defaults to the area's stage (the first
    component of ``area_path``: ``production``, ``stagerollout``…), Codename to the whole area
    path with ``-`` for ``/`` (``production-7``); both ``rollout`` without an area path."""
    area = [p for p in area_path.split("/") if p]
    suite = suite or (area[0] if area else "rollout")
    codename = codename or ("-".join(area) if area else suite)
    for name, value in (("origin", origin), ("label", label)):
        if not value or repository_dirs.has_control(value):
            raise errors.MetadataFailed(f"the Release {name} {value!r} must be non-empty, one line")
    for name, value in (("suite", suite), ("codename", codename)):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", value):
            raise errors.MetadataFailed(
                f"the Release {name} {value!r} must be one word (A-Z a-z 0-9 . _ + -)"
            )
    return ReleaseFields(
        origin=origin,
        label=label,
        suite=suite,
        codename=codename,
        description=repository_dirs.one_line(repository.name),
        date=None if timestamp is None else datetime.fromtimestamp(timestamp, UTC),
    )


def build(
    directory: Path,
    runner: commands.CommandRunner,
    signer: signing.Signer | None,
    fields: ReleaseFields,
    previous: Path | None,
    cache_dir: Path | None,
    *,
    source: payload.Source | None = None,
) -> str:
    """Index ``directory`` (with apt-ftparchive's ``--db`` cache in ``cache_dir``, when given
    and ``incremental.apt_cache`` trusts it), write Release, by-hash/, sign; returns what was
    done. ``source`` (the tree layout): the packages are ``source.files`` of
    ``source.directory``, indexed in a directory of hard links of exactly them
    (``payload.link_exactly``), and ``directory`` receives only the metadata."""
    indexed = directory
    if source is not None and cache_dir is not None:
        # kept in the area's cache and brought up to date: O(changed packages) links
        cache_dir.mkdir(parents=True, exist_ok=True)
        indexed = payload.keep_linked(source.directory, source.files, cache_dir / LINKS_DIR)
    elif source is not None:
        indexed = payload.link_exactly(source.directory, source.files, source.work / "packages")
    elif cache_dir is not None and (cache_dir / LINKS_DIR).exists():
        # the area left the tree layout: its links must not keep pool files alive
        shutil.rmtree(cache_dir / LINKS_DIR)
    cache_db = work_db = None
    current: dict[str, int] = {}
    known: incremental.Known = {}
    how = ""
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache_db = cache_dir / CACHE_DB
        current = (
            incremental.scan(indexed, incremental.DEB_SUFFIXES)
            if source is None
            else dict(source.files)  # what the links are, without walking them again
        )
        recorded = incremental.read_known(cache_dir / incremental.KNOWN)
        trust = incremental.apt_cache(indexed, current, recorded)
        warm = trust.reuse and recorded is not None and cache_db.exists()
        if warm and recorded is not None:
            known = recorded
            how = "; unchanged packages from the cache"
        else:
            how = f"; read in full: {trust.reason if not trust.reuse else 'the cache is empty'}"
            # Nothing of the old cache is trusted: gone before anything else, so that a crash
            # from here on never leaves a database the record does not describe.
            cache_db.unlink(missing_ok=True)
            (cache_dir / incremental.KNOWN).unlink(missing_ok=True)
        work_db = _working_copy(cache_db, warm=warm)
    try:
        argv = packages_argv(cache_db=work_db)
        plain = directory / "Packages"
        where = directory if source is None else source.directory
        what = f"indexing {where}"
        result = commands.run(runner, argv, cwd=indexed, what=what, stdout=plain)
        # apt-ftparchive reports an unreadable .deb with "E:" lines and still exits 0.
        problems = [
            line
            for line in result.stderr.decode("utf-8", "replace").splitlines()
            if line.startswith("E:")
        ]
        if problems:
            tail = "\n".join(problems[-commands.STDERR_TAIL_LINES :])
            raise errors.MetadataFailed(
                f"apt-ftparchive could not index every package in {where}: {tail}",
                argv=argv,
                returncode=result.returncode,
                stderr_tail=tail,
            )
        if cache_db is not None and cache_dir is not None and work_db is not None:
            # The record covers both the old and the new entries while the database moves
            # (a crash in between leaves it over-cautious, never trusting a stale entry).
            pending, final = incremental.indexed(indexed, current, known)
            record = cache_dir / incremental.KNOWN
            incremental.write_known(record, pending)
            if work_db.exists():
                work_db.replace(cache_db)  # the cache moves on only after a complete run
            incremental.write_known(record, final)
    finally:
        if work_db is not None:
            work_db.unlink(missing_ok=True)
    count = _compress(plain, directory / "Packages.gz")

    by_hash = directory / "by-hash" / "SHA256"
    by_hash.mkdir(parents=True)
    for name in APT_INDEXES:
        with (directory / name).open("rb") as index:
            digest = hashlib.file_digest(index, "sha256").hexdigest()
        if not (by_hash / digest).exists():
            os.link(directory / name, by_hash / digest)
    carried = 0 if previous is None else _carry_by_hash(previous, by_hash)

    # Release is not among the patterns hashed, so it can be written while the tool scans.
    argv = release_argv(fields)
    commands.run(runner, argv, cwd=directory, what="writing Release", stdout=directory / "Release")
    detail = f"Packages ({repository_dirs.packages_phrase(count)}{how}), Release, by-hash/"
    if carried:
        detail += f" (+{carried} indexes of the previous snapshot)"
    if signer is not None:
        release = directory / "Release"
        for output, clearsign in (("InRelease", True), ("Release.gpg", False)):
            argv = signer.sign_argv(release, directory / output, clearsign=clearsign)
            commands.run(runner, argv, cwd=directory, what=f"signing {release}")
        detail += ", InRelease and Release.gpg signed"
    if previous is not None:
        _later_than(previous, directory)
    return detail


def _working_copy(cache_db: Path, *, warm: bool) -> Path:
    """Where this run's apt-ftparchive keeps its checksum cache: a copy of ``cache_db`` when
    ``warm`` (else a name that does not exist yet: the tool refuses an empty file, and starts
    an empty cache there).

    A run killed mid-write (SIGKILL of the daemon, a full disk) would leave a Berkeley DB the
    tool cannot open ("Unable to open DB file ...: File exists") or, worse, one with wrong
    entries, and every later publication of the area would fail or carry them. The cache is
    replaced by the copy only after a complete run. Copies a killed run left are deleted
    here: a cache directory belongs to one area, whose lock the caller holds.
    """
    for leftover in cache_db.parent.glob(f".{cache_db.name}.*"):
        leftover.unlink(missing_ok=True)
    work = cache_db.with_name(f".{cache_db.name}.{secrets.token_hex(4)}")
    if warm and cache_db.exists():
        shutil.copyfile(cache_db, work)
    return work


def _compress(plain: Path, compressed: Path) -> int:
    """gzip ``plain`` (reproducibly: no name, no time) in bounded memory; returns how many
    package stanzas it holds."""
    count = 0
    tail = b"\n"  # a stanza at the very start counts like one after a newline
    with (
        plain.open("rb") as source,
        compressed.open("wb") as target,
        gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=target, mtime=0) as gz,
    ):
        while chunk := source.read(1 << 20):
            gz.write(chunk)
            count += (tail + chunk).count(b"\nPackage: ")
            tail = chunk[-9:]  # shorter than the pattern: no match is counted twice
    return count


def _packages(count: int) -> str:
    return f"{count} package{'' if count == 1 else 's'}"


def _later_than(previous: Path, directory: Path) -> None:
    """Give the new Release files a modification time after the previous snapshot's.

    apt asks for InRelease with If-Modified-Since (the previous answer's Last-Modified, in
    whole seconds): two snapshots made within one second would get "304 Not Modified" and a
    client would keep the old lists until the next publication.
    """
    try:
        before = int((previous / "Release").stat().st_mtime)
    except OSError:
        return
    for name in ("Release", "InRelease", "Release.gpg"):
        path = directory / name
        if path.exists() and int(path.stat().st_mtime) <= before:
            os.utime(path, (before + 1, before + 1))


def _carry_by_hash(previous: Path, by_hash: Path) -> int:
    """Keep the indexes the previous snapshot's Release names reachable by hash."""
    release = previous / "Release"
    if not release.is_file() or previous.is_symlink():
        return 0
    carried = 0
    for digest in release_sha256(release.read_text(encoding="utf-8", errors="replace")):
        source, target = previous / "by-hash" / "SHA256" / digest, by_hash / digest
        if source.is_file() and not source.is_symlink() and not target.exists():
            repository_dirs.link_previous(source, target)
            carried += 1
    return carried


def release_sha256(release: str) -> dict[str, str]:
    """The ``SHA256:`` entries of a Release file: hex digest → file name."""
    entries: dict[str, str] = {}
    in_section = False
    for line in release.splitlines():
        if not line.startswith(" "):
            in_section = line.strip() == "SHA256:"
            continue
        fields = line.split()
        if in_section and len(fields) == 3 and re.fullmatch(r"[0-9a-f]{64}", fields[0]):
            entries[fields[0]] = fields[2]
    return entries
