"""The errors building repository metadata raises: ``MetadataFailed`` (a tool failed, a
repository cannot be indexed safely) and ``MetadataToolMissing`` (naming the Debian package to
install).

Pure: no I/O. Hierarchy::

    repo_daemon.errors.DaemonError
    └── MetadataFailed         argv, returncode, stderr_tail; transient only on a timeout
        └── MetadataToolMissing   tool, package
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from repo_daemon import errors

# The Debian package that ships each tool, named when the tool is missing.
DEBIAN_PACKAGES: Mapping[str, str] = {
    "createrepo_c": "createrepo-c",
    "apt-ftparchive": "apt-utils",
    "gpg": "gnupg",
}


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
