"""Loading settings: ``ROLLOUT_*`` variables and an optional TOML file, checked, into a frozen
``model.Settings``.

Every problem is collected and reported together as one ``ConfigError``. Secrets are held in
``secrets.Secret`` so they never show in ``repr``, logs or error messages. No module-level
singleton: build a ``Settings`` and pass it down. It must not connect to anything.

The shared value readers are in ``readers``; the sections with most rules have modules of
their own (``access``, ``early_adopters``, ``sync_hosts``, ``event_retention``).
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bridge import errors, secrets
from bridge.settings import (
    access,
    early_adopters,
    event_retention,
    major_releases,
    model,
    readers,
    sync_hosts,
    webhooks,
)

logger = logging.getLogger(__name__)

ENV_PREFIX = "ROLLOUT_"


def _tracker_from(raw: Mapping[str, Any], problems: list[str]) -> model.TrackerSettings:
    url = str(raw.get("rt_url") or "")
    if not url:
        problems.append("rt_url is not set (ROLLOUT_RT_URL), e.g. https://rt.example.org/")
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"rt_url: {secrets.redact_url(url)!r} is not an http(s) URL")
        if parts.password:
            problems.append("rt_url must not contain a password; use ROLLOUT_RT_PASSWORD(_FILE)")
    token = readers.read_secret("rt_token", raw, problems)
    password = readers.read_secret("rt_password", raw, problems)
    user = str(raw["rt_user"]) if raw.get("rt_user") else None
    if token is None and (user is None or password is None):
        problems.append(
            "no RT credentials: set ROLLOUT_RT_TOKEN(_FILE), or ROLLOUT_RT_USER and "
            "ROLLOUT_RT_PASSWORD(_FILE)"
        )
    retries = readers.number("rt_retries", raw, 3, problems, allow_zero=True)
    verify = str(raw.get("rt_verify_tls", "true")).lower() not in ("0", "false", "no")
    return model.TrackerSettings(
        url=secrets.redact_url(url),
        token=token,
        user=user,
        password=password,
        timeout=readers.number("rt_timeout", raw, 20.0, problems),
        retries=int(retries),
        backoff=readers.number("rt_backoff", raw, 0.5, problems),
        verify_tls=verify,
    )


# Settings that are gone, and what to do instead: said once at start-up, never an error, so an
# old environment keeps starting.
REMOVED: Mapping[str, str] = {
    "processor": "the daemon always runs the release workflow (the processor plug-in was "
    "removed; tests use the in-memory fakes of bridge.testing)",
}


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    require_tracker: bool = True,
) -> model.Settings:
    """Build ``Settings`` from a TOML file, then ``ROLLOUT_*`` variables, then ``overrides``.

    Later sources win. Keys are the variable names without the prefix, in lower case
    (``ROLLOUT_RT_URL`` is ``rt_url``). Raises ``ConfigError`` listing every problem. With
    ``require_tracker=False`` (commands that never call RT) missing RT settings are no problem.
    """
    env = os.environ if env is None else env
    problems: list[str] = []
    tracker_problems: list[str] = []
    raw: dict[str, Any] = {}
    path = config_file or (Path(env["ROLLOUT_CONFIG"]) if env.get("ROLLOUT_CONFIG") else None)
    if path is not None:
        try:
            raw.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except OSError as exc:
            problems.append(f"config file {path}: cannot read ({exc.strerror})")
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"config file {path}: not valid TOML ({exc})")
    raw.update(
        {k[len(ENV_PREFIX) :].lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    )
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    for key in sorted(REMOVED.keys() & raw.keys()):
        logger.warning("%s%s is no longer read: %s", ENV_PREFIX, key.upper(), REMOVED[key])

    tracker = _tracker_from(raw, tracker_problems)
    if require_tracker:
        problems.extend(tracker_problems)
    queue = str(raw.get("queue") or model.DEFAULT_QUEUE)
    if not queue.strip() or len(queue) > 200:
        problems.append(f"queue: {queue!r} is not a usable queue name")
    hook_secret = readers.read_secret("hook_secret", raw, problems)
    if hook_secret is not None:
        problems.extend(secrets.hook_secret_problems(hook_secret))
    data_dir = Path(str(raw.get("data_dir") or ".rollout"))
    database_url = readers.read_secret("database_url", raw, problems)
    if database_url is not None and not database_url.reveal().startswith(
        ("sqlite:", "postgresql:", "postgresql+psycopg:")
    ):
        problems.append("database_url: use sqlite:///PATH or postgresql://USER@HOST/DB")
    port = readers.number("listen_port", raw, 8750, problems)
    if not 0 < port < 65536 or port != int(port):
        problems.append(f"listen_port: {raw.get('listen_port')!r} is not a TCP port")
    receiver = model.ReceiverSettings(
        host=str(raw.get("listen_host") or "127.0.0.1"),
        port=int(port),
        hook_secret=hook_secret,
        hook_tolerance=readers.number("hook_tolerance", raw, 300.0, problems),
        max_body_bytes=int(readers.number("max_hook_bytes", raw, 65536, problems)),
        limits=access.intake_limits_from(raw, problems),
    )
    daemon = model.DaemonSettings(
        worker_name=str(raw.get("worker_name") or ""),
        drain_interval=readers.number("drain_interval", raw, 1.0, problems),
        reconcile_interval=readers.number("reconcile_interval", raw, 60.0, problems),
        lease_seconds=readers.number("lease_seconds", raw, 300.0, problems),
        retry_base_delay=readers.number("retry_base_delay", raw, 5.0, problems),
        retry_max_attempts=int(readers.number("retry_max_attempts", raw, 8, problems)),
        housekeeping_interval=readers.number("housekeeping_interval", raw, 6 * 3600.0, problems),
        refusal_retention_days=readers.number("refusal_retention_days", raw, 30.0, problems),
        event_retention=event_retention.read(raw.get("event_retention"), problems),
        event_export_dir=Path(str(raw.get("event_export_dir") or data_dir / "event-exports")),
        rt_bridge_user=str(raw["rt_bridge_user"]) if raw.get("rt_bridge_user") else None,
        workers=int(readers.number("daemon_workers", raw, 4, problems)),
        metrics_host=str(raw.get("daemon_metrics_host") or "127.0.0.1"),
        metrics_port=_port("daemon_metrics_port", raw, 0, problems),
    )
    registry = _major_releases_from(raw, problems)
    workflow = _workflow_from(raw, registry, problems)
    repository = _repository_from(raw, data_dir, registry, problems)
    access_settings = access.access_from(raw, workflow, problems)
    webhook_settings = webhooks.webhooks_from(raw, tuple(workflow.roles), problems)
    if problems:
        raise errors.ConfigError(problems)
    return model.Settings(
        tracker=tracker,
        queue=queue,
        data_dir=data_dir,
        database_url=database_url,
        receiver=receiver,
        daemon=daemon,
        workflow=workflow,
        repository=repository,
        access=access_settings,
        webhooks=webhook_settings,
    )


def _port(key: str, raw: Mapping[str, Any], default: int, problems: list[str]) -> int:
    """A TCP port setting; 0 (off) allowed."""
    port = readers.number(key, raw, default, problems, allow_zero=True)
    if not 0 <= port < 65536 or port != int(port):
        problems.append(f"{key}: {raw.get(key)!r} is not a TCP port (0: off)")
        return default
    return int(port)


def _major_releases_from(raw: Mapping[str, Any], problems: list[str]) -> major_releases.Registry:
    """The known major releases: ``[major_releases.<name>]`` tables or a list of names, and
    the per-field settings (``bridge.settings.major_releases``)."""
    listed = raw.get("major_releases")
    return major_releases.read(
        listed
        if isinstance(listed, Mapping)
        else readers.names(listed, "major_releases", problems),
        production_paths=readers.pairs(
            raw.get("production_paths") or {}, "production_paths", problems
        ),
        workflows=readers.pairs(raw.get("workflows") or {}, "workflows", problems),
        release_types=readers.pairs(raw.get("release_types") or {}, "release_types", problems),
        flat=readers.names(raw.get("flat_production"), "flat_production", problems),
        templates=_TEMPLATES,
        problems=problems,
    )


def _repository_from(
    raw: Mapping[str, Any],
    data_dir: Path,
    registry: major_releases.Registry,
    problems: list[str],
) -> model.RepositorySettings:
    root = Path(str(raw.get("repo_root") or data_dir / "repo"))
    base_url = str(raw.get("repo_url") or "http://127.0.0.1:8751/")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(f"repo_url: {base_url!r} is not an http(s) URL")
    if not base_url.endswith("/"):
        base_url += "/"
    signing = raw.get("signing_key")
    # "none": unsigned trees, chosen explicitly (unset: the bridge's own key).
    unsigned = str(signing or "").strip().lower() == "none"
    return model.RepositorySettings(
        root=root,
        base_url=base_url,
        production_paths=registry.production_paths(),
        flat_production=registry.flat(),
        release_types=registry.release_types(),
        keep_snapshots=int(readers.number("keep_snapshots", raw, 3, problems, allow_zero=True)),
        area_layout=_area_layout(raw, problems),
        lock_lease=_lock_lease(raw, problems),
        metadata_incremental=readers.flag(raw.get("metadata_incremental", True)),
        sync_timeout=readers.number("sync_timeout", raw, 600.0, problems),
        sync_connect_timeout=readers.number("sync_connect_timeout", raw, 30.0, problems),
        sync_deadline_min=readers.number("sync_deadline_min", raw, 900.0, problems),
        sync_min_rate=readers.number("sync_min_rate", raw, 1024.0**2, problems),
        max_release_bytes=int(readers.number("max_release_bytes", raw, 50 * 1024**3, problems)),
        rsync_password_file=readers.path("rsync_password_file", raw, problems),
        sftp_user=str(raw["sftp_user"]) if raw.get("sftp_user") else None,
        sftp_key_file=readers.path("sftp_key_file", raw, problems),
        sftp_known_hosts=readers.path("sftp_known_hosts", raw, problems),
        sftp_allow_unknown_hosts=readers.flag(raw.get("sftp_allow_unknown_hosts")),
        https_ca_file=readers.path("https_ca_file", raw, problems),
        sync_allow_http=readers.flag(raw.get("sync_allow_http")),
        sync_hosts=sync_hosts.read(raw.get("sync_hosts"), problems),
        signing_key=None if unsigned else _signing_key(signing, "signing_key", problems),
        unsigned=unsigned,
        gnupghome=Path(str(raw["gnupghome"])) if raw.get("gnupghome") else None,
        signing_passphrase_file=readers.path("signing_passphrase_file", raw, problems),
        signing_also_publish=tuple(
            key
            for item in str(raw.get("signing_also_publish") or "").split(",")
            if (key := _signing_key(item.strip(), "signing_also_publish", problems))
        ),
        package_keys=tuple(
            key
            for item in str(raw.get("package_keys") or "").split(",")
            if (key := _signing_key(item.strip(), "package_keys", problems))
        ),
    )


AREA_LAYOUTS = ("snapshots", "tree")


def _area_layout(raw: Mapping[str, Any], problems: list[str]) -> str:
    """How the shared areas are laid out on disk: ``snapshots`` (the default) or ``tree``."""
    value = str(raw.get("area_layout") or "snapshots").strip().lower()
    if value not in AREA_LAYOUTS:
        problems.append(
            f"area_layout: {raw.get('area_layout')!r} is not a layout; "
            "use snapshots (full snapshots, the default) or tree (docs/publication.md)"
        )
        return "snapshots"
    return value


def _lock_lease(raw: Mapping[str, Any], problems: list[str]) -> float:
    """Seconds before PostgreSQL drops a vanished host's repository locks: at least 5, room
    for the lock connection's keepalive probes (repo_daemon.publish.db_locks)."""
    lease = readers.number("lock_lease", raw, 60.0, problems)
    if lease < 5:
        problems.append(f"lock_lease: must be at least 5 seconds, got {raw.get('lock_lease')!r}")
        return 60.0
    return lease


