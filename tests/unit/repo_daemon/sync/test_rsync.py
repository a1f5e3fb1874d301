"""The rsync plan (argument list, environment) and the parsers of rsync's output (pure)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from repo_daemon import errors
from repo_daemon.sync import errors as sync_errors
from repo_daemon.sync import rsync

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
    with pytest.raises(sync_errors.SyncUrlRefused) as caught:
        rsync.plan_rsync(url, tmp_path / "dest", 600)
    assert not caught.value.transient
    assert isinstance(caught.value, errors.DaemonError)
    assert "\n" not in str(caught.value) and "\x00" not in str(caught.value)


def test_plan_rsync_puts_the_url_after_double_dash(tmp_path: Path) -> None:
    argv = rsync.plan_rsync("rsync://mirror.example.org/rel/arc", tmp_path / "dest", 600.0)
    assert argv[0] == "rsync"
    assert argv[-3:] == ["--", "rsync://mirror.example.org/rel/arc/", f"{tmp_path}/dest/"]
    options = argv[1:-3]
    assert all(o.startswith("--") for o in options)
    for wanted in (
        "--recursive", "--times", "--partial", "--no-links", "--no-devices", "--no-specials",
        "--no-owner", "--no-group", "--chmod=D755,F644", "--timeout=600", "--delete",
        "--sockopts=TCP_NODELAY",
    ):  # fmt: skip
        assert wanted in options
    assert "--contimeout=600" in options
    assert any(o.startswith("--info=") and "progress2" in o for o in options)
    assert "--out-format=rollout-done: %b %n" in options
    for never in ("--links", "-l", "-a", "--archive", "--perms", "--owner", "--devices", "-e"):
        assert never not in options


def test_plan_rsync_timeouts_and_password_file(tmp_path: Path) -> None:
    argv = rsync.plan_rsync(
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
    argv = rsync.plan_rsync("host::rel", Path("-e"), 60)
    assert argv[-3:] == ["--", "host::rel/", "-e/"]


def test_rsync_environment_drops_what_could_run_commands() -> None:
    env = rsync.plan_rsync_env(
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
    result = rsync.parse_rsync_progress(line)
    if parsed is None:
        assert result is None
    else:
        assert result is not None
        assert result[0] == parsed[0]
        assert result[1] == pytest.approx(parsed[1])


def test_parse_rsync_done() -> None:
    assert rsync.parse_rsync_done("rollout-done: 3000000 rpms/noarch/a.rpm") == "rpms/noarch/a.rpm"
    assert rsync.parse_rsync_done("rollout-done: 12 debs/a b.deb") == "debs/a b.deb"
    assert rsync.parse_rsync_done("rollout-done: 0 rpms/") is None
    assert rsync.parse_rsync_done("rollout-done: 0 ./") is None
    assert rsync.parse_rsync_done("rollout-done: 5 odd\\#012name") is None
    assert rsync.parse_rsync_done("deleting rpms/old.rpm") is None


def test_parse_rsync_nonregular() -> None:
    assert rsync.parse_rsync_nonregular('skipping non-regular file "sub/a b"') == "sub/a b"
    assert rsync.parse_rsync_nonregular("      100 100%") is None


def test_exclude_patterns_are_anchored_and_escape_wildcards_only_where_needed() -> None:
    text = rsync.exclude_patterns(["debs/b.deb", "debs/x[1]*?.deb", "a b .rpm"])
    assert text.splitlines() == ["/a b .rpm", "/debs/b.deb", "/debs/x\\[1]\\*\\?.deb"]
    with pytest.raises(ValueError, match="line break"):
        rsync.exclude_patterns(["a\nb"])


def test_plan_rsync_passes_the_placed_files_as_excludes_before_the_url(tmp_path: Path) -> None:
    listing = tmp_path / "placed"
    argv = rsync.plan_rsync("rsync://h/m/", tmp_path / "d", 60, exclude_from=listing)
    assert argv[argv.index("--") - 1] == f"--exclude-from={listing}"
    assert "--delete-excluded" not in argv
    assert not any(
        a.startswith("--exclude") for a in rsync.plan_rsync("rsync://h/m/", tmp_path, 60)
    )


def test_the_argument_list_docs_sync_md_shows_is_the_real_one() -> None:
    from tests.support import paths

    doc = (paths.ROOT / "docs" / "sync.md").read_text()
    shown = shlex.split(doc.split("**rsync.** The argument list", 1)[1].split("```\n", 2)[1])
    argv = rsync.plan_rsync(
        "rsync://h/m/",
        Path("/d"),
        600,
        connect_timeout=30,
        password_file=Path("/pw"),
        exclude_from=Path("/placed"),
    )
    named = {
        "--timeout=600": "--timeout=T",
        "--contimeout=30": "--contimeout=C",
        "--password-file=/pw": "[--password-file=FILE]",
        "--exclude-from=/placed": "[--exclude-from=FILE]",
        "rsync://h/m/": "URL",
        "/d/": "DEST/",
    }
    assert shown == [named.get(a, a) for a in argv]
