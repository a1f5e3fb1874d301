"""A fake ``CommandRunner`` for the metadata tools and the small factories the metadata unit
tests share: it answers like createrepo_c, apt-ftparchive and gpg do and writes what they
would write, so ``build_metadata`` can be driven without the tools."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from repo_daemon.metadata import apt, commands, signing
from repo_daemon.release_xml import model as release_model

FPR = "23ADB7A089C9F3A0AAD45E9D39DC5FD669FCB9EE"
KEY = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n-----END PGP PUBLIC KEY BLOCK-----\n"
PACKAGES = b"Package: hello\nVersion: 1.0-1\nFilename: ./hello_1.0-1_all.deb\n\n"


def yum_repository(
    path: str = "rpms", identifier: str = "r", name: str = "RPMs"
) -> release_model.RepositorySpec:
    return release_model.RepositorySpec(
        identifier=identifier, name=name, type="YUM", relative_path=path
    )


def apt_repository(
    path: str = "debs", identifier: str = "d", name: str = "Debs"
) -> release_model.RepositorySpec:
    return release_model.RepositorySpec(
        identifier=identifier, name=name, type="APT", relative_path=path
    )


@dataclass
class FakeRunner:
    """Answers like the tools do, and writes what they would write."""

    calls: list[tuple[list[str], Path]] = field(default_factory=list)
    answers: dict[str, Callable[[list[str], Path], commands.Completed]] = field(
        default_factory=dict
    )

    def __call__(
        self, argv: Sequence[str], *, cwd: Path, stdout: Path | None = None
    ) -> commands.Completed:
        result = self._answer(list(argv), cwd)
        if stdout is None:
            return result
        stdout.write_bytes(result.stdout)
        return commands.Completed(returncode=result.returncode, stderr=result.stderr)

    def _answer(self, argv: list[str], cwd: Path) -> commands.Completed:
        self.calls.append((argv, cwd))
        verb = verb_of(argv)
        if verb in self.answers:
            return self.answers[verb](argv, cwd)
        if verb == "createrepo_c":
            outputs = [a.removeprefix("--outputdir=") for a in argv if a.startswith("--outputdir=")]
            repodata = Path(outputs[-1] if outputs else argv[-1]) / "repodata"
            repodata.mkdir()
            (repodata / "repomd.xml").write_text(
                '<repomd><data type="primary"><location href="repodata/aa-primary.xml.gz"/>'
                "</data></repomd>"
            )
            (repodata / "aa-primary.xml.gz").write_bytes(b"primary")
            return commands.Completed(returncode=0, stdout=b"Directory walk done - 3 packages\n")
        if verb == "packages":
            return commands.Completed(returncode=0, stdout=PACKAGES)
        if verb == "release":
            lines = [b"Origin: Rollout bridge", b"SHA256:"]
            for name in apt.APT_INDEXES:
                data = (cwd / name).read_bytes()
                digest = hashlib.sha256(data).hexdigest().encode()
                lines.append(b" " + digest + b" " + str(len(data)).encode() + b" " + name.encode())
            return commands.Completed(returncode=0, stdout=b"\n".join(lines) + b"\n")
        if verb == "list":
            return commands.Completed(
                returncode=0, stdout=f"pub:u:255:22:x\nfpr:::::::::{FPR}:\n".encode()
            )
        if verb == "export":
            return commands.Completed(returncode=0, stdout=KEY)
        if verb in ("sign", "clearsign"):
            Path(argv[argv.index("--output") + 1]).write_text("-----BEGIN PGP SIGNATURE-----\n")
            return commands.Completed(returncode=0)
        raise AssertionError(f"unexpected command {argv}")

    def verbs(self) -> list[str]:
        return [verb_of(argv) for argv, _ in self.calls]


def verb_of(argv: list[str]) -> str:
    """Which tool step ``argv`` is: createrepo_c, packages, release, list, export, sign..."""
    if argv[0] == "apt-ftparchive":
        return argv[-2]
    if argv[0] == "gpg":
        if "--export" in argv:
            return "export"
        if "--list-keys" in argv:
            return "list"
        return "clearsign" if "--clearsign" in argv else "sign"
    return argv[0]


def make_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "snapshot"
    (tree / "rpms").mkdir(parents=True)
    (tree / "debs").mkdir()
    return tree


def signer(**kw: object) -> signing.Signer:
    return signing.Signer(key_id=FPR, gnupghome=Path("/srv/gnupg"), **kw)  # type: ignore[arg-type]
