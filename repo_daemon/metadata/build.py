"""Repository metadata for a tree being published: ``repodata/`` for YUM repositories
(createrepo_c); a flat apt repository (``Packages``, ``Release`` with ``Acquire-By-Hash`` and
``by-hash/``) for APT ones; their signatures, the public key and the client configuration files
sites copy.

It works on a plain directory (a snapshot that nobody serves yet) and writes only inside it, or
into ``cache_dir`` when one is given. It never swaps, promotes or removes trees: ``publish``
does that. Tools run with argument lists through a ``CommandRunner``.

Over 500 lines for now: its split along these seams is on branch h-publish (errors, commands,
repository_dirs, yum, apt, clients, build), not merged yet (issue 12).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit

from repo_daemon import errors
from repo_daemon.metadata import signing

logger = logging.getLogger(__name__)

# The Debian package that ships each tool, named when the tool is missing.
DEBIAN_PACKAGES: Mapping[str, str] = {
    "createrepo_c": "createrepo-c",
    "apt-ftparchive": "apt-utils",
    "gpg": "gnupg",
}

# The apt indexes written, uncompressed and gzip'd (apt reads both; xz would double the time
# spent here for a few hundred KiB saved on a 10,000-package index).
APT_INDEXES = ("Packages", "Packages.gz")
# What this module writes in a repository directory. A snapshot that has any of them before
# the metadata is built got them from a release: refused (see ``_refuse_existing``).
APT_OUTPUTS = (*APT_INDEXES, "Packages.xz", "Release", "InRelease", "Release.gpg", "by-hash")
YUM_OUTPUTS = ("repodata", ".repodata")

_STDERR_TAIL_LINES = 15
_STDERR_TAIL_CHARS = 2000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WALK_DONE = re.compile(rb"Directory walk done - (\d+) packages")


class MetadataFailed(errors.DaemonError):
    """A repository's metadata could not be built or signed.

    ``argv`` is the command that failed (it never holds a secret: gpg reads the passphrase
    from a file), ``returncode`` its exit code (None when it did not run), ``stderr_tail`` the
    end of what it printed. ``transient`` is true only for a timeout.
    """

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str] = (),
        returncode: int | None = None,
        stderr_tail: str = "",
        transient: bool = False,
    ) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.transient = transient
        super().__init__(message)


class MetadataToolMissing(MetadataFailed):
    """A tool the metadata needs is not installed; the message names its Debian package."""

    def __init__(self, tool: str) -> None:
        package = DEBIAN_PACKAGES.get(tool, tool)
        self.tool = tool
        self.package = package
        super().__init__(
            f"{tool} is not installed on the repository host: install the Debian package "
            f"{package} (apt-get install {package})"
        )


@dataclass(frozen=True, kw_only=True)
class Completed:
    """What a finished command returned."""

    returncode: int
    stdout: bytes = b""
    stderr: bytes = b""


class CommandRunner(Protocol):
    """Runs one command (an argument list, never a shell line) in ``cwd`` and waits for it;
    its standard output goes to the file ``stdout`` when one is given (an index of 10,000
    packages is megabytes), else into ``Completed.stdout``.

    Raises ``FileNotFoundError`` when the program does not exist and
    ``subprocess.TimeoutExpired`` when it ran too long; a non-zero exit is returned, not raised.
    """

    def __call__(
        self, argv: Sequence[str], *, cwd: Path, stdout: Path | None = None
    ) -> Completed: ...


@dataclass(frozen=True)
class SubprocessRunner:
    """The real ``CommandRunner``: ``subprocess.run`` in the C locale, output captured."""

    timeout: float = 3600.0

    def __call__(self, argv: Sequence[str], *, cwd: Path, stdout: Path | None = None) -> Completed:
        with contextlib.ExitStack() as stack:
            out = subprocess.PIPE if stdout is None else stack.enter_context(stdout.open("wb"))
            proc = subprocess.run(
                list(argv),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.PIPE,
                timeout=self.timeout,
                check=False,
                env={**os.environ, "LC_ALL": "C"},
            )
        return Completed(returncode=proc.returncode, stdout=proc.stdout or b"", stderr=proc.stderr)


class Repository(Protocol):
    """A repository to index: ``manifest.RepositorySpec`` or publish's ``trees.RepositoryEntry``.
    ``relative_path`` is below the tree's root (the area's root), ``""`` for the root."""

    @property
    def identifier(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...  # "YUM" or "APT"
    @property
    def relative_path(self) -> str: ...


class _Release(Protocol):
    @property
    def repositories(self) -> Sequence[Repository]: ...


class AreaContents(Protocol):
    """What ``metadata_step`` reads of publish's ``trees.AreaManifest``."""

    @property
    def area(self) -> str: ...
    @property
    def releases(self) -> Sequence[_Release]: ...


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


