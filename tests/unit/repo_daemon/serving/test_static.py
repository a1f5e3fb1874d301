"""The shipped serving configurations, as text: the nginx server block and standalone
nginx.conf, the rsyncd.conf module, and the caching and content-type rules the embedded server
shares with nginx. (nginx -t, real requests and a real rsync daemon: tests/integration.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from repo_daemon.serving import static as serving

ROOT = Path("/srv/rollout/repo")


# --------------------------------------------------------------------------- nginx


def test_nginx_server_block_serves_the_trees_and_follows_the_area_symlinks() -> None:
    conf = serving.render_nginx(ROOT, listen="0.0.0.0:80", server_name="repo.example.org")
    assert conf.lstrip().startswith("#")
    assert "server {" in conf
    for line in (
        "listen 0.0.0.0:80;",
        "server_name repo.example.org;",
        "root /srv/rollout/repo;",
        "disable_symlinks off;",
        "open_file_cache off;",
        "autoindex on;",
        "sendfile on;",
        "index index.html;",
    ):
        assert f"    {line}\n" in conf, line
    assert "daemon" not in conf  # the caller's -g 'daemon off;' would clash


def test_nginx_refuses_the_bridges_state_and_hidden_paths() -> None:
    conf = serving.render_nginx(ROOT)
    for prefix in ("/.pool/", "/.locks/", "/.snapshots/"):
        assert re.search(rf"location \^~ {re.escape(prefix)} {{\s*return 404;", conf), prefix
    assert re.search(r'location ~ "/\\\." {\s*return 404;', conf)
    assert "if ($request_method !~ ^(GET|HEAD)$)" in conf


@pytest.mark.parametrize(
    ("suffix", "kind"),
    [
        ("rpm", "application/x-rpm"),
        ("deb", "application/vnd.debian.binary-package"),
        ("xml", "application/xml"),
        ("gz", "application/gzip"),
        ("xz", "application/x-xz"),
        ("json", "application/json"),
        ("html", "text/html"),
    ],
)
def test_nginx_types(suffix: str, kind: str) -> None:
    types = re.search(r"types \{\n(.*?)\n\s*\}", serving.render_nginx(ROOT), re.S)
    assert types is not None
    line = next(x for x in types.group(1).splitlines() if x.split()[0] == kind)
    assert suffix in line.rstrip(";").split()[1:]


def _nginx_cache_control(conf: str, path: str) -> str | None:
    """Which Cache-Control nginx sends for ``path``: its location choice, emulated (``^~``
    prefixes stop the search, then regex locations in order, then ``location /``). None when
    the location answers with a status instead."""
    blocks = re.findall(r"\n    location (\^~|~)? ?(\S+|\"[^\"]+\") \{\n(.*?)\n    \}", conf, re.S)
    chosen = None
    for kind, pattern, body in blocks:
        if kind == "^~" and path.startswith(pattern):
            chosen = body
            break
    if chosen is None:
        for kind, pattern, body in blocks:
            if kind == "~" and re.search(pattern.strip('"').replace("\\\\", "\\"), path):
                chosen = body
                break
    if chosen is None:
        chosen = next(body for kind, pattern, body in blocks if pattern == "/")
    header = re.search(r'add_header Cache-Control "([^"]+)"', chosen)
    return header.group(1) if header else None


CACHE_CASES = [
    ("/production/7/updates/", serving.NO_CACHE),
    ("/production/7/updates/index.json", serving.NO_CACHE),
    ("/production/7/updates/index.html", serving.NO_CACHE),
    ("/production/7/updates/.rollout-serial", serving.NO_CACHE),
    ("/production/7/updates/.rollout-manifest.json", serving.NO_CACHE),
    ("/production/7/updates/rpms/repodata/repomd.xml", serving.NO_CACHE),
    ("/production/7/updates/rpms/repodata/repomd.xml.asc", serving.NO_CACHE),
    ("/production/7/updates/debs/Release", serving.NO_CACHE),
    ("/production/7/updates/debs/InRelease", serving.NO_CACHE),
    ("/production/7/updates/debs/Release.gpg", serving.NO_CACHE),
    ("/production/7/updates/debs/Packages", serving.NO_CACHE),
    ("/production/7/updates/debs/Packages.gz", serving.NO_CACHE),
    ("/production/7/updates/rollout.repo", serving.NO_CACHE),
    ("/production/7/updates/rollout.sources", serving.NO_CACHE),
    ("/production/7/updates/rollout-archive-keyring.asc", serving.NO_CACHE),
    ("/production/7/updates/RPM-GPG-KEY-rollout", serving.NO_CACHE),
    ("/production/7/updates/debs/by-hash/SHA256/" + "a" * 64, serving.IMMUTABLE),
    (f"/production/7/updates/rpms/repodata/{'b' * 64}-primary.xml.gz", serving.IMMUTABLE),
    ("/production/7/updates/rpms/noarch/tool-1.0-1.noarch.rpm", serving.PACKAGE),
    ("/production/7/updates/debs/tool_1.0-1_all.deb", serving.PACKAGE),
    ("/production/7/updates/docs/Release-notes.txt", serving.PACKAGE),
]


@pytest.mark.parametrize(("path", "expected"), CACHE_CASES, ids=[c[0][22:] for c in CACHE_CASES])
def test_cache_control_is_the_same_in_nginx_and_the_embedded_server(
    path: str, expected: str
) -> None:
    assert serving.cache_control(path) == expected
    assert _nginx_cache_control(serving.render_nginx(ROOT), path) == expected


@pytest.mark.parametrize(
    "path", ["/.pool/ab/" + "a" * 64, "/.locks/.global.lock", "/.snapshots/x/000001-x/index.json"]
)
def test_nginx_answers_404_for_the_bridges_state(path: str) -> None:
    assert _nginx_cache_control(serving.render_nginx(ROOT), path) is None


def test_nginx_conf_keeps_everything_below_its_workdir(tmp_path: Path) -> None:
    conf = serving.render_nginx_conf(ROOT, workdir=tmp_path, listen="127.0.0.1:9999")
    for directive in ("pid", "error_log", "access_log", "client_body_temp_path",
                      "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path",
                      "scgi_temp_path"):  # fmt: skip
        match = re.search(rf"^\s*{directive} (\S+?)[ ;]", conf, re.M)
        assert match is not None, directive
        assert match.group(1).startswith(f"{tmp_path}/"), directive
    assert "listen 127.0.0.1:9999;" in conf
    assert "user " not in conf
    assert "daemon" not in conf
    assert conf.count("{") == conf.count("}")
    assert "user www-data;" in serving.render_nginx_conf(ROOT, workdir=tmp_path, user="www-data")


@pytest.mark.parametrize(
    "root", [Path("relative/repo"), Path("/srv/repo;evil"), Path("/srv/$host"), Path("/srv/a b")]
)
def test_unsafe_roots_are_refused(root: Path) -> None:
    with pytest.raises(ValueError, match="repository root"):
        serving.render_nginx(root)
    with pytest.raises(ValueError, match="repository root"):
        serving.render_rsyncd(root, port=873)


def test_unsafe_listen_and_names_are_refused() -> None:
    with pytest.raises(ValueError, match="listen"):
        serving.render_nginx(ROOT, listen="80; include /etc/passwd")
    with pytest.raises(ValueError, match="server name"):
        serving.render_nginx(ROOT, server_name="a;b")


# --------------------------------------------------------------------------- rsyncd


def _module(conf: str, name: str) -> dict[str, str]:
    section = conf.split(f"[{name}]\n", 1)[1].split("\n[", 1)[0]
    pairs = (line.strip().split(" = ", 1) for line in section.splitlines() if " = " in line)
    return {key: value for key, value in pairs}


def test_rsyncd_has_one_read_only_module_for_the_whole_root(tmp_path: Path) -> None:
    conf = serving.render_rsyncd(
        ROOT, port=8873, address="192.0.2.1", run_dir=tmp_path, log_file=tmp_path / "log"
    )
    assert re.findall(r"^\[(\S+)\]$", conf, re.M) == ["repo"]
    module = _module(conf, "repo")
    assert module["path"] == "/srv/rollout/repo"
    assert module["read only"] == "yes"
    assert module["use chroot"] == "yes"
    assert module["munge symlinks"] == "no"
    assert module["exclude"].split() == [
        "/.pool/", "/.locks/", ".building-*", ".deleting-*", ".*.swap-*"
    ]  # fmt: skip
    head = conf.split("[repo]")[0]
    for line in ("port = 8873", "address = 192.0.2.1", f"pid file = {tmp_path}/rsyncd.pid",
                 f"lock file = {tmp_path}/rsyncd.lock", f"log file = {tmp_path}/log",
                 "uid = nobody", "gid = nogroup", "max connections = 20"):  # fmt: skip
        assert f"{line}\n" in head, line
    # Mirrors pull with --delete: the client sends it to the daemon, refusing it breaks them.
    assert "refuse options" not in conf


def test_rsyncd_without_chroot_or_account_switch(tmp_path: Path) -> None:
    conf = serving.render_rsyncd(
        ROOT, port=8873, module="mirror", uid=None, gid=None, use_chroot=False, run_dir=tmp_path
    )
    assert _module(conf, "mirror")["use chroot"] == "no"
    assert "uid =" not in conf
    assert "gid =" not in conf
    assert "syslog facility = daemon" in conf


@pytest.mark.parametrize(
    "kwargs", [{"module": "a b"}, {"module": "x]"}, {"port": 0}, {"uid": "root\nx"}]
)
def test_rsyncd_refuses_unsafe_values(kwargs: dict[str, object]) -> None:
    arguments: dict[str, object] = {"port": 873, **kwargs}
    with pytest.raises(ValueError):
        serving.render_rsyncd(ROOT, **arguments)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- content types


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("tool-1.0-1.noarch.rpm", "application/x-rpm"),
        ("tool_1.0-1_all.deb", "application/vnd.debian.binary-package"),
        ("repomd.xml", "application/xml"),
        ("primary.xml.gz", "application/gzip"),
        ("Packages.xz", "application/x-xz"),
        ("index.json", "application/json; charset=utf-8"),
        ("index.html", "text/html; charset=utf-8"),
        ("Release", "text/plain; charset=utf-8"),
        ("Packages", "text/plain; charset=utf-8"),
        (".rollout-serial", "text/plain; charset=utf-8"),
        (".rollout-manifest.json", "application/json; charset=utf-8"),
        ("README", "application/octet-stream"),
    ],
)
def test_content_types(name: str, kind: str) -> None:
    assert serving.content_type(name) == kind
