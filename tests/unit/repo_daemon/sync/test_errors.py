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


# -- failures to connect, in plain words ---------------------------------------------------------


def test_plain_reason_names_what_happened_and_never_where() -> None:
    import errno
    import socket

    import paramiko

    assert errors.plain_reason(socket.gaierror(-2, "Name or service not known")) == (
        "the host name could not be resolved"
    )
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    wrapper = OSError("Failed to connect to 10.1.2.3 via proxy.internal")
    wrapper.__cause__ = refused
    assert errors.plain_reason(wrapper) == "the connection was refused"
    # paramiko lists every address it tried
    tried = paramiko.ssh_exception.NoValidConnectionsError(
        {("10.1.2.3", 22): OSError(errno.EHOSTUNREACH, "No route to host")}
    )
    assert errors.plain_reason(tried) == "the host is unreachable"
    assert errors.plain_reason(TimeoutError()) == "timed out"
    assert errors.plain_reason(RuntimeError("at 10.1.2.3")) == "the connection failed"


def test_rsyncs_words_about_connecting_are_made_plain() -> None:
    from repo_daemon.sync import rsync

    tail = [
        "rsync: [Receiver] failed to connect to proxy.internal (10.9.9.9): Connection refused"
        " (111)",
        "rsync: [Receiver] failed to connect to proxy.internal (fd00::9): Connection refused (111)",
        "rsync error: error in socket I/O (code 10) at clientserver.c(139) [Receiver=3.2.7]",
    ]
    assert rsync.plain_tail(tail, host="files.test").splitlines() == [
        "could not connect to files.test: the connection was refused",
        "rsync error: error in socket I/O (code 10) at clientserver.c(139) [Receiver=3.2.7]",
    ]
    tail = ["rsync: getaddrinfo: files.test 873: Name or service not known"]
    assert rsync.plain_tail(tail, host="files.test") == (
        "could not connect to files.test: the host name could not be resolved"
    )


def test_rsyncs_other_words_keep_no_address_but_the_hosts() -> None:
    from repo_daemon.sync import rsync

    tail = [
        "@ERROR: access denied to rel from bridge.internal.example (10.0.0.5)",
        "@ERROR: Unknown module 'nope' on 192.0.2.7, seen from 10.0.0.5 and fd00::5",
        "rsync: connection unexpectedly closed (0 bytes received so far) [Receiver]",
    ]
    assert rsync.plain_tail(tail, host="192.0.2.7").splitlines() == [
        "@ERROR: access denied to rel",
        "@ERROR: Unknown module 'nope' on 192.0.2.7, seen from [address] and [address]",
        "rsync: connection unexpectedly closed (0 bytes received so far) [Receiver]",
    ]