# ----------------------------------------------------------------------------------------
# Plans: argument lists, pure.


def createrepo_argv(
    directory: Path, *, timestamp: int | None = None, cache_dir: Path | None = None
) -> list[str]:
    """``createrepo_c`` for one YUM repository directory.

    No sqlite databases (dnf reads the XML; yum on EL7 works without them), checksums in the
    metadata file names (a client that read the previous repomd.xml never gets a new file
    under an old name), gzip (what every yum and dnf reads), and an exit code of 2 when any
    rpm cannot be read: without ``--error-exit-val`` createrepo_c skips it and succeeds.
    ``timestamp`` (seconds) pins the revision and every timestamp, for byte-identical output.
    """
    argv = [
        "createrepo_c",
        "--no-database",
        "--unique-md-filenames",
        "--checksum=sha256",
        "--general-compress-type=gz",
        "--error-exit-val",
    ]
    if timestamp is not None:
        argv += [f"--revision={timestamp}", "--set-timestamp-to-revision"]
    if cache_dir is not None:
        argv += [f"--cachedir={cache_dir}"]
    return [*argv, "--", str(directory)]


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
    repository: Repository,
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
        if not value or _CONTROL.search(value):
            raise MetadataFailed(f"the Release {name} {value!r} must be non-empty, one line")
    for name, value in (("suite", suite), ("codename", codename)):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", value):
            raise MetadataFailed(
                f"the Release {name} {value!r} must be one word (A-Z a-z 0-9 . _ + -)"
            )
    return ReleaseFields(
        origin=origin,
        label=label,
        suite=suite,
        codename=codename,
        description=" ".join(_CONTROL.sub(" ", repository.name).split()),
        date=None if timestamp is None else datetime.fromtimestamp(timestamp, UTC),
    )


# Client configuration written in the root of a tree; sites copy one of them.
DNF_REPO_FILE = "rollout.repo"
APT_LIST_FILE = "rollout.list"  # one-line format
APT_SOURCES_FILE = "rollout.sources"  # deb822 format (apt >= 1.1)
# Where sites install the key (after checking its fingerprint). Not the key's URL in the tree:
# whoever can replace the tree could replace that key too.
DEFAULT_APT_KEYRING = f"/etc/apt/keyrings/{signing.APT_KEY_FILE}"
DEFAULT_RPM_GPGKEY = f"file:///etc/pki/rpm-gpg/{signing.RPM_KEY_FILE}"


