"""The nginx configuration the product ships for serving the trees: a server block
(``rollout repo nginx-conf``), over HTTPS when given a certificate and key (with an optional
plain-HTTP block that only redirects), and a whole ``nginx.conf`` around it (tests, trying
things out).

Pure renderers: text in, text out, nothing read or written. What is served, with which types
and caching, is ``policy``'s; this module only says it in nginx's words.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from repo_daemon.serving import policy

logger = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:8751"
# Where ``rollout repo access-check`` listens, and the kinds of area it guards by default
# (``AccessSettings``; docs/access.md).
DEFAULT_ACCESS_CHECK = "127.0.0.1:8752"
DEFAULT_PROTECTED = ("unverified", "stagerollout")
_KINDS = ("unverified", "stagerollout", "production")
_CHECK = "/.rollout-access"  # nginx's internal locations of the check (a hidden path: no area)
# The access check's subrequest runs the server's rewrite rules too, and shares the request's
# variables: it must not reset the symlink rules' $rollout_from before the file is opened.
_SUBREQUEST_FIRST = (
    "    # The access check's subrequest shares this request's variables: leave them be.\n"
    '    if ($uri ~ "^/\\.rollout-access/") {\n'
    "        break;\n"
    "    }\n"
)


def render_nginx(
    root: Path,
    *,
    listen: str = DEFAULT_LISTEN,
    server_name: str = "_",
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    redirect_listen: str | None = None,
    access_check: str = DEFAULT_ACCESS_CHECK,
    protected: Sequence[str] = DEFAULT_PROTECTED,
) -> str:
    """An nginx ``server { … }`` block serving the trees below ``root`` (absolute).

    Areas are symlinks into ``.snapshots/``: nginx resolves them on every request (no
    ``open_file_cache``: it would keep serving a retired snapshot's metadata), and follows
    no other symlink (``_symlink_rules``). Directory
    listings are on; an area's top shows its ``index.html``. ``/.pool/``, ``/.locks/``,
    ``/.snapshots/`` and every other hidden path answer 404, except an area's
    ``.rollout-manifest.json`` and ``.rollout-serial``. Only GET and HEAD.

    With ``tls_cert`` and ``tls_key`` (absolute paths, both or neither) the block listens with
    TLS on ``listen``; ``redirect_listen`` then adds a plain-HTTP ``server`` that serves nothing
    and answers every request with a permanent redirect to the same URL over HTTPS
    (``tls_server``). Raises ``ValueError`` for a root, path, listen address or name unsafe in
    nginx.conf, or a TLS combination that does not make sense.

    The kinds of area in ``protected`` (``unverified``, ``stagerollout``; ``production``
    protects everything) are served only after the access check at ``access_check``
    (``host:port`` of ``rollout repo access-check``) allowed the request (``auth_request``,
    docs/access.md). Raises ``ValueError`` for a root, listen address, name or check address
    unsafe in nginx.conf.
    """
    base = policy.config_root(root)
    policy.check_value("listen address", listen, policy.SAFE_LISTEN)
    policy.check_value("server name", server_name, policy.SAFE_NAMES)
    tls, redirect = tls_server(listen, server_name, tls_cert, tls_key, redirect_listen)
    suffixes = policy.CONTENT_TYPES
    types = "\n".join(
        f"        {kind} {' '.join(sorted(s for s, k in suffixes.items() if k == kind))};"
        for kind in sorted(set(suffixes.values()))
    )

    def headers(cache: str) -> str:
        # add_header in a location drops the server's: each location says all of its own.
        return (
            f'        add_header Cache-Control "{cache}" always;\n'
            "        add_header X-Content-Type-Options nosniff always;"
        )

    locations = f"""\
    # The two hidden files of an area that mirrors read (no other hidden component on the way).
    location ~ "^(/[^./][^/]*)+/\\.rollout-(manifest\\.json|serial)$" {{
{headers(policy.NO_CACHE)}
        default_type text/plain;
        # Always the whole (small) file: nginx's ETag and Last-Modified have one-second
        # granularity, and a publication in the same second swaps in a same-sized serial.
        etag off;
        if_modified_since off;
    }}
    # Any other hidden path (.building-…, .<area>.swap-…, …).
    location ~ "/\\." {{
        return 404;
    }}
    # Content-addressed: by-hash/ indexes, checksum-named repodata files.
    location ~ "(/by-hash/|/repodata/[0-9a-f]{{64}}-[^/]*$)" {{
{headers(policy.IMMUTABLE)}
    }}
    # apt's indexes without a suffix: text.
    location ~ "/((In)?Release|Packages)$" {{
{headers(policy.NO_CACHE)}
        default_type text/plain;
    }}
    # Metadata, indexes, client files and directory listings: revalidate every time.
    location ~ "(/|/repomd\\.xml(\\.asc|\\.key)?|/Release\\.gpg|/Packages\\.(gz|xz)|/index\\.(json|html)|/RPM-GPG-KEY-[^/]*|\\.(repo|sources|list|asc))$" {{
{headers(policy.NO_CACHE)}
    }}
    location / {{
{headers(policy.PACKAGE)}
    }}
"""  # noqa: E501
    gate, locations = _access_locations(access_check, protected, locations)
    return f"""\
# Rollout bridge: the package trees below {base}, read only (rollout repo nginx-conf).
server {{
    listen {listen}{" ssl" if tls else ""};
    server_name {server_name};
{tls}    root $rollout_root;

    # Areas are symlinks to immutable snapshots: resolved on every request; no other symlink
    # is followed (the rules below).
    open_file_cache off;
    sendfile on;
    tcp_nopush on;
    etag on;
    autoindex on;
    autoindex_exact_size on;
    index index.html;
    absolute_redirect off;
    server_tokens off;
    charset utf-8;
    charset_types text/plain application/json;  # and text/html, always
    default_type application/octet-stream;
    types {{
{types}
    }}

    if ($request_method !~ ^(GET|HEAD)$) {{
        return 405;
    }}

{_SUBREQUEST_FIRST if gate else ""}{_symlink_rules(base)}

    # The bridge's own state: never served.
    location ^~ /.pool/ {{
        return 404;
    }}
    location ^~ /.locks/ {{
        return 404;
    }}
    # Snapshots and trees are reached through their areas; mirrors copy them with rsync.
    location ^~ /.snapshots/ {{
        return 404;
    }}
    location ^~ /.trees/ {{
        return 404;
    }}
{gate}{locations}}}
{redirect}"""


def tls_server(
    listen: str,
    server_name: str,
    cert: Path | None,
    key: Path | None,
    redirect_listen: str | None,
) -> tuple[str, str]:
    """The TLS lines of the server block (empty without TLS) and the redirecting plain-HTTP
    server block (empty without ``redirect_listen``).

    TLS 1.2 and 1.3 only (apt, dnf and every browser of the last decade speak them), nginx's
    default ciphers, a shared session cache. The redirect goes to ``server_name`` when it is
    one plain name, else to the request's ``$host``, on the HTTPS port of ``listen`` (left out
    when it is 443). Raises ``ValueError`` when only one of ``cert`` and ``key`` is given, when
    a path is relative or unsafe, or for a redirect without TLS.
    """
    if (cert is None) != (key is None):
        raise ValueError("TLS needs both a certificate and its key")
    if cert is None or key is None:
        if redirect_listen is not None:
            raise ValueError("an HTTP redirect needs TLS: give a certificate and its key")
        return "", ""
    for what, path in (("TLS certificate", cert), ("TLS key", key)):
        if not path.is_absolute():
            raise ValueError(f"{what} {str(path)!r} must be absolute")
        policy.check_value(what, str(path), policy.SAFE_PATH)
    tls = (
        f"    ssl_certificate {cert};\n"
        f"    ssl_certificate_key {key};\n"
        "    ssl_protocols TLSv1.2 TLSv1.3;\n"
        "    ssl_session_cache shared:rollout_tls:10m;\n"
        "    ssl_session_timeout 1d;\n"
        "    ssl_session_tickets off;\n"
    )
    if redirect_listen is None:
        return tls, ""
    policy.check_value("redirect listen address", redirect_listen, policy.SAFE_LISTEN)
    names = server_name.split()
    host = names[0] if len(names) == 1 and names[0] != "_" and "*" not in names[0] else "$host"
    port = listen.rsplit(":", 1)[-1] if not listen.endswith("]") else ""
    port = port if port.isdigit() else "443"
    target = f"https://{host}{'' if port == '443' else ':' + port}$request_uri"
    redirect = f"""\
