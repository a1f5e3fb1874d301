"""The client configuration files written in the root of a tree for sites to copy:
``rollout.repo`` (dnf/yum) and ``rollout.list`` / ``rollout.sources`` (apt, one-line and deb822),
signed or saying plainly that they are not.

Pure: ``client_config`` returns file name -> text; ``build`` writes them. It never fetches or
installs a key: sites install the key after checking its fingerprint.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, urlsplit

from repo_daemon.metadata import errors, repository_dirs, signing

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
    repositories: Sequence[repository_dirs.Repository],
    signed: bool,
    *,
    apt_keyring: str = DEFAULT_APT_KEYRING,
    rpm_gpgkey: str = DEFAULT_RPM_GPGKEY,
) -> dict[str, str]:
    """The client configuration of the tree served at ``base_url`` + ``area_path``: file name
    → text. ``rollout.repo`` (dnf/yum) when there is a YUM repository; ``rollout.list`` and
    ``rollout.sources`` (the same apt sources in both formats) when there is an APT one.

    Signed: dnf checks repomd.xml (``repo_gpgcheck``) and each package's own signature
    (``gpgcheck``) with the keys a site installed (``rpm_gpgkey``, a URL: the repository's key
    and the providers' package keys); apt checks InRelease with the key a site installed as
    ``apt_keyring``. Unsigned (an explicit choice, ``signing_key = "none"``): both files say so
    and turn checking off.
    """
    scheme = urlsplit(base_url)
    if scheme.scheme not in ("http", "https") or not scheme.netloc:
        raise errors.MetadataFailed(f"base URL {base_url!r} is not an http(s) URL")
    area = "/".join(repository_dirs.parts(area_path))
    area_url = base_url.rstrip("/") + "/" + (quote(area) + "/" if area else "")
    slug = repository_dirs.slug(area) or "root"
    yum: list[str] = []
    deb_lines: list[str] = []
    deb822: list[str] = []
    seen: set[tuple[str, str]] = set()
    for repository in repositories:
        path = "/".join(repository_dirs.parts(repository.relative_path))
        if (repository.type, path) in seen:
            continue
        seen.add((repository.type, path))
        url = area_url + (quote(path) + "/" if path else "")
        name = repository_dirs.one_line(repository.name) or repository.identifier
        if repository.type == "YUM":
            yum += [
                f"[rollout-{slug}-{repository_dirs.slug(repository.identifier) or 'repo'}]",
                f"name={name} ({area or '/'})",
                f"baseurl={url}",
                "enabled=1",
                f"gpgcheck={1 if signed else 0}",
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
                "# after checking its fingerprints. repo_gpgcheck: repomd.xml is verified with",
                "# the repository's key; gpgcheck: each package's signature with its provider's",
                "# key (the same file holds both).",
            ]
            if signed
            else ["# UNSIGNED: nothing verifies this repository or its packages (docs/clients.md)."]
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
