"""A sample release for the demo and the tests: real, tiny ``.deb`` files built with
``dpkg-deb --build`` and ``.rpm`` files built with ``rpmbuild`` (Debian's ``rpm`` package),
signed with ``rpmsign`` when the provider has a key (as a provider must for dnf's
``gpgcheck=1``), a provider tree laid out as ``rpms/noarch/*.rpm`` and ``debs/*.deb``, and a
matching ``release.xml`` (the element names of ``schemas/release.xsd``).

Needs nothing but those two tools; writes only below the given directories. Never used by the
daemon itself: it plays the technology provider.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from repo_daemon.demo import tools
from repo_daemon.release_xml import model as release_model


@dataclass(frozen=True, kw_only=True)
class BuiltPackage:
    """A package file and what release.xml says about it."""

    name: str
    version: str  # as the package format writes it (with the release)
    arch: str
    kind: str  # "deb" or "rpm"
    file: Path


@dataclass(frozen=True, kw_only=True)
class ProviderTree:
    """A provider's tree and the release.xml that describes it."""

    root: Path
    packages: tuple[release_model.PackageFile, ...]
    release_xml: bytes

    @property
    def total_size(self) -> int:
        return sum(p.size for p in self.packages)


class PackageKey(Protocol):
    """A provider's RPM signing key: its fingerprint and the GnuPG home holding its secret
    part (without a passphrase)."""

    @property
    def fingerprint(self) -> str: ...
    @property
    def home(self) -> Path: ...


def tools_missing() -> list[str]:
    """The package-building tools that are not installed (empty when the builders work)."""
    return [t for t in ("dpkg-deb", "rpmbuild", "rpmsign") if shutil.which(t) is None]