# Plain HTTP only redirects to HTTPS: nothing is served without TLS.
server {{
    listen {redirect_listen};
    server_name {server_name};
    server_tokens off;
    return 301 {target};
}}
"""
    return tls, redirect


def _access_locations(check: str, protected: Sequence[str], locations: str) -> tuple[str, str]:
    """(the access check's locations, the tree's ``locations`` as served): each protected
    kind of area is a prefix location that asks the check, with the tree's locations nested
    (a ``^~`` prefix hides the regex locations around it); ``production`` protects all."""
    unknown = sorted(set(protected) - set(_KINDS))
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a kind of area ({', '.join(_KINDS)})")
    kinds = [kind for kind in _KINDS if kind in protected]
    if not kinds:
        return "", locations
    policy.check_value("access check address", check, policy.SAFE_LISTEN)

    def internal(name: str, kind: str | None) -> str:
        # The client's Authorization and the URI as sent; the check normalises it as nginx
        # does and refuses a path that lands in another kind of area than this location's.
        area = f"        proxy_set_header X-Rollout-Area {kind};\n" if kind else ""
        return (
            f"    location = {_CHECK}/{name} {{\n"
            "        internal;\n"
            "        auth_request off;\n"
            f"        proxy_pass http://{check}/access-check;\n"
            "        proxy_pass_request_body off;\n"
            '        proxy_set_header Content-Length "";\n'
            "        proxy_set_header X-Original-URI $request_uri;\n"
            f"{area}"
            "        proxy_set_header Authorization $http_authorization;\n"
            "    }\n"
        )

    gate = (
        "    # Areas only some people may read (docs/access.md): nginx asks the access check\n"
        "    # (rollout repo access-check) first and passes its 401 and WWW-Authenticate on.\n"
    )
    if "production" in kinds:
        return gate + internal("all", None), f"    auth_request {_CHECK}/all;\n" + locations
    for kind in kinds:
        # A nested prefix location must lie inside its parent's prefix.
        inner = locations.replace("    location / {", f"    location /{kind}/ {{")
        nested = "".join(
            ("    " + line) if line.strip() else line for line in inner.splitlines(True)
        )
        gate += internal(kind, kind)
        gate += (
            f"    location ^~ /{kind}/ {{\n        auth_request {_CHECK}/{kind};\n{nested}    }}\n"
        )
    return gate, locations


# The deepest area (in path components) whose symlink nginx follows: 8, the most nginx's
# $1…$9 can name (one is the root). unverified/<s>/<v> and production/<major>/updates are 3;
# a production path set to el/7 gives el/7/updates, 3. A deeper area answers 403.
MAX_AREA_DEPTH = 8
_SNAPSHOT_NAME = "[0-9]{6,}-[0-9]{8}T[0-9]{6}Z"  # names.SNAPSHOT_NAME: complete snapshots only


def _area_check(base: str, depth: int) -> str:
    """An ``if`` that sets ``$rollout_from`` to the area of ``depth`` components at the start
    of the URL when the requested path resolves into one of that area's own complete
    snapshots, or into its payload tree ``.trees/<key>``, at exactly the rest of the URL.
    ``$rollout_check`` is ``<real root>|<URI>|<real path>|<real live metadata>``; in the
    regex, ``\\1`` is the real root, ``\\2``… the area's components, the last group the rest
    (always set: PCRE never matches a back-reference to an unset group)."""
    parts = "/".join(["([^/|~]+)"] * depth)
    key = "~".join(f"\\{n}" for n in range(2, depth + 2))
    rest = f"\\{depth + 2}"
    into = f"(?:\\.snapshots/{key}/{_SNAPSHOT_NAME}|\\.trees/{key})"
    regex = f"^([^|]*)\\|/{parts}((?:/.*?)?)/?\\|\\1/{into}{rest}\\|[^|]*$"
    area = "/".join(f"${n}" for n in range(2, depth + 2))
    return f"""\
    if ($rollout_check ~ "{regex}") {{
        set $rollout_from {base}/{area};
    }}"""


def _metadata_check(depth: int) -> str:
    """An ``if`` that sets ``$rollout_from`` to the requested path itself when it resolves to
    the LIVE metadata snapshot of the tree-layout area of ``depth`` components (the one
    ``.trees/<key>/.meta`` resolves to, the fourth field of ``$rollout_check``), at exactly
    the rest of the URL."""
    parts = "/".join(["([^/|~]+)"] * depth)
    key = "~".join(f"\\{n}" for n in range(2, depth + 2))
    rest = f"\\{depth + 2}"
    snap = f"\\{depth + 3}"
    regex = (
        f"^([^|]*)\\|/{parts}((?:/.*?)?)/?\\|"
        f"\\1/\\.snapshots/{key}/({_SNAPSHOT_NAME}){rest}\\|\\1/\\.snapshots/{key}/{snap}$"
    )
    return f"""\
    if ($rollout_check ~ "{regex}") {{
        set $rollout_from $rollout_full;
    }}"""


def _symlink_rules(base: str) -> str:
    """Server-level rules under which nginx follows the bridge's area symlinks (and, in the
    tree layout, its metadata links) and no other.

    Every file and directory is opened with ``disable_symlinks on from=$rollout_from``: no
    component after ``from`` may be a symlink (``from`` equal to the whole path: none is
    checked). ``from`` is the root, unless the requested path resolves (``realpath``) to

    - ``.snapshots/<key>/<snapshot>/<rest>`` (snapshots layout) or ``.trees/<key>/<rest>``
      (the payload of a tree-layout area), ``<key>`` the URL's first components joined by
      ``~`` and ``<rest>`` exactly the rest of the URL: then it is that area's path, so the
      area's own symlink is followed and nothing after it is;
    - ``.snapshots/<key>/<live>/<rest>`` where ``<live>`` is what ``.trees/<key>/.meta``
      resolves to (the metadata of a tree-layout area): then it is the requested path itself.
      The chain is area -> ``.trees/<key>``, a metadata link somewhere in ``<rest>`` ->
      ``../…/.meta/<prefix>``, ``.meta`` -> the snapshot; the metadata link's place in
      ``<rest>`` varies (``index.json``, ``el9/x86_64/repodata``, ``deb/by-hash``), and
      ``from`` can only name a prefix of the path, so the open follows every link and the
      check is the realpath just made (equal to the live snapshot at exactly the URL's path:
      a planted link anywhere on the way changes it).

    A directory's ``index.html`` is opened by nginx's index module only to redirect to it
    (and the redirect is checked again): when it exists, ``from`` is that file, so a
    metadata link ``index.html -> .meta/index.html`` is found. ``root`` is ``$rollout_root``,
    the root itself except for a moment, when it is a path whose ``$realpath_root`` is wanted.
    """
    checks = "\n".join(_area_check(base, depth) for depth in range(1, MAX_AREA_DEPTH + 1))
    live = "\n".join(_metadata_check(depth) for depth in range(1, MAX_AREA_DEPTH + 1))
    return f"""\
    # Symlinks: an area's own symlink into one of its complete snapshots or its payload tree,
    # and the tree's metadata links into its live metadata snapshot, are followed; any other
    # (planted in a snapshot or a tree, beside an area, into .pool/ or out of the root) is not.
    disable_symlinks on from=$rollout_from;
    set $rollout_root {base};
    set $rollout_base $realpath_root;
    set $rollout_real "";
    set $rollout_live "";
    set $rollout_path {base}$uri;
    set $rollout_full $rollout_path;
    if ($rollout_path ~ "^(.*[^/])/+$") {{
        set $rollout_full $1;
    }}
    # nginx fails the request when realpath() fails: test first, following every link.
    set $rollout_from $rollout_path;
    if (-e $rollout_path) {{
        set $rollout_root $rollout_path;
        set $rollout_real $realpath_root;
    }}
    # Into a metadata snapshot: which one is its area's live metadata (tree layout)?
    set $rollout_meta {base}/.rollout-no-such-path;
    set $rollout_check "$rollout_base|$rollout_real";
    if ($rollout_check ~ "^([^|]*)\\|\\1/\\.snapshots/([^/|]+)/") {{
        set $rollout_meta $1/.trees/$2/.meta;
    }}
    set $rollout_from $rollout_meta;
    if (-e $rollout_meta) {{
        set $rollout_root $rollout_meta;
        set $rollout_live $realpath_root;
    }}
    set $rollout_root {base};
    set $rollout_from {base};
    set $rollout_check "$rollout_base|$uri|$rollout_real|$rollout_live";
{checks}
{live}
    # A directory's index.html: opened only to redirect to it, checked again then.
    set $rollout_keep $rollout_from;
    set $rollout_index $rollout_from;
    if ($uri ~ "/$") {{
        set $rollout_index ${{rollout_path}}index.html;
    }}
    set $rollout_from $rollout_index;
    if (-e $rollout_index) {{
        set $rollout_keep $rollout_index;
    }}
    set $rollout_from $rollout_keep;"""


def render_nginx_conf(
    root: Path,
    *,
    workdir: Path,
    listen: str = DEFAULT_LISTEN,
    server_name: str = "_",
    user: str | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    redirect_listen: str | None = None,
    access_check: str = DEFAULT_ACCESS_CHECK,
    protected: Sequence[str] = DEFAULT_PROTECTED,
) -> str:
    """A complete, minimal ``nginx.conf`` around ``render_nginx``: pid file, logs and temporary
    directories below ``workdir`` (absolute), so it runs without touching /etc or /var:
    ``nginx -c CONF -p WORKDIR -e WORKDIR/error.log -g 'daemon off;'``. ``user`` is the
    account of the worker processes when nginx starts as root (nginx ignores it otherwise).
    ``tls_cert``, ``tls_key``, ``redirect_listen``, ``access_check`` and ``protected`` are
    ``render_nginx``'s.
    """
    work = policy.config_root(workdir)
    server = render_nginx(
        root,
        listen=listen,
        server_name=server_name,
        tls_cert=tls_cert,
        tls_key=tls_key,
        redirect_listen=redirect_listen,
        access_check=access_check,
        protected=protected,
    )
    user_line = f"user {policy.check_value('user', user, policy.SAFE_WORD)};\n" if user else ""
    indented = "\n".join(("    " + line) if line else "" for line in server.splitlines())
    return f"""\
# Rollout bridge: a standalone nginx for the package trees.
{user_line}worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;

worker_rlimit_nofile 8192;

events {{
    # Mirrors and sites fetch at once after a release: 1,000 concurrent downloads and more.
    worker_connections 4096;
}}

http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    keepalive_timeout 30;

{indented}
}}
"""
