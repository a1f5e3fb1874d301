"""YUM repository metadata: ``repodata/`` by createrepo_c (``--update`` from the previous
snapshot's when ``incremental.yum_update`` allows it, so unchanged packages are not read
again), signed ``repomd.xml`` when a key is given, and the previous snapshot's checksum-named
files kept reachable.

It writes only inside the repository directory (and the tool's cache when given); the argument
list is pure (``createrepo_argv``), running it goes through a ``CommandRunner``.
"""

from __future__ import annotations

import re
from pathlib import Path

from repo_daemon.metadata import commands, payload, repository_dirs, signing
from repo_daemon.metadata import incremental as incremental_rules

# What this module writes in a repository directory; a snapshot that has one before the
# metadata is built got it from a release: refused.
YUM_OUTPUTS = ("repodata", ".repodata")

_WALK_DONE = re.compile(rb"Directory walk done - (\d+) packages")


def createrepo_argv(
    directory: Path,
    *,
    timestamp: int | None = None,
    cache_dir: Path | None = None,
    update_from: Path | None = None,
    output: Path | None = None,
    pkglist: Path | None = None,
) -> list[str]:
    """``createrepo_c`` for one YUM repository directory.

    No sqlite databases (dnf reads the XML; yum on EL7 works without them), checksums in the
    metadata file names (a client that read the previous repomd.xml never gets a new file
    under an old name), gzip (what every yum and dnf reads), and an exit code of 2 when any
    rpm cannot be read: without ``--error-exit-val`` createrepo_c skips it and succeeds.
    ``timestamp`` (seconds) pins the revision and every timestamp, for byte-identical output.
    ``update_from`` (a repository directory with ``repodata/``, read only) gives ``--update``:
    a package whose file name, size and mtime match an entry there is not read again.
    ``output`` (the tree layout): ``repodata/`` is written there instead of in ``directory``,
    which is only read; ``pkglist``: only the packages it lists (relative to ``directory``,
    one a line) are indexed, and ``directory`` is not walked, so other files there are left
    out. Location hrefs stay relative to ``directory``.
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
    if update_from is not None:
        argv += ["--update", f"--update-md-path={update_from}"]
    if pkglist is not None:
        argv += [f"--pkglist={pkglist}"]
    if output is not None:
        argv += [f"--outputdir={output}"]
    return [*argv, "--", str(directory)]


def build(
    directory: Path,
    runner: commands.CommandRunner,
    signer: signing.Signer | None,
    key: bytes,
    previous: Path | None,
    timestamp: int | None,
    *,
    incremental: bool = False,
    source: payload.Source | None = None,
) -> str:
    """Index ``directory``, keep ``previous``'s repodata files, sign; returns what was done.
    ``incremental``: from ``previous``'s metadata where ``incremental.yum_update`` allows.
    ``source`` (the tree layout): the packages are ``source.files`` in ``source.directory``
    and ``directory`` receives only ``repodata/``."""
    # No ``--cachedir`` (``build_metadata``'s ``cache_dir`` is apt-ftparchive's alone):
    # createrepo_c keys it by the package's header, signatures, size and mtime, not its bytes
    # (two files that differ elsewhere get one checksum), and with ``--update`` it would only
    # save hashing packages that are read anyway.
    update = incremental_rules.Decision(reuse=False, reason="incremental metadata is off")
    if incremental and source is None:
        update = incremental_rules.yum_update(directory, previous)
    elif incremental and source is not None:
        update = incremental_rules.yum_update(
            source.directory,
            previous,
            current=source.files,
            previous_packages=source.live,
            previous_found=source.found,
        )
    if source is None:
        argv = createrepo_argv(
            directory, timestamp=timestamp, update_from=previous if update.reuse else None
        )
    else:
        # No packages: an empty directory to read (createrepo_c needs an existing one, and
        # the repository's directory in the tree may be absent or a metadata link).
        packages = source.directory if source.files else source.work
        argv = createrepo_argv(
            packages,
            timestamp=timestamp,
            update_from=previous if update.reuse else None,
            output=directory,
            pkglist=payload.write_list(source.work / "pkglist", source.files),
        )
    result = commands.run(runner, argv, cwd=directory, what=f"indexing {directory}")
    found = _WALK_DONE.search(result.stdout)
    count = repository_dirs.packages_phrase(int(found.group(1))) if found else "? packages"
    how = f"read in full: {update.reason}"
    if update.reuse:
        how = "unchanged packages from the previous snapshot's"
    detail = f"repodata/ by createrepo_c ({count}), {how}"
    repodata = directory / "repodata"
    if previous is not None:
        carried = _carry_repodata(previous / "repodata", repodata)
        if carried:
            detail += f", {carried} files of the previous repodata kept"
    if signer is not None:
        repomd = repodata / "repomd.xml"
        argv = signer.sign_argv(repomd, repodata / "repomd.xml.asc")
        commands.run(runner, argv, cwd=directory, what=f"signing {repomd}")
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
            repository_dirs.link_previous(source, target)
            carried += 1
    return carried
