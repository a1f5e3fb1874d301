"""The pure parts of sync (URL checks, the rsync plan, progress parsing, exit codes), the tree
check, and the HTTPS error paths against ``responses``."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from pathlib import Path

import pytest
import requests
import responses

from repo_daemon import errors
from repo_daemon.release_xml import model as manifest
from repo_daemon.sync import fetch as sync

# -- URL checks and the rsync plan -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "source"),
    [
        ("rsync://mirror.example.org/releases/arc/7.1.2/", None),
        ("rsync://mirror.example.org/releases/arc/7.1.2", "rsync://mirror.example.org/releases/arc/7.1.2/"),
        ("rsync://127.0.0.1:8730/rel", "rsync://127.0.0.1:8730/rel/"),
        ("rsync://mirror@mirror.example.org/rel/x", "rsync://mirror@mirror.example.org/rel/x/"),
        ("rsync://[::1]:873/rel/x/", None),
        ("mirror.example.org::releases/arc-ce", "mirror.example.org::releases/arc-ce/"),
        ("user@mirror.example.org::rel/a_b/c+d~e=f,g@h/", None),
    ],
)  # fmt: skip
def test_rsync_urls_accepted(url: str, source: str | None) -> None:
    assert sync.check_rsync_url(url) == (source or url)


HOSTILE_RSYNC_URLS = [
    pytest.param("-e sh", id="option"),
    pytest.param("--rsh=sh -c id", id="long-option"),
    pytest.param("-rsync://host/mod", id="leading-dash"),
    pytest.param("rsync://host/x; rm -rf /", id="shell-separator"),
    pytest.param("rsync://host/x;rm", id="semicolon"),
    pytest.param("rsync://host/x$(id)", id="command-substitution"),
    pytest.param("rsync://host/x`id`", id="backticks"),
    pytest.param("rsync://host/x|id", id="pipe"),
    pytest.param("rsync://host/x\nid", id="newline"),
    pytest.param("rsync://host/x\tid", id="tab"),
    pytest.param("rsync://host/x\x00", id="nul"),
    pytest.param("rsync://host/x\u202e", id="bidi-override"),
    pytest.param("rsync://host/x\u00a0y", id="no-break-space"),
    pytest.param("file:///etc", id="file-url"),
    pytest.param("/etc/passwd", id="local-path"),
    pytest.param("etc/passwd", id="relative-path"),
    pytest.param("host:/etc", id="remote-shell"),
    pytest.param("ssh://host/etc", id="ssh-url"),
    pytest.param("https://host/x", id="https-url"),
    pytest.param("rsync://host/../etc", id="dotdot-module"),
    pytest.param("rsync://host/mod/../../etc", id="dotdot-path"),
    pytest.param("rsync://host/mod/./x", id="dot-path"),
    pytest.param("rsync://host/mod//x", id="empty-component"),
    pytest.param("host::mod/a/../b", id="daemon-dotdot"),
    pytest.param("rsync://host/mod/*", id="wildcard"),
    pytest.param("rsync://host/mod/x?", id="question-mark"),
    pytest.param("rsync://host/mod/[ab]", id="brackets"),
    pytest.param("rsync://host/", id="no-module"),
    pytest.param("rsync://host", id="no-path"),
    pytest.param("host::", id="daemon-no-module"),
    pytest.param("rsync://host:99999/mod", id="bad-port"),
    pytest.param("rsync://host:0/mod", id="port-zero"),
    pytest.param("rsync://user:secret@host/mod", id="password"),
    pytest.param("rsync://-oProxyCommand=id/mod", id="dash-host"),
    pytest.param("rsync://ho_st/mod", id="bad-host"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("url", HOSTILE_RSYNC_URLS)
def test_hostile_rsync_urls_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(sync.SyncUrlRefused) as caught:
        sync.plan_rsync(url, tmp_path / "dest", 600)
    assert not caught.value.transient
    assert isinstance(caught.value, errors.DaemonError)
    assert "\n" not in str(caught.value) and "\x00" not in str(caught.value)


def test_plan_rsync_puts_the_url_after_double_dash(tmp_path: Path) -> None:
    argv = sync.plan_rsync("rsync://mirror.example.org/rel/arc", tmp_path / "dest", 600.0)
    assert argv[0] == "rsync"
    assert argv[-3:] == ["--", "rsync://mirror.example.org/rel/arc/", f"{tmp_path}/dest/"]
    options = argv[1:-3]
    assert all(o.startswith("--") for o in options)
    for wanted in (
        "--recursive", "--times", "--partial", "--no-links", "--no-devices", "--no-specials",
        "--no-owner", "--no-group", "--chmod=D755,F644", "--timeout=600", "--delete",
    ):  # fmt: skip
        assert wanted in options
    assert "--contimeout=600" in options
    assert any(o.startswith("--info=") and "progress2" in o for o in options)
    assert "--out-format=rollout-done: %b %n" in options
    for never in ("--links", "-l", "-a", "--archive", "--perms", "--owner", "--devices", "-e"):
        assert never not in options


def test_plan_rsync_timeouts_and_password_file(tmp_path: Path) -> None:
    argv = sync.plan_rsync(
        "host::rel/x",
        tmp_path / "dest/",
        12.2,
        connect_timeout=5,
        password_file=tmp_path / "pw",
        binary="/usr/bin/rsync",
    )
    assert argv[0] == "/usr/bin/rsync"
    assert "--timeout=13" in argv and "--contimeout=5" in argv
    assert f"--password-file={tmp_path / 'pw'}" in argv
    assert argv.index("--") == len(argv) - 3
    assert argv[-1] == f"{tmp_path}/dest/"


def test_a_dest_that_looks_like_an_option_stays_a_path() -> None:
    argv = sync.plan_rsync("host::rel", Path("-e"), 60)
    assert argv[-3:] == ["--", "host::rel/", "-e/"]


def test_rsync_environment_drops_what_could_run_commands() -> None:
    env = sync.plan_rsync_env(
        {
            "PATH": "/usr/bin:/bin",
            "HOME": "/root",
            "RSYNC_CONNECT_PROG": "sh -c id",
            "RSYNC_RSH": "sh",
            "RSYNC_OLD_ARGS": "1",
            "RSYNC_PASSWORD": "secret",
            "RSYNC_PROXY": "proxy.example.org:3128",
            "LANG": "de_DE.UTF-8",
        }
    )
    assert env == {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "RSYNC_PROXY": "proxy.example.org:3128"}


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("              0   0%    0.00kB/s    0:00:00  ", (0, 0.0)),
        ("   3,000,000  99%    1.40GB/s    0:00:00 (xfr#1, to-chk=5/7)", (3_000_000, 1.4 * 2**30)),
        ("    524,288  12%  512.00kB/s    0:00:10 (xfr#3, ir-chk=1000/1010)", (524_288, 2**19)),
        ("  1,234,567,890  50%   85.31MB/s    0:00:14", (1_234_567_890, 85.31 * 1024**2)),
        ('skipping non-regular file "link"', None),
        ("sent 1,234 bytes  received 5,678 bytes", None),
        ("", None),
    ],
)  # fmt: skip
def test_parse_rsync_progress(line: str, parsed: tuple[int, float] | None) -> None:
    result = sync.parse_rsync_progress(line)
    if parsed is None:
        assert result is None
    else:
        assert result is not None
        assert result[0] == parsed[0]
        assert result[1] == pytest.approx(parsed[1])


def test_parse_rsync_done() -> None:
    assert sync.parse_rsync_done("rollout-done: 3000000 rpms/noarch/a.rpm") == "rpms/noarch/a.rpm"
    assert sync.parse_rsync_done("rollout-done: 12 debs/a b.deb") == "debs/a b.deb"
    assert sync.parse_rsync_done("rollout-done: 0 rpms/") is None
    assert sync.parse_rsync_done("rollout-done: 0 ./") is None
    assert sync.parse_rsync_done("rollout-done: 5 odd\\#012name") is None
    assert sync.parse_rsync_done("deleting rpms/old.rpm") is None


def test_parse_rsync_nonregular() -> None:
    assert sync.parse_rsync_nonregular('skipping non-regular file "sub/a b"') == "sub/a b"
    assert sync.parse_rsync_nonregular("      100 100%") is None


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
    err = sync.RsyncFailed(code, stderr, url="rsync://h/m/")
    assert err.transient is transient
    assert f"exit code {code}" in str(err)
    assert stderr in str(err)
    assert err.returncode == code and err.stderr_tail == stderr


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("sftp://rel@sftp.example.org/srv/rel/a", ("rel", "sftp.example.org", 22, "/srv/rel/a")),
        ("sftp://rel@127.0.0.1:2222/srv/rel/", ("rel", "127.0.0.1", 2222, "/srv/rel")),
        ("sftp://sftp.example.org/srv", ("mirror", "sftp.example.org", 22, "/srv")),
    ],
)  # fmt: skip
def test_sftp_urls_accepted(url: str, target: tuple[str, str, int, str]) -> None:
    parsed = sync.parse_sftp_url(url, default_user="mirror")
    assert (parsed.user, parsed.host, parsed.port, parsed.path) == target


@pytest.mark.parametrize(
    "url",
    [
        "sftp://user:secret@host/srv",
        "sftp://host/srv",  # no user and no default
        "sftp://user@host",
        "sftp://user@host/",
        "sftp://user@host/srv/../etc",
        "sftp://user@host/srv/%2e%2e/etc",
        "sftp://user@host/srv?x=1",
        "sftp://user@host:0/srv",
        "sftp://user@host:70000/srv",
        "sftp://user@host/srv; rm",
        "sftp://-oProxyCommand=id/srv",
        "sftp://user@host/srv/$(id)",
        "rsync://host/mod",
        "-sftp://user@host/srv",
    ],
)
def test_sftp_urls_refused(url: str) -> None:
    with pytest.raises(sync.SyncUrlRefused):
        sync.parse_sftp_url(url)


def _pkg(path: str, data: bytes = b"") -> manifest.PackageFile:
    return manifest.PackageFile(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def test_plan_https_quotes_each_component() -> None:
    plan = sync.plan_https(
        "https://dl.example.org/rel/arc/", [_pkg("rpms/noarch/a+b 1.rpm"), _pkg("debs/c%d.deb")]
    )
    assert [u for u, _ in plan] == [
        "https://dl.example.org/rel/arc/rpms/noarch/a%2Bb%201.rpm",
        "https://dl.example.org/rel/arc/debs/c%25d.deb",
    ]


@pytest.mark.parametrize(
    "url",
    [
        "http://dl.example.org/rel",
        "ftp://dl.example.org/rel",
        "file:///etc",
        "https://user:pw@dl.example.org/rel",
        "https://dl.example.org/rel?x=1",
        "https://dl.example.org/rel#x",
        "https://dl.example.org/rel/../etc",
        "https://dl.example.org/rel/%2E%2E/etc",
        "https:///rel",
        "https://dl.example.org:0/rel",
        "https://dl.example.org/rel x",
    ],
)
def test_plan_https_refuses(url: str) -> None:
    with pytest.raises(sync.SyncUrlRefused):
        sync.plan_https(url, [_pkg("a.rpm")])


def test_plan_https_allows_http_only_when_asked() -> None:
    assert sync.plan_https("http://127.0.0.1:8080/r", [_pkg("a.rpm")], allow_http=True)


@pytest.mark.parametrize("path", ["../a.rpm", "/etc/passwd", "a//b.rpm", "a/./b.rpm"])
def test_plan_https_refuses_unsafe_package_paths(path: str) -> None:
    with pytest.raises(sync.SyncRefused):
        sync.plan_https("https://dl.example.org/rel", [_pkg(path)])


@pytest.mark.parametrize(
    ("protocol", "name"), [(None, "rsync"), ("", "rsync"), (" RSYNC ", "rsync"), ("SFTP", "sftp"),
                           ("https", "https")],
)  # fmt: skip
def test_check_protocol(protocol: str | None, name: str) -> None:
    assert sync.check_protocol(protocol, "x") == name


def test_unknown_protocol_is_refused() -> None:
    with pytest.raises(sync.SyncUrlRefused, match="Sync-Protocol 'ftp'"):
        sync.check_protocol("ftp", "ftp://x/")
    with pytest.raises(sync.SyncUrlRefused):
        sync.check_protocol("http", "http://x/")


def test_a_release_larger_than_allowed_is_refused_before_fetching(tmp_path: Path) -> None:
    packages = [manifest.PackageFile(path="a.rpm", size=2000, sha256="0" * 64)]
    with pytest.raises(sync.SyncRefused, match="2000 bytes"):
        sync.sync(
            "rsync",
            "rsync://127.0.0.1:1/rel",
            tmp_path / "dest",
            packages=packages,
            options=sync.SyncOptions(max_bytes=1000),
        )
    assert not (tmp_path / "dest").exists()


# -- the tree check ----------------------------------------------------------------------------


def test_check_tree_counts_regular_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.rpm").write_bytes(b"123")
    (tmp_path / "y.deb").write_bytes(b"45")
    (tmp_path / "empty").mkdir()
    assert sync.check_tree(tmp_path) == sync.TreeSummary(files=2, bytes=5)


def test_check_tree_refuses_symlinks_and_special_files_naming_all(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "passwd").symlink_to("/etc/passwd")
    (tmp_path / "dirlink").symlink_to(tmp_path / "sub")
    (tmp_path / "dangling").symlink_to(tmp_path / "nothing")
    os.mkfifo(tmp_path / "fifo")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        with pytest.raises(sync.SyncRefused) as caught:
            sync.check_tree(tmp_path)
    assert not caught.value.transient
    assert caught.value.paths == ("dangling", "dirlink", "fifo", "sock", "sub/passwd")
    assert "sub/passwd (symlink)" in str(caught.value)
    assert "fifo (fifo)" in str(caught.value)


def test_prune_removes_leftovers_only(tmp_path: Path) -> None:
    (tmp_path / "keep" / "deep").mkdir(parents=True)
    (tmp_path / "keep" / "deep" / "a.rpm").write_bytes(b"a")
    (tmp_path / "keep" / ".a.rpm.part").write_bytes(b"partial")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "b.rpm").write_bytes(b"b")
    (tmp_path / "link").symlink_to(tmp_path / "old")
    sync.prune(tmp_path, {"keep/deep/a.rpm"})
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert left == ["keep", "keep/deep", "keep/deep/a.rpm"]


def test_dest_that_is_not_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(sync.SyncError):
        sync.prepare_dest(tmp_path / "file")
    (tmp_path / "link").symlink_to(tmp_path)
    with pytest.raises(sync.SyncError):
        sync.prepare_dest(tmp_path / "link")


# -- progress ----------------------------------------------------------------------------------


def test_progress_calls_back_and_logs_at_most_every_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[tuple[int, int | None, float]] = []
    report = sync.Progress(lambda *a: seen.append(a), total=100, label="sync x", log_interval=3600)
    with caplog.at_level(logging.INFO, logger="repo_daemon.sync.fetch"):
        report.update(10, 5.0)
        report.add(20)
        report.log_interval = 0
        report.update(100, 1024.0**2)
    assert [s[:2] for s in seen] == [(10, 100), (30, 100), (100, 100)]
    assert seen[0][2] == 5.0 and seen[1][2] > 0
    assert [r.getMessage() for r in caplog.records] == [
        "sync x: 100 B of 100 B (100%) at 1.0 MiB/s"
    ]


# -- SFTP configuration problems (no network needed) -------------------------------------------


def test_sftp_without_a_key_is_a_permanent_failure(tmp_path: Path) -> None:
    with pytest.raises(sync.SftpFailed, match="sftp_key_file") as caught:
        sync.sync("sftp", "sftp://u@127.0.0.1:1/srv", tmp_path / "d")
    assert not caught.value.transient


@pytest.mark.parametrize("content", [None, "garbage\n"])
def test_sftp_with_an_unusable_key_is_a_permanent_failure(
    tmp_path: Path, content: str | None
) -> None:
    if content is not None:
        (tmp_path / "key").write_text(content)
    options = sync.SyncOptions(sftp_key_file=tmp_path / "key", sftp_known_hosts=tmp_path / "kh")
    with pytest.raises(sync.SftpFailed, match="cannot use the SFTP key file") as caught:
        sync.sync("sftp", "sftp://u@127.0.0.1:1/srv", tmp_path / "d", options=options)
    assert not caught.value.transient


def test_sftp_without_known_hosts_is_refused_unless_allowed(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = tmp_path / "key"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    options = sync.SyncOptions(sftp_key_file=key)
    with pytest.raises(sync.SftpFailed, match="no known_hosts file") as caught:
        sync.sync("sftp", "sftp://u@127.0.0.1:1/srv", tmp_path / "d", options=options)
    assert not caught.value.transient


# -- HTTPS error paths (responses) -------------------------------------------------------------

BASE = "https://dl.example.org/rel/arc"


def _https(
    tmp_path: Path, packages: list[manifest.PackageFile], **options: object
) -> sync.SyncResult:
    return sync.sync(
        "https",
        BASE,
        tmp_path / "dest",
        packages=packages,
        options=sync.SyncOptions(**options),  # type: ignore[arg-type]
    )


@responses.activate
def test_https_fetches_every_file_and_resumes(tmp_path: Path) -> None:
    a, b = _pkg("rpms/noarch/a.rpm", b"a" * 3000), _pkg("debs/b.deb", b"bb")
    responses.get(f"{BASE}/rpms/noarch/a.rpm", body=b"a" * 3000)
    responses.get(f"{BASE}/debs/b.deb", body=b"bb")
    (tmp_path / "dest" / "old").mkdir(parents=True)
    (tmp_path / "dest" / "old" / "stale.rpm").write_bytes(b"stale")
    result = _https(tmp_path, [a, b])
    assert (result.files, result.bytes) == (2, 3002)
    assert (tmp_path / "dest" / "rpms" / "noarch" / "a.rpm").read_bytes() == b"a" * 3000
    assert not (tmp_path / "dest" / "old").exists()
    assert responses.calls[0].request.headers["Accept-Encoding"] == "identity"

    responses.calls.reset()
    again = _https(tmp_path, [a, b])  # both already there, as promised: nothing is fetched
    assert (again.files, again.bytes) == (2, 3002)
    assert len(responses.calls) == 0


@responses.activate
def test_https_404s_are_permanent_and_all_listed(tmp_path: Path) -> None:
    good = _pkg("good.rpm", b"good")
    responses.get(f"{BASE}/good.rpm", body=b"good")
    responses.get(f"{BASE}/a.rpm", status=404)
    responses.get(f"{BASE}/sub/b.deb", status=410)
    responses.get(f"{BASE}/c.rpm", status=403)
    with pytest.raises(sync.HttpsFailed) as caught:
        _https(tmp_path, [_pkg("a.rpm", b"x"), good, _pkg("sub/b.deb", b"y"), _pkg("c.rpm", b"z")])
    err = caught.value
    assert not err.transient
    assert [(p, r.split()[1]) for p, r in err.failures] == [
        ("a.rpm", "404"),
        ("sub/b.deb", "410"),
        ("c.rpm", "403"),
    ]
    assert str(err).startswith(f"3 of 4 files could not be fetched from {BASE}: a.rpm: HTTP 404")
    assert (tmp_path / "dest" / "good.rpm").read_bytes() == b"good"
    assert not list((tmp_path / "dest").rglob("*.part"))


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408])
@responses.activate
def test_https_server_errors_are_transient(tmp_path: Path, status: int) -> None:
    responses.get(f"{BASE}/a.rpm", status=status)
    with pytest.raises(sync.HttpsFailed) as caught:
        _https(tmp_path, [_pkg("a.rpm", b"x"), _pkg("b.rpm", b"y")])
    assert caught.value.transient
    assert f"HTTP {status}" in str(caught.value)
    assert len(responses.calls) == 1  # stops at once: the queue retries the whole sync


@responses.activate
def test_https_body_longer_than_promised_is_cut_and_refused(tmp_path: Path) -> None:
    promised = b"p" * 100
    body = b"p" * 100 + b"X" * (5 * 1024 * 1024)
    responses.get(f"{BASE}/a.rpm", body=body, auto_calculate_content_length=False)
    with pytest.raises(sync.HttpsFailed, match="more than the 100 bytes") as caught:
        _https(tmp_path, [_pkg("a.rpm", promised)])
    assert not caught.value.transient
    assert not (tmp_path / "dest" / "a.rpm").exists()
    assert list((tmp_path / "dest").iterdir()) == []
    # stopped reading at size + 1 bytes: the rest of the body was never consumed
    response = responses.calls[0].response
    assert isinstance(response, requests.Response)
    raw = response.raw
    assert raw.tell() == 101


@responses.activate
def test_https_announced_length_above_promise_is_refused_unread(tmp_path: Path) -> None:
    responses.get(f"{BASE}/a.rpm", body=b"p" * 200, auto_calculate_content_length=True)
    with pytest.raises(sync.HttpsFailed, match="announces 200 bytes") as caught:
        _https(tmp_path, [_pkg("a.rpm", b"p" * 100)])
    assert not caught.value.transient


@responses.activate
def test_https_connection_errors_are_transient(tmp_path: Path) -> None:
    responses.get(f"{BASE}/a.rpm", body=requests.exceptions.ConnectionError("refused"))
    with pytest.raises(sync.HttpsFailed, match="refused") as caught:
        _https(tmp_path, [_pkg("a.rpm", b"x")])
    assert caught.value.transient


@responses.activate
def test_https_timeouts_are_transient(tmp_path: Path) -> None:
    responses.get(f"{BASE}/a.rpm", body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(sync.HttpsFailed, match="timed out") as caught:
        _https(tmp_path, [_pkg("a.rpm", b"x")])
    assert caught.value.transient


@responses.activate
def test_https_certificate_failures_are_permanent(tmp_path: Path) -> None:
    responses.get(f"{BASE}/a.rpm", body=requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(sync.HttpsFailed, match="certificate verify failed") as caught:
        _https(tmp_path, [_pkg("a.rpm", b"x")])
    assert not caught.value.transient


@responses.activate
def test_https_shorter_body_is_left_for_verify(tmp_path: Path) -> None:
    responses.get(f"{BASE}/a.rpm", body=b"short")
    result = _https(tmp_path, [_pkg("a.rpm", b"longer body")])
    assert result.bytes == 5  # verify reports the wrong size, with every other difference


def test_https_refuses_http_unless_allowed(tmp_path: Path) -> None:
    with pytest.raises(sync.SyncUrlRefused, match="http:// is not allowed"):
        sync.sync("https", "http://dl.example.org/r", tmp_path / "d", packages=[_pkg("a")])


def test_https_needs_the_list_of_files(tmp_path: Path) -> None:
    with pytest.raises(sync.SyncError, match="list of files"):
        sync.sync("https", BASE, tmp_path / "d")
