"""``clients``: the dnf/yum and apt client configuration text, signed and unsigned."""

from __future__ import annotations

import pytest

from repo_daemon.metadata import clients
from repo_daemon.metadata import errors as metadata_errors
from tests.support.metadata_runner import (
    apt_repository,
    yum_repository,
)


def test_client_config_signed() -> None:
    files = clients.client_config(
        "https://repo.example.org/rollout",
        "production/7",
        [yum_repository("rpms/noarch"), apt_repository()],
        True,
    )
    assert files == {
        "rollout.repo": (
            "# Rollout bridge: dnf/yum repositories of https://repo.example.org/rollout/production/7/\n"
            "# Save as /etc/yum.repos.d/rollout-production-7.repo.\n"
            "# Install https://repo.example.org/rollout/production/7/RPM-GPG-KEY-rollout as "
            "/etc/pki/rpm-gpg/RPM-GPG-KEY-rollout\n"
            "# after checking its fingerprints. repo_gpgcheck: repomd.xml is verified with\n"
            "# the repository's key; gpgcheck: each package's signature with its provider's\n"
            "# key (the same file holds both).\n"
            "\n"
            "[rollout-production-7-r]\n"
            "name=RPMs (production/7)\n"
            "baseurl=https://repo.example.org/rollout/production/7/rpms/noarch/\n"
            "enabled=1\n"
            "gpgcheck=1\n"
            "repo_gpgcheck=1\n"
            "gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-rollout\n"
        ),
        "rollout.list": (
            "# Rollout bridge: apt sources of https://repo.example.org/rollout/production/7/\n"
            "# Save as /etc/apt/sources.list.d/rollout-production-7.list or .sources "
            "(one, not both).\n"
            "# Install https://repo.example.org/rollout/production/7/rollout-archive-keyring.asc"
            " as /etc/apt/keyrings/rollout-archive-keyring.asc\n"
            "# after checking its fingerprint.\n"
            "\n"
            "# Debs\n"
            "deb [signed-by=/etc/apt/keyrings/rollout-archive-keyring.asc] "
            "https://repo.example.org/rollout/production/7/debs/ ./\n"
        ),
        "rollout.sources": (
            "# Rollout bridge: apt sources of https://repo.example.org/rollout/production/7/\n"
            "# Save as /etc/apt/sources.list.d/rollout-production-7.list or .sources "
            "(one, not both).\n"
            "# Install https://repo.example.org/rollout/production/7/rollout-archive-keyring.asc"
            " as /etc/apt/keyrings/rollout-archive-keyring.asc\n"
            "# after checking its fingerprint.\n"
            "\n"
            "# Debs\n"
            "Types: deb\n"
            "URIs: https://repo.example.org/rollout/production/7/debs/\n"
            "Suites: ./\n"
            "Signed-By: /etc/apt/keyrings/rollout-archive-keyring.asc\n"
        ),
    }


def test_client_config_unsigned_says_so_and_turns_checks_off() -> None:
    files = clients.client_config("http://m/", "", [yum_repository(""), apt_repository("")], False)
    assert "\ngpgcheck=0\nrepo_gpgcheck=0\n" in files["rollout.repo"]
    assert "gpgkey" not in files["rollout.repo"]
    assert "[rollout-root-r]" in files["rollout.repo"]
    assert "baseurl=http://m/\n" in files["rollout.repo"]
    assert "deb [trusted=yes] http://m/ ./" in files["rollout.list"]
    assert "Trusted: yes" in files["rollout.sources"]
    for text in files.values():
        assert "UNSIGNED" in text


def test_client_config_writes_only_the_formats_present_once_per_directory() -> None:
    only_apt = clients.client_config(
        "http://m/", "a", [apt_repository("x", "one"), apt_repository("x/", "two")], True
    )
    assert sorted(only_apt) == ["rollout.list", "rollout.sources"]
    assert only_apt["rollout.list"].count("deb [") == 1
    only_yum = clients.client_config(
        "http://m/", "a", [yum_repository()], True, rpm_gpgkey="https://k/K"
    )
    assert sorted(only_yum) == ["rollout.repo"]
    assert "gpgkey=https://k/K\n" in only_yum["rollout.repo"]


def test_client_config_quotes_paths_and_keeps_names_on_one_line() -> None:
    files = clients.client_config(
        "http://m/", "stage rollout/7", [yum_repository("el 9/$arch", "a b", "x\n[evil]\nbaseurl=http://e/")],
        False,
    )  # fmt: skip
    repo = files["rollout.repo"]
    assert "baseurl=http://m/stage%20rollout/7/el%209/%24arch/\n" in repo
    assert "[rollout-stage-rollout-7-a-b]" in repo
    assert "\n[evil]" not in repo
    assert [line for line in repo.splitlines() if line.startswith(("baseurl=", "["))] == [
        "[rollout-stage-rollout-7-a-b]",
        "baseurl=http://m/stage%20rollout/7/el%209/%24arch/",
    ]


@pytest.mark.parametrize("url", ["ftp://m/", "m/", "http:///x"])
def test_client_config_wants_an_http_url(url: str) -> None:
    with pytest.raises(metadata_errors.MetadataFailed, match="http"):
        clients.client_config(url, "a", [yum_repository()], True)