def client_config(
    base_url: str,
    area_path: str,
    repositories: Sequence[Repository],
    signed: bool,
    *,
    apt_keyring: str = DEFAULT_APT_KEYRING,
    rpm_gpgkey: str = DEFAULT_RPM_GPGKEY,
) -> dict[str, str]:
    """The client configuration of the tree served at ``base_url`` + ``area_path``: file name
    → text. ``rollout.repo`` (dnf/yum) when there is a YUM repository; ``rollout.list`` and
    ``rollout.sources`` (the same apt sources in both formats) when there is an APT one.

    Signed: dnf checks repomd.xml with the key a site installed (``rpm_gpgkey``, a URL) and
    each package against the signed metadata; apt checks InRelease with the key a site
    installed as ``apt_keyring``. Unsigned: both files say so and turn checking off.
    """
    scheme = urlsplit(base_url)
    if scheme.scheme not in ("http", "https") or not scheme.netloc:
        raise MetadataFailed(f"base URL {base_url!r} is not an http(s) URL")
    area = "/".join(_parts(area_path))
    area_url = base_url.rstrip("/") + "/" + (quote(area) + "/" if area else "")
    slug = _slug(area) or "root"
    yum: list[str] = []
    deb_lines: list[str] = []
    deb822: list[str] = []
    seen: set[tuple[str, str]] = set()
    for repository in repositories:
        path = "/".join(_parts(repository.relative_path))
        if (repository.type, path) in seen:
            continue
        seen.add((repository.type, path))
        url = area_url + (quote(path) + "/" if path else "")
        name = " ".join(_CONTROL.sub(" ", repository.name).split()) or repository.identifier
        if repository.type == "YUM":
            yum += [
                f"[rollout-{slug}-{_slug(repository.identifier) or 'repo'}]",
                f"name={name} ({area or '/'})",
                f"baseurl={url}",
                "enabled=1",
                "gpgcheck=0",
                f"repo_gpgcheck={1 if signed else 0}",
                *([f"gpgkey={rpm_gpgkey}"] if signed else []),
                "",
            ]
        elif repository.type == "APT":
            option = f"signed-by={apt_keyring}" if signed else "trusted=yes"
            deb_lines += [f"# {name}", f"deb [{option}] {url} ./", ""]
            deb822 += [
                f"# {name}",
                "Types: deb",
                f"URIs: {url}",
                "Suites: ./",
                f"Signed-By: {apt_keyring}" if signed else "Trusted: yes",
                "",
            ]
    files: dict[str, str] = {}
    key_path = rpm_gpgkey.removeprefix("file://")  # a site's own URL is shown as it is
    if yum:
        header = [
            f"# Rollout bridge: dnf/yum repositories of {area_url}",
            f"# Save as /etc/yum.repos.d/rollout-{slug}.repo.",
        ]
        header += (
            [
                f"# Install {area_url}{signing.RPM_KEY_FILE} as {key_path}",
                "# after checking its fingerprint. repo_gpgcheck: repomd.xml is verified with",
                "# that key, each package against the SHA-256 in the signed metadata (so rpm",
                "# signatures, gpgcheck, are not needed).",
            ]
            if signed
            else ["# UNSIGNED: nothing verifies this repository's metadata (docs/clients.md)."]
        )
        files[DNF_REPO_FILE] = "\n".join([*header, "", *yum])
    if deb_lines:
        header = [
            f"# Rollout bridge: apt sources of {area_url}",
            f"# Save as /etc/apt/sources.list.d/rollout-{slug}.list or .sources (one, not both).",
        ]
        header += (
            [
                f"# Install {area_url}{signing.APT_KEY_FILE} as {apt_keyring}",
                "# after checking its fingerprint.",
            ]
            if signed
            else ["# UNSIGNED: trusted=yes turns apt's verification off (docs/clients.md)."]
        )
        files[APT_LIST_FILE] = "\n".join([*header, "", *deb_lines])
        files[APT_SOURCES_FILE] = "\n".join([*header, "", *deb822])
    return files


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")


# ----------------------------------------------------------------------------------------
# Doing it.


