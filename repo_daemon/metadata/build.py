"""The entry point that builds a snapshot's repository metadata: every repository the area's
releases declare (``yum``, ``apt``), the published public key, the client configuration
(``clients``), in that order, after checking everything that can be checked without the tools.

It works on a plain directory (a snapshot that nobody serves yet) and writes only inside it, or
into ``cache_dir`` when one is given. It never swaps, promotes or removes trees: ``publish``
does that. Tools run with argument lists through a ``commands.CommandRunner``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from repo_daemon.metadata import (
    apt,
    caches,
    clients,
    commands,
    errors,
    payload,
    repository_dirs,
    signing,
    yum,
)
from repo_daemon.metadata import incremental as incremental_rules

logger = logging.getLogger(__name__)


class _File(Protocol):
    @property
    def path(self) -> str: ...


class _Release(Protocol):
    @property
    def repositories(self) -> Sequence[repository_dirs.Repository]: ...
    @property
    def files(self) -> Sequence[_File]: ...  # read only in the tree layout


class AreaContents(Protocol):
    """What ``metadata_step`` reads of publish's ``manifest.AreaManifest``."""

    @property
    def area(self) -> str: ...
    @property
    def releases(self) -> Sequence[_Release]: ...


def build_metadata(
    tree: Path,
    repositories: Sequence[repository_dirs.Repository],
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
    incremental: bool = True,
    runner: commands.CommandRunner | None = None,
    payload_dir: Path | None = None,
    payload_files: Iterable[str] = (),
    previous_within: Path | None = None,
) -> list[str]:
    """Write the metadata of every repository in ``tree`` (a snapshot directory) and return
    what was done, one line per step, for the log and the job's checkpoint.

    - YUM: ``repodata/`` by createrepo_c (``yum.createrepo_argv``), and ``repodata/repomd.xml.asc``
      plus ``repodata/repomd.xml.key`` when signing.
    - APT: a flat repository: ``Packages``, ``Packages.gz``, ``Release`` (``apt.release_fields``)
      with ``Acquire-By-Hash: yes`` and ``by-hash/SHA256/<sha256>`` hard links of the indexes;
      ``InRelease`` (clearsigned) and ``Release.gpg`` (detached, armored) when signing.
    - Signing: the public key(s) in the tree's root as ``rollout-archive-keyring.asc`` and
      ``RPM-GPG-KEY-rollout`` (which also holds the providers' package keys, when named).
    - ``base_url`` given: the client configuration of ``clients.client_config`` in the tree's
      root, for the tree served at ``base_url`` + ``area_path``.

    ``previous_tree`` is the snapshot being replaced (the area's current target, still served
    while this one is built). Its index files stay reachable in the new snapshot (``by-hash/``
    and the checksum-named ``repodata/`` files, hard-linked), so a client that read the old
    ``InRelease``/``repomd.xml`` just before the swap still finds what it names: no "Hash Sum
    mismatch", no 404. ``cache_dir``, private to one area, keeps apt-ftparchive's checksum cache
    (``--db``, with ``incremental.KNOWN``, its record) across snapshots: it is the one place
    written outside ``tree``. ``timestamp`` pins every date written (reproducible output).

    ``incremental`` (the default): createrepo_c runs with ``--update`` from ``previous_tree``'s
    repodata, so unchanged packages are not read again, unless ``incremental.yum_update``
    finds a reason not to trust it (then it reads everything and says why). apt-ftparchive's
    cache is used whenever ``cache_dir`` is given, under ``incremental.apt_cache``'s check.
    Either way the metadata's content is what a full rebuild writes.

    ``payload_dir`` (the tree layout): the packages are read from there (read only), and
    exactly ``payload_files`` (paths below the area) are indexed, whatever else the payload
    tree holds; ``tree`` receives only metadata, at the same relative paths
    (``payload.Source``). ``previous_tree`` is then the live area, whose metadata entries are
    links into the live metadata snapshot: the tools get their resolved directories
    (``payload.previous_metadata``), used only when they lie below ``previous_within`` when
    given (the repository's snapshots: a link planted in the tree leads nowhere else), and the
    previous packages are its own. The content written is what a snapshot holding the same
    packages gets.

    Everything that can be checked without the tools is checked before anything is written:
    repository types and paths, Release fields, files of the names written here already in
    the tree (metadata a release shipped), the signing keys. Raises ``MetadataFailed``
    (permanent, with the tool's exit code and stderr tail; transient on a timeout) and
    ``MetadataToolMissing`` naming the Debian package to install. After a failure the tree is
    half-done: the caller discards the snapshot.
    """
    run: commands.CommandRunner = runner or commands.SubprocessRunner()
    tree = tree.resolve()
    if not tree.is_dir():
        raise errors.MetadataFailed(f"{tree} is not a directory")
    if payload_dir is not None:
        payload_dir = payload_dir.resolve()
        if not payload_dir.is_dir():
            raise errors.MetadataFailed(f"the payload tree {payload_dir} is not a directory")
        if payload_dir == tree or tree.is_relative_to(payload_dir):
            raise errors.MetadataFailed(f"{tree} is inside the payload tree {payload_dir}")
    plan = repository_dirs.plan(tree, repositories)
    fields = {
        directory: apt.release_fields(
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
        outputs = yum.YUM_OUTPUTS if repository.type == "YUM" else apt.APT_OUTPUTS
        repository_dirs.refuse_existing(tree, directory, outputs)
    top = [signing.APT_KEY_FILE, signing.RPM_KEY_FILE] if signer is not None else []
    if base_url is not None:
        top += [clients.DNF_REPO_FILE, clients.APT_LIST_FILE, clients.APT_SOURCES_FILE]
    repository_dirs.refuse_existing(tree, tree, top)
    done: list[str] = []

    key = rpm_key = b""
    if signer is not None:
        key = _public_keys(run, signer, tree)
        rpm_key = key
        if signer.rpm_published != signer.published:
            rpm_key = _export(run, signer, signer.rpm_published, tree)

    with contextlib.ExitStack() as stack:
        sources: list[payload.Source | None] = [None] * len(plan)
        if payload_dir is not None:
            work = stack.enter_context(payload.work_directory(tree))
            listed = frozenset(payload_files)
            for n, (repository, _) in enumerate(plan):
                sources[n] = payload.source(
                    payload_dir,
                    repository.relative_path,
                    listed,
                    _SUFFIXES[repository.type],
                    work=work / str(n),
                    live=_below(previous_tree, repository),
                )
        for (repository, directory), source in zip(plan, sources, strict=True):
            previous = _below(previous_tree, repository)
            if source is not None and previous_tree is not None:
                marker = "repodata" if repository.type == "YUM" else "Release"
                previous = payload.previous_metadata(
                    previous_tree, repository.relative_path, marker, within=previous_within
                )
            started = time.monotonic()
            directory.mkdir(parents=True, exist_ok=True)
            if repository.type == "YUM":
                detail = yum.build(
                    directory,
                    run,
                    signer,
                    rpm_key,
                    previous,
                    timestamp,
                    incremental=incremental,
                    source=source,
                )
            else:
                detail = apt.build(
                    directory, run, signer, fields[directory], previous, cache_dir, source=source
                )
            line = (
                f"{repository.type} repository {repository.identifier} "
                f"({repository.relative_path or '.'}): {detail} in "
                f"{time.monotonic() - started:.2f} s"
            )
            logger.info(line, extra={"action": "build_metadata"})
            done.append(line)

    if signer is not None:
        (tree / signing.APT_KEY_FILE).write_bytes(key)
        (tree / signing.RPM_KEY_FILE).write_bytes(rpm_key)
        done.append(
            f"public key {', '.join(signer.published)} published as "
            f"{signing.APT_KEY_FILE}, {signing.RPM_KEY_FILE}"
        )
        if signer.rpm_published != signer.published:
            done.append(
                f"package keys {', '.join(signer.package_keys)} published in {signing.RPM_KEY_FILE}"
            )
    if base_url is not None:
        files = clients.client_config(base_url, area_path, repositories, signed=signer is not None)
        for name, text in files.items():
            (tree / name).write_text(text, encoding="utf-8")
        done.append(f"client configuration {', '.join(sorted(files))}")
    return done


# The packages each tool indexes, by repository type (what their walks of a directory take).
_SUFFIXES = {"YUM": incremental_rules.RPM_SUFFIXES, "APT": incremental_rules.DEB_SUFFIXES}


def _below(tree: Path | None, repository: repository_dirs.Repository) -> Path | None:
    """The repository's directory in ``tree``."""
    if tree is None:
        return None
    return tree.joinpath(*repository_dirs.parts(repository.relative_path))


def _public_keys(run: commands.CommandRunner, signer: signing.Signer, tree: Path) -> bytes:
    """The armored public keys to publish, checked to hold every key asked for. Runs first,
    so a wrong key id fails before minutes of indexing."""
    argv = signer.list_argv()
    listing = commands.run(run, argv, cwd=tree, what="looking up the signing keys", check=False)
    fingerprints = {
        line.split(":")[9]
        for line in listing.stdout.decode("utf-8", "replace").splitlines()
        if line.startswith("fpr:") and line.count(":") >= 9
    }
    missing = signer.missing(fingerprints)
    if missing:
        raise errors.MetadataFailed(
            f"gpg has no public key {', '.join(missing)} in "
            f"{signer.gnupghome or 'its default home'}: check the signing key id and GNUPGHOME",
            argv=argv,
            returncode=listing.returncode,
            stderr_tail=commands.tail(listing.stderr),
        )
    if listing.returncode != 0:
        commands.run(run, argv, cwd=tree, what="looking up the signing keys")  # raises, with stderr
    return _export(run, signer, signer.published, tree)


def _export(
    run: commands.CommandRunner, signer: signing.Signer, keys: tuple[str, ...], tree: Path
) -> bytes:
    """``keys``' public parts, in one armored block."""
    argv = signer.export_argv(keys)
    key = commands.run(run, argv, cwd=tree, what="exporting the public keys").stdout
    if key.count(b"-----BEGIN PGP PUBLIC KEY BLOCK-----") != 1:
        raise errors.MetadataFailed(f"gpg exported no armored public key for {', '.join(keys)}")
    return key


class Step(Protocol):
    """What ``metadata_step`` returns: a ``publish.MetadataStep``."""

    def __call__(
        self, snapshot: Path, contents: AreaContents, *, payload_dir: Path | None = None
    ) -> None: ...


SNAPSHOTS_DIR = ".snapshots"
"""Where publication keeps the snapshots below the root (``publish.gc.SNAPSHOT_DIR``; metadata
does not import publish): the only place previous metadata is taken from in the tree layout."""
CACHE_DIR = caches.CACHE_DIR
UNCACHED_PREFIX = "unverified/"


def metadata_step(
    root: Path,
    base_url: str,
    *,
    signer: signing.Signer | None = None,
    cache_root: Path | None = None,
    incremental: bool = True,
    runner: commands.CommandRunner | None = None,
) -> Step:
    """A ``publish.MetadataStep`` for the trees below ``root`` served at ``base_url``: builds
    the metadata of every repository the area's releases declare into the new snapshot, with
    the snapshot still live at ``root/<area>`` as ``previous_tree`` (read only) and
    ``cache_root/<area>`` as the area's private ``cache_dir`` (none for ``unverified/`` areas).

    ``incremental`` (the default): createrepo_c ``--update`` from the previous snapshot and
    apt-ftparchive's cache, in ``cache_root`` (default ``root/.metadata-cache``). Off: every
    publication reads every package, and no cache is kept unless ``cache_root`` is given.

    The step's ``payload_dir`` (a tree-layout area: its payload tree, ``root/.trees/<key>``):
    the packages of ``contents``' releases are read there and only metadata is written into
    the snapshot (``build_metadata``); the previous metadata is still reached through
    ``root/<area>``, the live tree whose metadata links lead into the live snapshot."""
    if cache_root is None and incremental:
        cache_root = root / CACHE_DIR

    def step(snapshot: Path, contents: AreaContents, *, payload_dir: Path | None = None) -> None:
        live = root / contents.area
        cache = None
        # An unverified/ area holds one release and disappears with it: a cache of its own
        # would outlive it and never be read again.
        if cache_root is not None and not contents.area.startswith(UNCACHED_PREFIX):
            cache = cache_root / caches.cache_name(contents.area)
        build_metadata(
            snapshot,
            [r for release in contents.releases for r in release.repositories],
            signer=signer,
            base_url=base_url,
            area_path=contents.area,
            previous_tree=live.resolve() if live.is_dir() else None,
            cache_dir=cache,
            incremental=incremental,
            runner=runner,
            payload_dir=payload_dir,
            previous_within=root.resolve() / SNAPSHOTS_DIR,
            payload_files=(
                ()
                if payload_dir is None
                else [f.path for release in contents.releases for f in release.files]
            ),
        )

    return step
