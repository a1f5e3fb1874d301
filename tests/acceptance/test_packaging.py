"""The wheel carries what the product needs at run time: the RT set-up files and schemas."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support import paths

ROOT = paths.ROOT


def test_wheel_ships_rt_setup_files_and_the_console_script(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("rollout_bridge-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    for shipped in (
        "bridge/rt_setup/initialdata",
        "bridge/rt_setup/scrip_action.pl",
        "bridge/rt_setup/scrip_condition.pl",
        "bridge/tracker/client.py",
        "repo_daemon/cli/__init__.py",
        "schemas/__init__.py",
        "schemas/release.xsd",
        "schemas/workflows/staged.toml",
        "schemas/workflows/direct.toml",
        "bridge/store/migrations/env.py",
        "bridge/store/migrations/versions/0001_queue_events_state.py",
    ):
        assert shipped in names, f"{shipped} is missing from {wheel.name}"
    assert not any(n.startswith(("tests/", "fixtures/")) for n in names)
    assert "rollout = repo_daemon.cli:main" in scripts
