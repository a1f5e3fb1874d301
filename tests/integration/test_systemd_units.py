"""The shipped systemd units (deploy/systemd/) pass systemd's own checks: ``systemd-analyze
verify`` says nothing at all about them, ``systemd-analyze security --offline=true`` rates each
at most the exposure docs/operations.md states, and the sysusers file makes the service
account. What needs only Python (the units' settings, commands and sandbox options) is in
tests/unit/test_deploy_config.py."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import paths
from tests.support import unit_files as uf

SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"
OPERATIONS = (paths.DOCS / "operations.md").read_text(encoding="utf-8")
# Units that run as the rollout user; rsyncd starts as root (chroot) with a few capabilities.
BOUND_ROLLOUT_USER = 1.5
BOUND_RSYNCD = 3.0
# Lines systemd-analyze prints about units this test did not give it (the host's own units,
# e.g. Debian's request-tracker5.service naming a missing database unit).
FOREIGN = ("/lib/systemd/", "/usr/lib/systemd/", "/etc/systemd/", "/run/systemd/")


def _rollout_binary() -> Path:
    """The ``rollout`` console script of this virtualenv: systemd-analyze checks that the
    ``ExecStart=`` binary exists and is executable."""
    path = Path(sys.executable).parent / "rollout"
    assert path.is_file(), f"{path}: the project is not installed in this virtualenv"
    return path


def _install(units: list[Path], into: Path) -> list[Path]:
    """Copy the units into ``into``, ``/opt/rollout/bin/rollout`` pointing at this virtualenv's
    ``rollout``; the template also as its instance ``@1``."""
    into.mkdir(parents=True, exist_ok=True)
    installed = []
    for unit in units:
        text = unit.read_text(encoding="utf-8").replace(uf.SHIPPED_ROLLOUT, str(_rollout_binary()))
        names = [unit.name]
        if unit.name.endswith("@.service"):
            names.append(unit.name.replace("@.service", "@1.service"))
        for name in names:
            (into / name).write_text(text, encoding="utf-8")
            installed.append(into / name)
    return installed


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYSTEMD_ANALYZE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": ""},
    )


def _verify(units: list[Path]) -> tuple[int, list[str]]:
    """``systemd-analyze verify``: its exit status and every line it printed about these
    units (a warning such as an unknown key or a bad specifier leaves the status 0)."""
    done = _analyze("verify", "--man=no", *map(str, units))
    lines = (done.stdout + done.stderr).splitlines()
    return done.returncode, [line for line in lines if line and not line.startswith(FOREIGN)]


def _documented_exposure() -> dict[str, float]:
    rows = re.findall(r"^\| (rollout-[\w@.-]+\.service) \| (\d+\.\d) \|$", OPERATIONS, flags=re.M)
    return {name: float(level) for name, level in rows}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    assert Path(SYSTEMD_ANALYZE).is_file(), "systemd-analyze missing: apt-get install systemd"
    return _install(sorted(uf.UNITS.glob("*.service")), tmp_path_factory.mktemp("units"))


def test_systemd_analyze_verify_passes_every_unit_without_a_message(
    installed: list[Path],
) -> None:
    status, about_ours = _verify(installed)

    assert about_ours == []
    assert status == 0
    assert len(installed) == len(list(uf.UNITS.glob("*.service"))) + 1  # + rollout-daemon@1


def test_the_verify_check_catches_what_systemd_only_warns_about(tmp_path: Path) -> None:
    unit = tmp_path / "src" / "rollout-receiver.service"
    unit.parent.mkdir()
    text = (uf.UNITS / unit.name).read_text(encoding="utf-8")
    text = text.replace("UMask=0077\n", "UMask=0077\nProtectSytem=strict\n")  # misspelt key
    text = text.replace("%d/hook-secret", "%Q/hook-secret")  # no such specifier
    unit.write_text(text, encoding="utf-8")

    status, about_ours = _verify(_install([unit], tmp_path / "units"))

    assert status == 0  # systemd's exit status alone would let both through
    assert any("Unknown key 'ProtectSytem'" in line for line in about_ours), about_ours
    assert any("Failed to resolve specifiers" in line for line in about_ours), about_ours


def test_each_unit_is_at_most_as_exposed_as_docs_operations_md_says(
    installed: list[Path],
) -> None:
    documented = _documented_exposure()
    measured = {}
    for unit in installed:
        if unit.name.endswith("@.service"):
            continue  # a template is rated through its instance
        done = _analyze("security", "--offline=true", "--no-pager", str(unit))
        found = re.search(
            rf"Overall exposure level for {re.escape(unit.name)}: (\d+\.\d)", done.stdout
        )
        assert found, f"{unit.name}: {done.stdout[-500:]} {done.stderr}"
        measured[unit.name] = float(found.group(1))

    assert sorted(documented) == sorted(measured)
    worse = {n: (m, documented[n]) for n, m in measured.items() if m > documented[n]}
    assert worse == {}, "measured exposure above the documented one"
    for name, level in documented.items():
        assert level <= (BOUND_RSYNCD if name == "rollout-rsyncd.service" else BOUND_ROLLOUT_USER)


def test_the_sysusers_file_makes_the_rollout_user_and_group(tmp_path: Path) -> None:
    sysusers = shutil.which("systemd-sysusers") or "/usr/bin/systemd-sysusers"
    (tmp_path / "etc").mkdir()
    conf = uf.DEPLOY / "sysusers.d" / "rollout.conf"

    subprocess.run(
        [sysusers, f"--root={tmp_path}", str(conf)],
        check=True,
        capture_output=True,
        timeout=60,
    )

    passwd = (tmp_path / "etc" / "passwd").read_text().splitlines()
    group = (tmp_path / "etc" / "group").read_text().splitlines()
    [user] = [line.split(":") for line in passwd if line.startswith("rollout:")]
    assert user[5:] == ["/var/lib/rollout", "/usr/sbin/nologin"]
    assert [line for line in group if line.startswith("rollout:")] == [f"rollout:x:{user[3]}:"]
