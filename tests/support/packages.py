"""Real, tiny packages for the tests: the demo's builders (``repo_daemon.demo.sample``) under
the names the tests use."""

from __future__ import annotations

from repo_daemon.demo.sample import (
    BuiltPackage,
    ProviderTree,
    build_deb,
    build_packages,
    build_pair,
    build_rpm,
    layout_provider_tree,
    release_xml,
    sign_rpm,
    tools_missing,
)

__all__ = [
    "BuiltPackage",
    "ProviderTree",
    "build_deb",
    "build_packages",
    "build_pair",
    "build_rpm",
    "layout_provider_tree",
    "release_xml",
    "sign_rpm",
    "tools_missing",
]
