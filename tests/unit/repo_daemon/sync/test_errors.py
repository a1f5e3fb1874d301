"""What rsync's exit codes mean: ``RsyncFailed`` is transient or permanent by the table."""

from __future__ import annotations

import pytest

from repo_daemon.sync import errors


@pytest.mark.parametrize(
    ("code", "stderr", "transient"),
    [
        (10, "failed to connect to 127.0.0.1: Connection refused (111)", True),
        (12, "connection unexpectedly closed", True),
        (30, "timeout in data send/receive", True),
        (35, "timeout waiting for daemon connection", True),
        (24, "file has vanished", True),
        (11, "write failed: No space left on device (28)", True),
        (5, "@ERROR: Unknown module 'nomod'", False),
        (5, "@ERROR: auth failed on module rel", False),
        (5, "@ERROR: max connections (8) reached -- try again later", True),
        (23, 'change_dir "nodir" (in rel) failed: No such file or directory (2)', False),
        (1, "syntax or usage error", False),
        (2, "protocol version mismatch", False),
        (3, "errors selecting input/output files", False),
        (99, "", True),
        (-9, "", True),
    ],
)
def test_rsync_exit_codes_decide_transient(code: int, stderr: str, transient: bool) -> None:
    err = errors.RsyncFailed(code, stderr, url="rsync://h/m/")
    assert err.transient is transient
    assert f"exit code {code}" in str(err)
    assert stderr in str(err)
    assert err.returncode == code and err.stderr_tail == stderr
