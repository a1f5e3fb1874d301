"""The rendered RT initialdata compiles with a real perl (moved out of the unit tier: it
starts a process)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from bridge.rt_setup import initialdata


@pytest.mark.skipif(shutil.which("perl") is None, reason="perl is part of every Debian system")
def test_rendered_file_is_valid_perl() -> None:
    # Compile only (-c): the RT:: calls in @Final are not run.
    result = subprocess.run(
        ["perl", "-c", "-"], input=initialdata.render("sw-rel"), capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "syntax OK" in result.stderr
