"""The shipped nginx configuration, as text: the server block and the standalone nginx.conf,
with the caching and content types of ``policy`` (nginx -t and real requests:
tests/integration/test_serving.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from repo_daemon.serving import nginx, policy, rsyncd

ROOT = Path("/srv/rollout/repo")


# --------------------------------------------------------------------------- nginx


def test_nginx_server_block_serves_the_trees_and_follows_the_area_symlinks() -> None:
    conf = nginx.render_nginx(ROOT, listen="0.0.0.0:80", server_name="repo.example.org")
    assert conf.lstrip().startswith("#")
    assert "server {" in conf
    for line in (
        "listen 0.0.0.0:80;",
        "server_name repo.example.org;",
        "root $rollout_root;",
        "set $rollout_root /srv/rollout/repo;",
        "disable_symlinks on from=$rollout_from;",
        "open_file_cache off;",
        "autoindex on;",
        "sendfile on;",
        "index index.html;",
    ):
        assert f"    {line}\n" in conf, line
    assert "daemon" not in conf  # the caller's -g 'daemon off;' would clash


def test_nginx_refuses_the_bridges_state_and_hidden_paths() -> None:
    conf = nginx.render_nginx(ROOT)
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
    types = re.search(r"types \{\n(.*?)\n\s*\}", nginx.render_nginx(ROOT), re.S)
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
    ("/production/7/updates/", policy.NO_CACHE),
    ("/production/7/updates/index.json", policy.NO_CACHE),
    ("/production/7/updates/index.html", policy.NO_CACHE),
    ("/production/7/updates/.rollout-serial", policy.NO_CACHE),
    ("/production/7/updates/.rollout-manifest.json", policy.NO_CACHE),
    ("/production/7/updates/rpms/repodata/repomd.xml", policy.NO_CACHE),
    ("/production/7/updates/rpms/repodata/repomd.xml.asc", policy.NO_CACHE),
    ("/production/7/updates/debs/Release", policy.NO_CACHE),
    ("/production/7/updates/debs/InRelease", policy.NO_CACHE),
    ("/production/7/updates/debs/Release.gpg", policy.NO_CACHE),
    ("/production/7/updates/debs/Packages", policy.NO_CACHE),
    ("/production/7/updates/debs/Packages.gz", policy.NO_CACHE),
    ("/production/7/updates/rollout.repo", policy.NO_CACHE),
    ("/production/7/updates/rollout.sources", policy.NO_CACHE),
    ("/production/7/updates/rollout-archive-keyring.asc", policy.NO_CACHE),
    ("/production/7/updates/RPM-GPG-KEY-rollout", policy.NO_CACHE),
    ("/production/7/updates/debs/by-hash/SHA256/" + "a" * 64, policy.IMMUTABLE),
    (f"/production/7/updates/rpms/repodata/{'b' * 64}-primary.xml.gz", policy.IMMUTABLE),
    ("/production/7/updates/rpms/noarch/tool-1.0-1.noarch.rpm", policy.PACKAGE),
    ("/production/7/updates/debs/tool_1.0-1_all.deb", policy.PACKAGE),
    ("/production/7/updates/docs/Release-notes.txt", policy.PACKAGE),
]


@pytest.mark.parametrize(("path", "expected"), CACHE_CASES, ids=[c[0][22:] for c in CACHE_CASES])
def test_cache_control_is_the_same_in_nginx_and_the_embedded_server(
    path: str, expected: str
) -> None:
    assert policy.cache_control(path) == expected
    assert _nginx_cache_control(nginx.render_nginx(ROOT), path) == expected


@pytest.mark.parametrize(
    "path", ["/.pool/ab/" + "a" * 64, "/.locks/.global.lock", "/.snapshots/x/000001-x/index.json"]
)
def test_nginx_answers_404_for_the_bridges_state(path: str) -> None:
    assert _nginx_cache_control(nginx.render_nginx(ROOT), path) is None


def test_nginx_conf_keeps_everything_below_its_workdir(tmp_path: Path) -> None:
    conf = nginx.render_nginx_conf(ROOT, workdir=tmp_path, listen="127.0.0.1:9999")
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
    assert "user www-data;" in nginx.render_nginx_conf(ROOT, workdir=tmp_path, user="www-data")


@pytest.mark.parametrize(
    "root", [Path("relative/repo"), Path("/srv/repo;evil"), Path("/srv/$host"), Path("/srv/a b")]
)
def test_unsafe_roots_are_refused(root: Path) -> None:
    with pytest.raises(ValueError, match="repository root"):
        nginx.render_nginx(root)
    with pytest.raises(ValueError, match="repository root"):
        rsyncd.render_rsyncd(root, port=873)


def test_unsafe_listen_and_names_are_refused() -> None:
    with pytest.raises(ValueError, match="listen"):
        nginx.render_nginx(ROOT, listen="80; include /etc/passwd")
    with pytest.raises(ValueError, match="server name"):
        nginx.render_nginx(ROOT, server_name="a;b")


# --------------------------------------------------------------------------- rsyncd


def test_protected_areas_ask_the_access_check_first() -> None:
    conf = nginx.render_nginx(ROOT, access_check="127.0.0.1:9000")
    for kind in ("unverified", "stagerollout"):
        block = conf.split(f"location ^~ /{kind}/ {{", 1)[1]
        assert block.lstrip().startswith(f"auth_request /.rollout-access/{kind};")
        # the tree's own rules nested inside (a ^~ prefix hides the outer regexes)
        assert 'location ~ "/\\." {' in block.split("location = ", 1)[0]
        check = conf.split(f"location = /.rollout-access/{kind} {{", 1)[1].split("}", 1)[0]
        assert "internal;" in check and "proxy_pass http://127.0.0.1:9000/access-check;" in check
        assert f"X-Rollout-Area {kind};" in check
        assert "X-Original-URI $request_uri;" in check
    assert "location ^~ /production/" not in conf


def test_protecting_production_protects_everything_and_nothing_needs_no_check() -> None:
    conf = nginx.render_nginx(ROOT, protected=("production", "unverified"))
    assert "\n    auth_request /.rollout-access/all;\n" in conf
    assert "location ^~ /unverified/" not in conf
    assert "auth_request" not in nginx.render_nginx(ROOT, protected=())
    with pytest.raises(ValueError, match="attic"):
        nginx.render_nginx(ROOT, protected=("attic",))
    with pytest.raises(ValueError, match="access check"):
        nginx.render_nginx(ROOT, access_check="x; include /etc/passwd")


def _from_for(conf: str, real_root: str, uri: str, real: str, live: str = "") -> str | None:
    """What the block's area checks set ``$rollout_from`` to for a request (Python's ``re``
    reads these PCRE regexes the same way): the last matching check wins, as in nginx.
    ``live`` is what the area's ``.trees/<key>/.meta`` resolves to (tree layout), else ""."""
    check = f"{real_root}|{uri}|{real}|{live}"
    found = None
    for regex, target in re.findall(
        r'if \(\$rollout_check ~ "(.*)"\) \{\n\s*set \$rollout_from (\S+);', conf
    ):
        match = re.search(regex, check)
        if match:
            found = target.replace("$rollout_full", f"{ROOT}{uri}".rstrip("/"))
            for n, value in reversed(list(enumerate(match.groups(), start=1))):
                found = found.replace(f"${n}", value or "")
    return found