def build_metadata(
    tree: Path,
    repositories: Sequence[Repository],
    *,
    signer: signing.Signer | None = None,
    origin: str = "Rollout bridge",
    label: str = "Rollout bridge",
    suite: str | None = None,
    codename: str | None = None,
    base_url: str | None = None,
    area_path: str = "",
    previous_tree: Path | None = None,
    cache_dir: Path | None = None,
    timestamp: int | None = None,
    runner: CommandRunner | None = None,
) -> list[str]:
    """Write the metadata of every repository in ``tree`` (a snapshot directory) and return
    what was done, one line per step, for the log and the job's checkpoint.

    - YUM: ``repodata/`` by createrepo_c (``createrepo_argv``), and ``repodata/repomd.xml.asc``
      plus ``repodata/repomd.xml.key`` when signing.
    - APT: a flat repository: ``Packages``, ``Packages.gz``, ``Release`` (``release_fields``)
      with ``Acquire-By-Hash: yes`` and ``by-hash/SHA256/<sha256>`` hard links of the indexes;
      ``InRelease`` (clearsigned) and ``Release.gpg`` (detached, armored) when signing.
    - Signing: the public key(s) in the tree's root as ``rollout-archive-keyring.asc`` and
      ``RPM-GPG-KEY-rollout``.
    - ``base_url`` given: the client configuration of ``client_config`` in the tree's
      root, for the tree served at ``base_url`` + ``area_path``.

    ``previous_tree`` is the snapshot being replaced (the area's current target, still served
    while this one is built). Its index files stay reachable in the new snapshot (``by-hash/``
    and the checksum-named ``repodata/`` files, hard-linked), so a client that read the old
    ``InRelease``/``repomd.xml`` just before the swap still finds what it names: no "Hash Sum
    mismatch", no 404. ``cache_dir``, private to one area, keeps the tools' checksum caches
    (apt-ftparchive ``--db``, createrepo_c ``--cachedir``) across snapshots: it is the one place
    written outside ``tree``. ``timestamp`` pins every date written (reproducible output).

    Everything that can be checked without the tools is checked before anything is written:
    repository types and paths, Release fields, files of the names written here already in
    the tree (metadata a release shipped), the signing keys. Raises ``MetadataFailed``
    (permanent, with the tool's exit code and stderr tail; transient on a timeout) and
    ``MetadataToolMissing`` naming the Debian package to install. After a failure the tree is
    half-done: the caller discards the snapshot.
    """
    run: CommandRunner = runner or SubprocessRunner()
    tree = tree.resolve()
    if not tree.is_dir():
        raise MetadataFailed(f"{tree} is not a directory")
    plan = _repository_dirs(tree, repositories)
    fields = {
        directory: release_fields(
            repository,
            origin=origin,
            label=label,
            suite=suite,
            codename=codename,
            area_path=area_path,
            timestamp=timestamp,
        )
        for repository, directory in plan
        if repository.type == "APT"
    }
    for repository, directory in plan:
        outputs = YUM_OUTPUTS if repository.type == "YUM" else APT_OUTPUTS
        _refuse_existing(tree, directory, outputs)
    top = [signing.APT_KEY_FILE, signing.RPM_KEY_FILE] if signer is not None else []
    if base_url is not None:
        top += [DNF_REPO_FILE, APT_LIST_FILE, APT_SOURCES_FILE]
    _refuse_existing(tree, tree, top)
    done: list[str] = []

    key = b"" if signer is None else _public_keys(run, signer, tree)

    for repository, directory in plan:
        previous = None
        if previous_tree is not None:
            previous = previous_tree.joinpath(*_parts(repository.relative_path))
        started = time.monotonic()
        directory.mkdir(parents=True, exist_ok=True)
        if repository.type == "YUM":
            detail = _build_yum(directory, run, signer, key, previous, cache_dir, timestamp)
        else:
            detail = _build_apt(directory, run, signer, fields[directory], previous, cache_dir)
        line = (
            f"{repository.type} repository {repository.identifier} "
            f"({repository.relative_path or '.'}): {detail} in "
            f"{time.monotonic() - started:.2f} s"
        )
        logger.info(line, extra={"action": "build_metadata"})
        done.append(line)

    if signer is not None:
        for name in (signing.APT_KEY_FILE, signing.RPM_KEY_FILE):
            (tree / name).write_bytes(key)
        done.append(
            f"public key {', '.join(signer.published)} published as "
            f"{signing.APT_KEY_FILE}, {signing.RPM_KEY_FILE}"
        )
    if base_url is not None:
        files = client_config(base_url, area_path, repositories, signed=signer is not None)
        for name, text in files.items():
            (tree / name).write_text(text, encoding="utf-8")
        done.append(f"client configuration {', '.join(sorted(files))}")
    return done


def _public_keys(run: CommandRunner, signer: signing.Signer, tree: Path) -> bytes:
    """The armored public keys to publish, checked to hold every key asked for. Runs first,
    so a wrong key id fails before minutes of indexing."""
    argv = signer.list_argv()
    listing = _run(run, argv, cwd=tree, what="looking up the signing keys", check=False)
    fingerprints = {
        line.split(":")[9]
        for line in listing.stdout.decode("utf-8", "replace").splitlines()
        if line.startswith("fpr:") and line.count(":") >= 9
    }
    missing = signer.missing(fingerprints)
    if missing:
        raise MetadataFailed(
            f"gpg has no public key {', '.join(missing)} in "
            f"{signer.gnupghome or 'its default home'}: check the signing key id and GNUPGHOME",
            argv=argv,
            returncode=listing.returncode,
            stderr_tail=_tail(listing.stderr),
        )
    if listing.returncode != 0:
        _run(run, argv, cwd=tree, what="looking up the signing keys")  # raises, with stderr
    key = _run(run, signer.export_argv(), cwd=tree, what="exporting the public keys").stdout
    if key.count(b"-----BEGIN PGP PUBLIC KEY BLOCK-----") != 1:
        raise MetadataFailed(f"gpg exported no armored public key for {signer.key_id}")
    return key


