"""The installed ``rollout`` command, run as a person would, against a real sandbox RT."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

pytestmark = pytest.mark.rt

ROLLOUT = Path(sys.executable).with_name("rollout")


def _rollout(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROLLOUT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_demo_leaves_a_working_rt_and_runs_twice(tmp_path: Path) -> None:
    directory = tmp_path / "sandbox"
    try:
        first = _rollout("demo", "--dir", str(directory))
        assert first.returncode == 0, first.stderr
        assert "signature verified" in first.stdout
        assert "RolloutProgress: Unverified" in first.stdout
        assert "release.xml: 276 bytes, byte-exact" in first.stdout

        status = _rollout("tracker", "sandbox", "status", "--dir", str(directory), "--json")
        assert status.returncode == 0, status.stderr
        info = json.loads(status.stdout)
        assert info["running"] is True
        # The RT left running has the product's queue, fields and groups.
        with httpx2.Client(auth=(info["root_user"], info["root_password"]), timeout=20) as rt:
            rest = info["web_url"] + "REST/2.0/"
            queue = rt.get(rest + "queue/sw-rel").json()
            fields = rt.get(
                rest + f"queue/{queue['id']}/customfields",
                params={"per_page": 50, "fields": "Name"},
            )
            names = {item["Name"] for item in fields.json()["items"]}
            assert {"RolloutProgress", "EmergencyRelease", "RolloutHistory"} <= names
            group = rt.post(rest + "groups", json=[{"field": "Name", "value": "sw-rel-qc"}])
            assert group.json()["total"] == 1

        # Safe to run twice: the second run reuses the database and files a second ticket.
        second = _rollout("demo", "--dir", str(directory), "--exit")
        assert second.returncode == 0, second.stderr
        assert "tracker show 2" in second.stdout
        assert "sandbox RT stopped (--exit)" in second.stdout
        after = _rollout("tracker", "sandbox", "status", "--dir", str(directory))
        assert after.returncode == 1
        assert "stopped" in after.stdout
    finally:
        _rollout("tracker", "sandbox", "down", "--dir", str(directory))


def test_installed_command_explains_itself() -> None:
    result = _rollout("--help", timeout=60)
    assert result.returncode == 0
    assert "Rollout bridge" in result.stdout
    for group in ("tracker", "demo"):
        assert group in result.stdout
    assert _rollout("tracker", "sandbox", "--help", timeout=60).returncode == 0
    same = subprocess.run(
        [sys.executable, "-m", "repo_daemon", "--help"], capture_output=True, text=True, check=False
    )
    assert same.stdout == result.stdout
