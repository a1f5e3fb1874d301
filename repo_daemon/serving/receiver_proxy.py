"""The nginx configuration the product ships for putting nginx in front of the hook receiver,
where untrusted networks reach it (``rollout receiver nginx-conf``), and a whole ``nginx.conf``
around it (tests, trying things out).

nginx cuts slow and idle clients, oversized headers and bodies, and caps connections per client
address, before anything reaches the receiver; it passes on only ``POST /hooks/rt`` (whole,
buffered) and ``GET /healthz``. The numbers come from the receiver's own settings
(``model.ReceiverSettings``), so both lines of defence say the same. Pure renderers: text in,
text out, nothing read or written; the receiver's behaviour is ``bridge.intake``'s.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from pathlib import Path

from bridge.settings import model as settings_model
from repo_daemon.serving import policy

logger = logging.getLogger(__name__)

DEFAULT_LISTEN = "0.0.0.0:8443"
# bridge.intake.receiver.HOOK_PATH (not imported: it pulls in the web stack).
HOOK_PATH = "/hooks/rt"
ZONE = "rollout_receiver_per_client"
# nginx's per-client cap when the receiver's own is off (0).
DEFAULT_PER_CLIENT = 100


def upstream_address(receiver: settings_model.ReceiverSettings) -> str:
    """Where nginx reaches the receiver: its listen address, a wildcard one as loopback."""
    host = receiver.host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        policy.check_value("receiver host", host, policy.SAFE_WORD)
        return f"{host}:{receiver.port}"
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    return f"[{address}]:{receiver.port}" if address.version == 6 else f"{address}:{receiver.port}"


def _seconds(value: float) -> str:
    return f"{max(1, math.ceil(value))}s"


def _file(what: str, path: Path) -> str:
    if not path.is_absolute():
        raise ValueError(f"{what} {str(path)!r} must be absolute")
    return policy.check_value(what, str(path), policy.SAFE_PATH)


def render_receiver_proxy(
    receiver: settings_model.ReceiverSettings,
    *,
    listen: str = DEFAULT_LISTEN,
    server_name: str = "_",
    per_client: int | None = None,
    tls_certificate: Path | None = None,
    tls_key: Path | None = None,
) -> str:
    """The ``limit_conn_zone``, ``upstream`` and ``server { … }`` to include in nginx's
    ``http { }`` (e.g. as ``/etc/nginx/conf.d/rollout-receiver.conf``).

    Timeouts, the header and body caps come from ``receiver`` (``ROLLOUT_RECEIVER_*``,
    ``ROLLOUT_MAX_HOOK_BYTES``); ``per_client`` (default: the receiver's per-client cap) is the
    number of requests one address may have in nginx at once, past which it answers 429. With
    ``tls_certificate`` and ``tls_key`` (absolute PEM files, both or neither) it listens with
    TLS. Raises ``ValueError`` for a value unsafe in nginx.conf.
    """
    limits = receiver.limits
    policy.check_value("listen address", listen, policy.SAFE_LISTEN)
    policy.check_value("server name", server_name, policy.SAFE_NAMES)
    if (tls_certificate is None) != (tls_key is None):
        raise ValueError("give both a TLS certificate and its key, or neither")
    cap = per_client if per_client is not None else limits.max_connections_per_client
    cap = cap or DEFAULT_PER_CLIENT
    if cap < 1:
        raise ValueError(f"per-client connections must be at least 1, got {cap}")
    # nginx: the request line must fit one buffer, each header line one, all of them `count`.
    buffer_kib = max(1, min(8, limits.max_header_bytes // 2048))
    count = max(2, limits.max_header_bytes // (buffer_kib * 1024))
    tls = ""
    if tls_certificate is not None and tls_key is not None:
        tls = (
            f"    ssl_certificate {_file('TLS certificate', tls_certificate)};\n"
            f"    ssl_certificate_key {_file('TLS key', tls_key)};\n"
            "    ssl_protocols TLSv1.2 TLSv1.3;\n"
            "    ssl_session_cache shared:rollout_receiver_tls:1m;\n"
        )
    return f"""\
# Rollout bridge: nginx in front of the hook receiver (rollout receiver nginx-conf).
# Include it in nginx's http {{ }}. The receiver should list this proxy's address in
# ROLLOUT_RECEIVER_UNCAPPED_CLIENTS: every connection it gets comes from here.
limit_conn_zone $binary_remote_addr zone={ZONE}:10m;

upstream rollout_receiver {{
    server {upstream_address(receiver)};
    keepalive 16;
}}

server {{
    listen {listen}{" ssl" if tls else ""};
    server_name {server_name};
{tls}    server_tokens off;

    # Slow and idle clients are cut here; the receiver only ever sees whole requests.
    client_header_timeout {_seconds(limits.header_timeout)};
    client_body_timeout {_seconds(limits.body_timeout)};
    send_timeout {_seconds(limits.body_timeout)};
    keepalive_timeout {_seconds(limits.header_timeout)};
    reset_timedout_connection on;
    # Request line and headers: about {limits.max_header_bytes} bytes, no more.
    client_header_buffer_size 1k;
    large_client_header_buffers {count} {buffer_kib}k;
    client_max_body_size {receiver.max_body_bytes};
    client_body_buffer_size {receiver.max_body_bytes};
    # Requests one client address may have here at once.
    limit_conn {ZONE} {cap};
    limit_conn_status 429;
    limit_conn_log_level warn;

    location = {HOOK_PATH} {{
        limit_except POST {{
            deny all;
        }}
        proxy_pass http://rollout_receiver;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        # The receiver trusts this header from the proxy's address only (uvicorn's
        # forwarded_allow_ips, 127.0.0.1 by default): set, never passed on from the client.
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_request_buffering on;
        proxy_connect_timeout 5s;
        proxy_send_timeout 10s;
        proxy_read_timeout 30s;
    }}
    location = /healthz {{
        limit_except GET {{
            deny all;
        }}
        proxy_pass http://rollout_receiver;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }}
    # Nothing else of the receiver is for the outside (/readyz, /openapi.json: ask it directly).
    location / {{
        return 404;
    }}
}}
"""


def render_receiver_proxy_conf(
    receiver: settings_model.ReceiverSettings,
    *,
    workdir: Path,
    listen: str = DEFAULT_LISTEN,
    per_client: int | None = None,
    tls_certificate: Path | None = None,
    tls_key: Path | None = None,
    user: str | None = None,
) -> str:
    """A complete, minimal ``nginx.conf`` around ``render_receiver_proxy``: pid file, logs and
    temporary directories below ``workdir`` (absolute), so it runs without touching /etc or
    /var: ``nginx -c CONF -p WORKDIR -e WORKDIR/error.log -g 'daemon off;'``. ``user`` is the
    account of the worker processes when nginx starts as root."""
    work = policy.config_root(workdir)
    proxy = render_receiver_proxy(
        receiver,
        listen=listen,
        per_client=per_client,
        tls_certificate=tls_certificate,
        tls_key=tls_key,
    )
    user_line = f"user {policy.check_value('user', user, policy.SAFE_WORD)};\n" if user else ""
    indented = "\n".join(("    " + line) if line else "" for line in proxy.splitlines())
    return f"""\
# Rollout bridge: a standalone nginx in front of the hook receiver.
{user_line}worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;

worker_rlimit_nofile 8192;

events {{
    # Each proxied request takes two connections; idle attackers take one each until cut.
    worker_connections 4096;
}}

http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;

{indented}
}}
"""