def _signing_key(value: Any, name: str, problems: list[str]) -> str | None:
    if not value:
        return None
    key = str(value).strip().replace(" ", "").upper()
    if not re.fullmatch(r"[0-9A-F]{16}|[0-9A-F]{40}", key):
        problems.append(f"{name}: {value!r} is not a key fingerprint (40 hex digits)")
        return None
    return key


_TEMPLATES = ("staged", "direct")
_STATES = (
    "Submitted", "Unverified", "InVerification", "WaitingForResponse", "StageRollout",
    "Deferred", "Production", "Rejected", "Ignored", "NotPublished", "Failed", "Withdrawn",
)  # fmt: skip


def _workflow_from(
    raw: Mapping[str, Any], registry: major_releases.Registry, problems: list[str]
) -> model.WorkflowSettings:
    default = str(raw.get("workflow") or "staged")
    if default not in _TEMPLATES:
        problems.append(f"workflow: {default!r} is not a template ({', '.join(_TEMPLATES)})")
    cc: dict[str, tuple[str, ...]] = {}
    for state, groups in readers.pairs(raw.get("notify_cc") or {}, "notify_cc", problems).items():
        if state not in _STATES:
            problems.append(f"notify_cc: {state!r} is not a RolloutProgress state")
            continue
        cc[state] = tuple(g for g in groups.replace(" ", "").split("+") if g)
    admin = raw.get("notify_admin_cc")
    admin_cc = (
        tuple(g for g in str(admin).replace(" ", "").split(",") if g)
        if admin is not None
        else ("sw-rel-admin",)
    )
    owners = readers.pairs(raw.get("owners") or {}, "owners", problems)
    for state in owners:
        if state not in _STATES:
            problems.append(f"owners: {state!r} is not a RolloutProgress state")
    roles = dict(model.DEFAULT_ROLES)
    for role, group in readers.pairs(raw.get("roles") or {}, "roles", problems).items():
        if not re.fullmatch(r"\w+", role):
            problems.append(f"roles: {role!r} is not a role name (letters, digits, _)")
        elif not group.strip() or "," in group:
            problems.append(f"roles: {role} = {group!r} is not an RT group name")
        else:
            roles[role] = group
    return model.WorkflowSettings(
        default=default,
        per_major_release=registry.workflows(),
        cc=cc,
        admin_cc=admin_cc,
        major_releases=registry.known,
        owners={k: v for k, v in owners.items() if k in _STATES},
        roles=roles,
        early_adopters=early_adopters.early_adopters(
            raw.get("early_adopters"), registry.known, problems
        ),
    )
