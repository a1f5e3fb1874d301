"""`rollout release validate|sync` as a provider runs them, against a real rsync daemon."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.packages import build_packages, layout_provider_tree
from tests.support.rsync_server import RsyncDaemon

ROLLOUT = Path(sys.executable).with_name("rollout")


def _rollout(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROLLOUT), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_a_provider_checks_a_release_before_filing_it(tmp_path: Path) -> None:
    provider = tmp_path / "provider"
    built = build_packages(tmp_path / "build", count=1)
    with RsyncDaemon(tmp_path / "rsyncd", {"provider": provider}) as daemon:
        tree = layout_provider_tree(provider / "x", built, sync_url=daemon.url("provider", "x/"))
        xml = tmp_path / "release.xml"
        xml.write_bytes(tree.release_xml)

        valid = _rollout("release", "validate", str(xml))
        assert valid.returncode == 0, valid.stderr
        assert "2 packages" in valid.stdout

        good = _rollout("release", "sync", str(xml), str(tmp_path / "fetched"))
        assert good.returncode == 0, good.stderr
        assert "every file matches release.xml" in good.stdout
        assert " at " in good.stderr and "/s" in good.stderr  # progress: bytes and rate

        (provider / "x" / "debs" / "junk.txt").write_text("extra")
        bad = _rollout("release", "sync", str(xml), str(tmp_path / "fetched-again"))
        assert bad.returncode == 1
        assert "debs/junk.txt" in bad.stderr