def _parts(relative_path: str) -> list[str]:
    return [p for p in relative_path.split("/") if p]


def _repository_dirs(
    tree: Path, repositories: Sequence[Repository]
) -> list[tuple[Repository, Path]]:
    """Each repository with its directory (which may not exist yet: a repository the release
    put nothing in gets empty metadata), checked: a known type, below ``tree`` with no
    symlink on the way, not nested in another repository of its type (the tools index every
    package below their directory)."""
    plan: list[tuple[Repository, Path]] = []
    seen: dict[tuple[str, tuple[str, ...]], str] = {}
    for repository in repositories:
        name = f"repository {repository.identifier}"
        if repository.type not in ("YUM", "APT"):
            raise MetadataFailed(f"{name} has type {repository.type!r}; expected YUM or APT")
        parts = tuple(_parts(repository.relative_path))
        if any(p in (".", "..") for p in parts):
            raise MetadataFailed(f"{name}: path {repository.relative_path!r} leaves the tree")
        if (repository.type, parts) in seen:
            continue  # the same directory twice: one index serves both
        for (kind, other), other_id in seen.items():
            shorter = min(len(parts), len(other))
            if kind == repository.type and parts[:shorter] == other[:shorter]:
                raise MetadataFailed(
                    f"{name} ({'/'.join(parts) or '.'}) and repository {other_id} "
                    f"({'/'.join(other) or '.'}) are {kind} repositories inside one another; "
                    "their packages would be indexed twice"
                )
        seen[(repository.type, parts)] = repository.identifier
        directory = tree
        for part in parts:
            directory = directory / part
            if directory.is_symlink():
                raise MetadataFailed(f"{name}: {directory} is a symlink; refusing to follow it")
        plan.append((repository, directory))
    return plan


def _run(
    run: CommandRunner,
    argv: Sequence[str],
    *,
    cwd: Path,
    what: str,
    check: bool = True,
    stdout: Path | None = None,
) -> Completed:
    tool = argv[0]
    try:
        result = run(argv, cwd=cwd) if stdout is None else run(argv, cwd=cwd, stdout=stdout)
    except FileNotFoundError as exc:
        if exc.filename not in (None, tool):
            raise MetadataFailed(f"{tool} could not start {what}: {exc}", argv=argv) from exc
        raise MetadataToolMissing(tool) from exc
    except subprocess.TimeoutExpired as exc:
        raise MetadataFailed(
            f"{tool} did not finish {what} within {exc.timeout:g} s",
            argv=argv,
            transient=True,
        ) from exc
    if check and result.returncode != 0:
        tail = _tail(result.stderr or result.stdout)
        raise MetadataFailed(
            f"{tool} failed with exit code {result.returncode} {what}: {tail}",
            argv=argv,
            returncode=result.returncode,
            stderr_tail=tail,
        )
    return result


def _tail(output: bytes) -> str:
    lines = output.decode("utf-8", "replace").strip().splitlines()
    tail = "\n".join(lines[-_STDERR_TAIL_LINES:])
    return tail[-_STDERR_TAIL_CHARS:] or "(no output)"


def _refuse_existing(tree: Path, directory: Path, names: Sequence[str]) -> None:
    """Metadata is generated for the whole area (every release in it), never taken from a
    release: a release that ships ``repodata/`` or ``Release`` is refused, by name, rather
    than having its files replaced (publish checks that payload files are left as linked)."""
    found = [
        str((directory / name).relative_to(tree))
        for name in names
        if (directory / name).exists() or (directory / name).is_symlink()
    ]
    if found:
        raise MetadataFailed(
            f"the snapshot already holds {', '.join(found)}: repository metadata is generated "
            "by the bridge for the whole area; the release must leave it out of release.xml"
        )


