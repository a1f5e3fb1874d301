"""The programs the demo runs, found on ``PATH``, with the Debian package to install when one
is missing (``scripts/bootstrap`` installs them all)."""

from __future__ import annotations

import shutil

from repo_daemon.demo.errors import DemoFailed

DEBIAN_PACKAGES = {
    "apt-get": "apt",
    "dpkg-query": "dpkg",
    "dpkg-deb": "dpkg",
    "rpmbuild": "rpm",
    "rpmsign": "rpm",
    "gpg": "gnupg",
    "gpgconf": "gnupg",
    "dnf": "dnf",
    "rpm": "rpm",
    "rsync": "rsync",
}


class ToolMissing(DemoFailed):
    """A program the demo needs is not installed."""


def which(tool: str) -> str:
    """The full path of ``tool``. Raises ``ToolMissing`` naming the package to install."""
    path = shutil.which(tool)
    if path is None:
        package = DEBIAN_PACKAGES.get(tool, tool)
        raise ToolMissing(
            f"{tool} is not installed: `apt-get install {package}` (or run `make demo`, "
            "whose bootstrap installs everything)"
        )
    return path