@pytest.mark.parametrize(
    ("uri", "real", "expected"),
    [
        (
            "/production/7/updates/rpms/a.rpm",
            ".snapshots/production~7~updates/000003-20261124T101500Z/rpms/a.rpm",
            "production/7/updates",
        ),
        (
            "/production/7/updates/",
            ".snapshots/production~7~updates/000003-20261124T101500Z",
            "production/7/updates",
        ),
        (
            "/stagerollout/7/.rollout-serial",
            ".snapshots/stagerollout~7/000001-20261124T101500Z/.rollout-serial",
            "stagerollout/7",
        ),
        ("/CAs/x", ".snapshots/CAs/000001-20261124T101500Z/x", "CAs"),
        (
            "/a/b/c/d/e/f/g/h/x",
            ".snapshots/a~b~c~d~e~f~g~h/000001-20261124T101500Z/x",
            "a/b/c/d/e/f/g/h",
        ),
        ("/p/7/u/a|b", ".snapshots/p~7~u/000001-20261124T101500Z/a|b", "p/7/u"),
        # Through a link planted in the snapshot, beside an area, or out of the tree: none.
        ("/production/7/updates/rpms/pool/ab/c", ".pool/ab/c", None),
        (
            "/production/7/updates/rpms/other/x",
            ".snapshots/unverified~D~1.0.0/000001-20261124T101500Z/x",
            None,
        ),
        (
            "/production/7/updates/rpms/same/x",
            ".snapshots/production~7~updates/000003-20261124T101500Z/rpms/x",
            None,
        ),
        ("/production/8/x", ".snapshots/unverified~D~1.0.0/000001-20261124T101500Z/x", None),
        (
            "/production/7/updates/x",
            ".snapshots/production~7~updates/.building-000004-20261124T101500Z/x",
            None,
        ),
        ("/a~b/c/x", ".snapshots/a~b~c/000001-20261124T101500Z/x", None),
        ("/production/evil/etc/passwd", "/etc/passwd", None),
        ("/a/b/c/d/e/f/g/h/i/x", ".snapshots/a~b~c~d~e~f~g~h~i/000001-20261124T101500Z/x", None),
    ],
)
def test_nginx_follows_only_an_areas_own_symlink(uri: str, real: str, expected: str | None) -> None:
    conf = nginx.render_nginx(ROOT)
    real_path = real if real.startswith("/") else f"/data/repo/{real}"
    found = _from_for(conf, "/data/repo", uri, real_path)
    assert found == (None if expected is None else f"{ROOT}/{expected}")
    assert "set $rollout_from /srv/rollout/repo;\n" in conf  # the default: no link followed