def _link(source: Path, target: Path) -> None:
    """Hard-link ``source`` (of the previous snapshot) as ``target``; copy across filesystems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _build_yum(
    directory: Path,
    run: CommandRunner,
    signer: signing.Signer | None,
    key: bytes,
    previous: Path | None,
    cache_dir: Path | None,
    timestamp: int | None,
) -> str:
    cache = None
    if cache_dir is not None:
        cache = cache_dir / "createrepo_c"
        cache.mkdir(parents=True, exist_ok=True)
    argv = createrepo_argv(directory, timestamp=timestamp, cache_dir=cache)
    result = _run(run, argv, cwd=directory, what=f"indexing {directory}")
    found = _WALK_DONE.search(result.stdout)
    count = _packages(int(found.group(1))) if found else "? packages"
    detail = f"repodata/ by createrepo_c ({count})"
    repodata = directory / "repodata"
    if previous is not None:
        carried = _carry_repodata(previous / "repodata", repodata)
        if carried:
            detail += f", {carried} files of the previous repodata kept"
    if signer is not None:
        repomd = repodata / "repomd.xml"
        argv = signer.sign_argv(repomd, repodata / "repomd.xml.asc")
        _run(run, argv, cwd=directory, what=f"signing {repomd}")
        (repodata / signing.REPOMD_KEY_FILE).write_bytes(key)
        detail += ", repomd.xml signed"
    return detail


def _carry_repodata(previous: Path, repodata: Path) -> int:
    """Keep the previous snapshot's metadata files (those its repomd.xml names) reachable."""
    repomd = previous / "repomd.xml"
    if not repomd.is_file() or previous.is_symlink():
        return 0
    carried = 0
    text = repomd.read_text(encoding="utf-8", errors="replace")
    for name in set(re.findall(r'<location href="repodata/([^"/]+)"', text)):
        source, target = previous / name, repodata / name
        if source.is_file() and not source.is_symlink() and not target.exists():
            _link(source, target)
            carried += 1
    return carried


def _build_apt(
    directory: Path,
    run: CommandRunner,
    signer: signing.Signer | None,
    fields: ReleaseFields,
    previous: Path | None,
    cache_dir: Path | None,
) -> str:
    cache_db = None
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache_db = cache_dir / "apt-ftparchive.db"
    argv = packages_argv(cache_db=cache_db)
    plain = directory / "Packages"
    result = _run(run, argv, cwd=directory, what=f"indexing {directory}", stdout=plain)
    # apt-ftparchive reports an unreadable .deb with "E:" lines and still exits 0.
    problems = [
        line
        for line in result.stderr.decode("utf-8", "replace").splitlines()
        if line.startswith("E:")
    ]
    if problems:
        tail = "\n".join(problems[-_STDERR_TAIL_LINES:])
        raise MetadataFailed(
            f"apt-ftparchive could not index every package in {directory}: {tail}",
            argv=argv,
            returncode=result.returncode,
            stderr_tail=tail,
        )
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
    _run(run, argv, cwd=directory, what="writing Release", stdout=directory / "Release")
    detail = f"Packages ({_packages(count)}), Release, by-hash/"
    if carried:
        detail += f" (+{carried} indexes of the previous snapshot)"
    if signer is not None:
        source = directory / "Release"
        for output, clearsign in (("InRelease", True), ("Release.gpg", False)):
            argv = signer.sign_argv(source, directory / output, clearsign=clearsign)
            _run(run, argv, cwd=directory, what=f"signing {source}")
        detail += ", InRelease and Release.gpg signed"
    if previous is not None:
        _later_than(previous, directory)
    return detail


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
            _link(source, target)
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


def metadata_step(
    root: Path,
    base_url: str,
    *,
    signer: signing.Signer | None = None,
    cache_root: Path | None = None,
    runner: CommandRunner | None = None,
) -> Callable[[Path, AreaContents], None]:
    """A ``publish.MetadataStep`` for the trees below ``root`` served at ``base_url``: builds
    the metadata of every repository the area's releases declare into the new snapshot, with
    the snapshot still live at ``root/<area>`` as ``previous_tree`` (read only) and, when
    ``cache_root`` is given, ``cache_root/<area>`` as the area's private ``cache_dir``."""

    def step(snapshot: Path, contents: AreaContents) -> None:
        live = root / contents.area
        build_metadata(
            snapshot,
            [r for release in contents.releases for r in release.repositories],
            signer=signer,
            base_url=base_url,
            area_path=contents.area,
            previous_tree=live.resolve() if live.is_dir() else None,
            cache_dir=None if cache_root is None else cache_root / _slug(contents.area),
            runner=runner,
        )

    return step