def build_deb(workdir: Path, name: str, version: str = "1.0-1", *, payload: str = "") -> Path:
    """A real ``Architecture: all`` Debian package ``<name>_<version>_all.deb`` in ``workdir``,
    holding ``/usr/share/doc/<name>/README`` (``payload`` makes packages differ)."""
    root = workdir / f"deb-{name}-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: Rollout bridge sample <provider@example.org>\n"
        "Description: tiny sample package of the Rollout bridge\n"
        " Built on the spot by repo_daemon/demo/sample.py.\n",
        encoding="utf-8",
    )
    doc = root / "usr" / "share" / "doc" / name
    doc.mkdir(parents=True)
    (doc / "README").write_text(f"{name} {version}\n{payload}\n", encoding="utf-8")
    out = workdir / f"{name}_{version}_all.deb"
    subprocess.run(
        [tools.which("dpkg-deb"), "--root-owner-group", "-Zgzip", "--build", str(root), str(out)],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(root)
    return out


def build_rpm(
    workdir: Path, name: str, version: str = "1.0", release: str = "1", *, payload: str = ""
) -> Path:
    """A real ``noarch`` RPM ``<name>-<version>-<release>.noarch.rpm`` in ``workdir``, built by
    ``rpmbuild`` in a private top directory, holding ``/usr/share/doc/<name>/README``."""
    top = workdir / f"rpm-{name}-{version}"
    spec = top / f"{name}.spec"
    top.mkdir(parents=True)
    # The README's text goes through a file, never through the spec's shell script.
    (top / "README").write_text(f"{name} {version}\n{payload}\n", encoding="utf-8")
    spec.write_text(
        f"Name: {name}\nVersion: {version}\nRelease: {release}\n"
        "Summary: tiny sample package of the Rollout bridge\nLicense: Apache-2.0\n"
        "BuildArch: noarch\n\n%description\nBuilt on the spot by repo_daemon/demo/sample.py.\n\n"
        "%install\n"
        f"mkdir -p %{{buildroot}}/usr/share/doc/{name}\n"
        f"cp %{{_topdir}}/README %{{buildroot}}/usr/share/doc/{name}/README\n\n"
        f"%files\n/usr/share/doc/{name}/README\n",
        encoding="utf-8",
    )
    subprocess.run(
        [
            tools.which("rpmbuild"), "-bb", "--quiet",
            "--define", f"_topdir {top}",
            "--define", f"_tmppath {top / 'tmp'}",
            "--define", "_build_id_links none",
            str(spec),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    built = top / "RPMS" / "noarch" / f"{name}-{version}-{release}.noarch.rpm"
    out = workdir / built.name
    built.replace(out)
    shutil.rmtree(top)
    return out


def sign_rpm(rpm: Path, key: PackageKey) -> None:
    """Sign ``rpm`` in place with ``rpmsign --addsign`` and ``key``, as its provider does
    before publishing it."""
    subprocess.run(
        [
            tools.which("rpmsign"), "--addsign",
            "--define", f"__gpg {tools.which('gpg')}",
            "--define", f"_gpg_path {key.home}",
            "--define", f"_gpg_name {key.fingerprint}",
            str(rpm),
        ],
        stdin=subprocess.DEVNULL,
        check=True,
        capture_output=True,
    )  # fmt: skip


def build_packages(
    workdir: Path,
    count: int = 2,
    *,
    prefix: str = "rollout-test",
    rpm_key: PackageKey | None = None,
) -> list[BuiltPackage]:
    """``count`` RPMs and ``count`` debs, named ``<prefix>-<i>``; the RPMs signed with
    ``rpm_key`` when given."""
    workdir.mkdir(parents=True, exist_ok=True)
    built = []
    for i in range(count):
        built += build_pair(workdir, f"{prefix}-{i}", tag=str(i), rpm_key=rpm_key)
    return built


def build_pair(
    workdir: Path, name: str, *, tag: str = "", rpm_key: PackageKey | None = None
) -> list[BuiltPackage]:
    """One ``noarch`` RPM and one ``all`` deb of ``name`` 1.0-1 in ``workdir`` (``tag`` goes
    into their READMEs); the RPM signed with ``rpm_key`` when given."""
    rpm = build_rpm(workdir, name, payload=f"rpm {tag}")
    if rpm_key is not None:
        sign_rpm(rpm, rpm_key)
    deb = build_deb(workdir, name, payload=f"deb {tag}")
    return [
        BuiltPackage(name=name, version="1.0-1", arch="noarch", kind="rpm", file=rpm),
        BuiltPackage(name=name, version="1.0-1", arch="all", kind="deb", file=deb),
    ]


def sample_release(
    workdir: Path,
    root: Path,
    *,
    name: str,
    sync_url: str,
    major_release: str,
    rpm_key: PackageKey | None = None,
) -> ProviderTree:
    """The demo's release: one .rpm (signed with ``rpm_key`` when given) and one .deb of
    ``name`` 1.0-1, built in ``workdir``, laid out in ``root`` (served at ``sync_url``),
    NonIncremental for ``major_release``."""
    workdir.mkdir(parents=True, exist_ok=True)
    return layout_provider_tree(
        root,
        build_pair(workdir, name, tag="sample", rpm_key=rpm_key),
        short_name=name,
        sync_url=sync_url,
        release_type="NonIncremental",
        major_release=major_release,
        distribution_name=f"Rollout sample {name}",
    )


def layout_provider_tree(
    root: Path,
    built: Sequence[BuiltPackage],
    *,
    short_name: str = "rollout-test",
    version: tuple[int, int, int] = (1, 0, 0),
    sync_url: str | None = None,
    sync_protocol: str = "rsync",
    release_type: str | None = "NonIncremental",
    major_release: str | None = "UMD-5",
    distribution_name: str = "Rollout sample product",
) -> ProviderTree:
    """Copy ``built`` into ``root`` as ``rpms/noarch/*.rpm`` and ``debs/*.deb`` and describe
    them in a release.xml (returned, not written into the tree: the tree holds packages only)."""
    packages = []
    entries = []
    for package in built:
        rel = (
            f"rpms/noarch/{package.file.name}"
            if package.kind == "rpm"
            else f"debs/{package.file.name}"
        )
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(package.file, target)
        data = target.read_bytes()
        file = release_model.PackageFile(
            path=rel, size=len(data), sha256=hashlib.sha256(data).hexdigest()
        )
        packages.append(file)
        entries.append((package, file))
    xml = release_xml(
        entries,
        short_name=short_name,
        version=version,
        sync_url=sync_url,
        sync_protocol=sync_protocol,
        kinds={p.kind for p in built},
        release_type=release_type,
        major_release=major_release,
        distribution_name=distribution_name,
    )
    return ProviderTree(root=root, packages=tuple(packages), release_xml=xml)


def release_xml(
    entries: Sequence[tuple[BuiltPackage, release_model.PackageFile]],
    *,
    short_name: str = "rollout-test",
    version: tuple[int, int, int] = (1, 0, 0),
    sync_url: str | None = None,
    sync_protocol: str = "rsync",
    kinds: set[str] | None = None,
    release_type: str | None = "NonIncremental",
    major_release: str | None = "UMD-5",
    distribution_name: str = "Rollout sample product",
) -> bytes:
    """A release.xml (the names of schemas/release.xsd) listing ``entries``."""
    release = ET.Element("Release")

    def text(parent: ET.Element, tag: str, value: str) -> ET.Element:
        element = ET.SubElement(parent, tag)
        element.text = value
        return element

    text(release, "DistributionName", distribution_name)
    text(release, "DistributionShortName", short_name)
    text(release, "TechnologyProvider", "Rollout bridge sample provider")
    text(release, "Contact", "provider@example.org")
    text(release, "Description", "Tiny packages built on the spot.")
    keywords = ET.SubElement(release, "Keywords")
    text(keywords, "Keyword", "test")
    links = ET.SubElement(release, "DocumentationLinks")
    text(links, "DocumentationLink", "https://docs.example.org/rollout-test/")
    text(release, "ISODate", "2024-05-17")
    text(release, "MajorVersion", str(version[0]))
    text(release, "MinorVersion", str(version[1]))
    text(release, "RevisionVersion", str(version[2]))
    text(release, "ReleaseNotes", "A sample release.")
    text(release, "ChangeLog", "- first release")
    text(release, "SynchProtocol", sync_protocol)
    if sync_url:
        text(release, "SynchURL", sync_url)
    if release_type:
        text(release, "ReleaseType", release_type)
    if major_release:
        text(release, "MajorRelease", major_release)
    repositories = ET.SubElement(release, "Repositories")
    kinds = kinds if kinds is not None else {p.kind for p, _ in entries}
    for kind, type_, path in (("rpm", "YUM", "rpms/noarch"), ("deb", "APT", "debs")):
        if kind in kinds:
            repo = ET.SubElement(repositories, "Repository")
            text(repo, "Identifier", f"{short_name}-{kind}")
            text(repo, "Name", f"{short_name} ({type_})")
            text(repo, "Type", type_)
            text(repo, "RelativePath", path)
    package_list = ET.SubElement(release, "Packages")
    for package, file in entries:
        element = ET.SubElement(package_list, "Package")
        text(element, "Name", package.name)
        text(element, "Version", package.version)
        text(element, "Arch", package.arch)
        text(element, "Path", file.path)
        text(element, "Size", str(file.size))
        text(element, "SHA256", file.sha256)
    ET.indent(release)
    body: bytes = ET.tostring(release, encoding="utf-8", xml_declaration=True)
    return body + b"\n"