SNAP = "000002-20261206T000000Z"
LIVE = f"/data/repo/.snapshots/production~7~updates/{SNAP}"


@pytest.mark.parametrize(
    ("uri", "real", "live", "expected"),
    [
        # The payload of a tree-layout area: only the area's own link is followed.
        ("/production/7/updates/el9/a.rpm", ".trees/production~7~updates/el9/a.rpm", "",
         "production/7/updates"),
        ("/production/7/updates/", ".trees/production~7~updates", LIVE, "production/7/updates"),
        # Its metadata, in the live snapshot at exactly the URL's path: the path itself.
        ("/production/7/updates/el9/repodata/repomd.xml",
         f".snapshots/production~7~updates/{SNAP}/el9/repodata/repomd.xml", LIVE,
         "production/7/updates/el9/repodata/repomd.xml"),
        ("/production/7/updates/el9/repodata/",
         f".snapshots/production~7~updates/{SNAP}/el9/repodata", LIVE,
         "production/7/updates/el9/repodata"),
        ("/production/7/updates/.rollout-serial",
         f".snapshots/production~7~updates/{SNAP}/.rollout-serial", LIVE,
         "production/7/updates/.rollout-serial"),
        # A metadata link to another path of the snapshot: only the area's link, so the
        # metadata link itself is refused when opened (ELOOP, 403).
        ("/production/7/updates/el9/repodata/x.xml",
         f".snapshots/production~7~updates/{SNAP}/el9/repodata/repomd.xml", LIVE, None),
        # A link into a kept (not live) snapshot of the same area: the area's link only.
        ("/production/7/updates/el9/repodata/repomd.xml",
         ".snapshots/production~7~updates/000001-20261205T000000Z/el9/repodata/repomd.xml",
         LIVE, "production/7/updates"),
        # .meta pointing at another area's snapshot; another area's tree; the pool: none.
        ("/production/7/updates/index.json",
         f".snapshots/production~8~updates/{SNAP}/index.json",
         f"/data/repo/.snapshots/production~8~updates/{SNAP}", None),
        ("/production/7/updates/el9/a.rpm", ".trees/production~8~updates/el9/a.rpm", "", None),
        ("/production/7/updates/el9/a.rpm", ".pool/ab/cd", "", None),
        ("/production/7/updates/el9/a.rpm", ".trees/production~7~updates/el9/b.rpm", "", None),
    ],
)  # fmt: skip
def test_nginx_follows_a_tree_layout_areas_links_and_no_other(
    uri: str, real: str, live: str, expected: str | None
) -> None:
    conf = nginx.render_nginx(ROOT)
    found = _from_for(conf, "/data/repo", uri, f"/data/repo/{real}", live)
    assert found == (None if expected is None else f"{ROOT}/{expected}")


def test_nginx_hides_the_trees_and_their_switch() -> None:
    conf = nginx.render_nginx(ROOT)
    assert "location ^~ /.trees/ {\n        return 404;" in conf
    assert "open_file_cache off;" in conf
