"""Loading settings: ``ROLLOUT_*`` variables and an optional TOML file, checked, into a frozen
``model.Settings``.

Every problem is collected and reported together as one ``ConfigError``. Secrets are held in
``secrets.Secret`` so they never show in ``repr``, logs or error messages. No module-level
singleton: build a ``Settings`` and pass it down. It must not connect to anything.

Past 500 lines on purpose for now: one reader per section of the file, all sharing the problem
list and the number, path and secret readers; the seam to take next is the per-section readers
(access, intake limits, early adopters) into modules of their own beside ``sync_hosts``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bridge import errors, secrets
from bridge.settings import event_retention, major_releases, model, sync_hosts

logger = logging.getLogger(__name__)

ENV_PREFIX = "ROLLOUT_"


def _read_secret(name: str, raw: Mapping[str, Any], problems: list[str]) -> secrets.Secret | None:
    """A secret from ``name`` or from the file named by ``name_file``; never both."""
    value, path = raw.get(name), raw.get(f"{name}_file")
    if value and path:
        problems.append(f"{name} and {name}_file are both set; use one")
        return None
    if path:
        try:
            text = Path(str(path)).read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(f"{name}_file {path}: cannot read ({exc.strerror})")
            return None
        if not text:
            problems.append(f"{name}_file {path} is empty")
            return None
        return secrets.Secret(text)
    return secrets.Secret(str(value)) if value else None


def _number(
    name: str,
    raw: Mapping[str, Any],
    default: float,
    problems: list[str],
    *,
    allow_zero: bool = False,
) -> float:
    value = raw.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        problems.append(f"{name}: {value!r} is not a number")
        return default
    if number < 0 or (number == 0 and not allow_zero):
        limit = "0 or more" if allow_zero else "greater than 0"
        problems.append(f"{name}: must be {limit}, got {value!r}")
        return default
    return number


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
    token = _read_secret("rt_token", raw, problems)
    password = _read_secret("rt_password", raw, problems)
    user = str(raw["rt_user"]) if raw.get("rt_user") else None
    if token is None and (user is None or password is None):
        problems.append(
            "no RT credentials: set ROLLOUT_RT_TOKEN(_FILE), or ROLLOUT_RT_USER and "
            "ROLLOUT_RT_PASSWORD(_FILE)"
        )
    retries = _number("rt_retries", raw, 3, problems, allow_zero=True)
    verify = str(raw.get("rt_verify_tls", "true")).lower() not in ("0", "false", "no")
    return model.TrackerSettings(
        url=secrets.redact_url(url),
        token=token,
        user=user,
        password=password,
        timeout=_number("rt_timeout", raw, 20.0, problems),
        retries=int(retries),
        backoff=_number("rt_backoff", raw, 0.5, problems),
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
    hook_secret = _read_secret("hook_secret", raw, problems)
    if hook_secret is not None:
        problems.extend(secrets.hook_secret_problems(hook_secret))
    data_dir = Path(str(raw.get("data_dir") or ".rollout"))
    database_url = _read_secret("database_url", raw, problems)
    if database_url is not None and not database_url.reveal().startswith(
        ("sqlite:", "postgresql:", "postgresql+psycopg:")
    ):
        problems.append("database_url: use sqlite:///PATH or postgresql://USER@HOST/DB")
    port = _number("listen_port", raw, 8750, problems)
    if not 0 < port < 65536 or port != int(port):
        problems.append(f"listen_port: {raw.get('listen_port')!r} is not a TCP port")
    receiver = model.ReceiverSettings(
        host=str(raw.get("listen_host") or "127.0.0.1"),
        port=int(port),
        hook_secret=hook_secret,
        hook_tolerance=_number("hook_tolerance", raw, 300.0, problems),
        max_body_bytes=int(_number("max_hook_bytes", raw, 65536, problems)),
        limits=_intake_limits_from(raw, problems),
    )
    daemon = model.DaemonSettings(
        worker_name=str(raw.get("worker_name") or ""),
        drain_interval=_number("drain_interval", raw, 1.0, problems),
        reconcile_interval=_number("reconcile_interval", raw, 60.0, problems),
        lease_seconds=_number("lease_seconds", raw, 300.0, problems),
        retry_base_delay=_number("retry_base_delay", raw, 5.0, problems),
        retry_max_attempts=int(_number("retry_max_attempts", raw, 8, problems)),
        housekeeping_interval=_number("housekeeping_interval", raw, 6 * 3600.0, problems),
        refusal_retention_days=_number("refusal_retention_days", raw, 30.0, problems),
        event_retention=event_retention.read(raw.get("event_retention"), problems),
        event_export_dir=Path(str(raw.get("event_export_dir") or data_dir / "event-exports")),
        rt_bridge_user=str(raw["rt_bridge_user"]) if raw.get("rt_bridge_user") else None,
        workers=int(_number("daemon_workers", raw, 4, problems)),
    )
    registry = _major_releases_from(raw, problems)
    workflow = _workflow_from(raw, registry, problems)
    repository = _repository_from(raw, data_dir, registry, problems)
    access = _access_from(raw, workflow, problems)
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
        access=access,
    )


def _access_from(
    raw: Mapping[str, Any], workflow: model.WorkflowSettings, problems: list[str]
) -> model.AccessSettings:
    """Who may read each kind of area (``area_roles``: ``kind=role+role,…`` or a table of
    lists) and the limits of the login check (docs/access.md)."""
    known = {model.ANYONE, model.EARLY_ADOPTERS, *workflow.roles}
    area_roles = dict(model.DEFAULT_AREA_ROLES)
    for kind, roles in _pairs(raw.get("area_roles") or {}, "area_roles", problems).items():
        names = tuple(dict.fromkeys(r for r in roles.replace(" ", "").split("+") if r))
        if kind not in model.AREA_KINDS:
            problems.append(
                f"area_roles: {kind!r} is not a kind of area ({', '.join(model.AREA_KINDS)})"
            )
        elif unknown := sorted(set(names) - known):
            problems.append(
                f"area_roles: {kind} names {', '.join(unknown)}, not a role (known: "
                f"{', '.join(sorted(known))})"
            )
        else:
            area_roles[kind] = names  # empty: nobody (areas of that kind are not served)
    port = _number("access_check_port", raw, 8752, problems)
    if not 0 < port < 65536 or port != int(port):
        problems.append(f"access_check_port: {raw.get('access_check_port')!r} is not a TCP port")
    return model.AccessSettings(
        events_api_roles=_events_api_roles(raw, workflow, problems),
        area_roles=area_roles,
        cache_seconds=_number("access_cache_seconds", raw, 60.0, problems),
        stale_seconds=_number("access_stale_seconds", raw, 6 * 3600.0, problems, allow_zero=True),
        groups_seconds=_number("access_groups_seconds", raw, 300.0, problems),
        rt_calls_per_second=_number("access_rt_calls_per_second", raw, 5.0, problems),
        rt_burst=max(1, int(_number("access_rt_burst", raw, 20, problems))),
        cache_entries=max(1, int(_number("access_cache_entries", raw, 10000, problems))),
        check_host=str(raw.get("access_check_host") or "127.0.0.1"),
        check_port=int(port),
    )


def _events_api_roles(
    raw: Mapping[str, Any], workflow: model.WorkflowSettings, problems: list[str]
) -> tuple[str, ...]:
    """Who may read ``GET /api/events`` (``events_api_roles``: ``admin,qc`` or a list; an
    empty list in the file: nobody; ``anyone``: no login asked)."""
    value = raw.get("events_api_roles")
    if value is None or value == "":
        return model.AccessSettings.events_api_roles
    names = _names(value, "events_api_roles", problems)
    known = {model.ANYONE, *workflow.roles}
    if unknown := sorted(set(names) - known):
        problems.append(
            f"events_api_roles: {', '.join(unknown)} is not a role (known: "
            f"{', '.join(sorted(known))})"
        )
    return names


def _intake_limits_from(raw: Mapping[str, Any], problems: list[str]) -> model.IntakeLimits:
    """The receiver's connection limits (``ROLLOUT_RECEIVER_*``)."""
    default = model.IntakeLimits()

    def number(key: str, fallback: float, **kw: Any) -> float:
        return _number(f"receiver_{key}", raw, fallback, problems, **kw)

    header_bytes = int(number("max_header_bytes", default.max_header_bytes))
    if header_bytes < 1024:
        problems.append(f"receiver_max_header_bytes: at least 1024, got {header_bytes}")
    connections = int(number("max_connections", default.max_connections))
    per_client = int(
        number("max_connections_per_client", default.max_connections_per_client, allow_zero=True)
    )
    if per_client > connections:
        problems.append(
            f"receiver_max_connections_per_client ({per_client}) is above "
            f"receiver_max_connections ({connections}): one client could take them all"
        )
    listed = raw.get("receiver_uncapped_clients") or ()
    items = listed if isinstance(listed, (list, tuple)) else str(listed).split(",")
    uncapped: list[str] = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        try:
            uncapped.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            problems.append(f"receiver_uncapped_clients: {item!r} is not an address or network")
    return model.IntakeLimits(
        header_timeout=number("header_timeout", default.header_timeout),
        body_timeout=number("body_timeout", default.body_timeout),
        max_header_bytes=header_bytes,
        max_connections=connections,
        max_connections_per_client=per_client,
        uncapped_clients=tuple(dict.fromkeys(uncapped)),
        log_interval=number("log_interval", default.log_interval),
    )


def _major_releases_from(raw: Mapping[str, Any], problems: list[str]) -> major_releases.Registry:
    """The known major releases: ``[major_releases.<name>]`` tables or a list of names, and
    the per-field settings (``bridge.settings.major_releases``)."""
    listed = raw.get("major_releases")
    return major_releases.read(
        listed if isinstance(listed, Mapping) else _names(listed, "major_releases", problems),
        production_paths=_pairs(raw.get("production_paths") or {}, "production_paths", problems),
        workflows=_pairs(raw.get("workflows") or {}, "workflows", problems),
        release_types=_pairs(raw.get("release_types") or {}, "release_types", problems),
        flat=_names(raw.get("flat_production"), "flat_production", problems),
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
        keep_snapshots=int(_number("keep_snapshots", raw, 3, problems, allow_zero=True)),
        sync_timeout=_number("sync_timeout", raw, 600.0, problems),
        sync_connect_timeout=_number("sync_connect_timeout", raw, 30.0, problems),
        sync_deadline_min=_number("sync_deadline_min", raw, 900.0, problems),
        sync_min_rate=_number("sync_min_rate", raw, 1024.0**2, problems),
        max_release_bytes=int(_number("max_release_bytes", raw, 50 * 1024**3, problems)),
        rsync_password_file=_path("rsync_password_file", raw, problems),
        sftp_user=str(raw["sftp_user"]) if raw.get("sftp_user") else None,
        sftp_key_file=_path("sftp_key_file", raw, problems),
        sftp_known_hosts=_path("sftp_known_hosts", raw, problems),
        sftp_allow_unknown_hosts=_flag(raw.get("sftp_allow_unknown_hosts")),
        https_ca_file=_path("https_ca_file", raw, problems),
        sync_allow_http=_flag(raw.get("sync_allow_http")),
        sync_hosts=sync_hosts.read(raw.get("sync_hosts"), problems),
        signing_key=None if unsigned else _signing_key(signing, "signing_key", problems),
        unsigned=unsigned,
        gnupghome=Path(str(raw["gnupghome"])) if raw.get("gnupghome") else None,
        signing_passphrase_file=_path("signing_passphrase_file", raw, problems),
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


def _signing_key(value: Any, name: str, problems: list[str]) -> str | None:
    if not value:
        return None
    key = str(value).strip().replace(" ", "").upper()
    if not re.fullmatch(r"[0-9A-F]{16}|[0-9A-F]{40}", key):
        problems.append(f"{name}: {value!r} is not a key fingerprint (40 hex digits)")
        return None
    return key


def _flag(value: Any) -> bool:
    return str(value or "false").strip().lower() in ("1", "true", "yes", "on")


def _path(name: str, raw: Mapping[str, Any], problems: list[str]) -> Path | None:
    """An existing, readable file named by setting ``name``, or None when unset."""
    value = raw.get(name)
    if not value:
        return None
    path = Path(str(value))
    if not path.is_file():
        problems.append(f"{name}: {path} is not a readable file")
    return path


_TEMPLATES = ("staged", "direct")
_STATES = (
    "Submitted", "Unverified", "InVerification", "WaitingForResponse", "StageRollout",
    "Deferred", "Production", "Rejected", "Ignored", "NotPublished", "Failed", "Withdrawn",
)  # fmt: skip


def _pairs(value: Any, name: str, problems: list[str]) -> dict[str, str]:
    """A mapping from a TOML table or from ``key=value,key=value`` (environment)."""
    if isinstance(value, Mapping):
        return {
            str(k): "+".join(map(str, v)) if isinstance(v, list) else str(v)
            for k, v in value.items()
        }
    result: dict[str, str] = {}
    for item in str(value).split(","):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"{name}: {item.strip()!r} is not KEY=VALUE")
            continue
        result[key.strip()] = val.strip()
    return result


def _workflow_from(
    raw: Mapping[str, Any], registry: major_releases.Registry, problems: list[str]
) -> model.WorkflowSettings:
    default = str(raw.get("workflow") or "staged")
    if default not in _TEMPLATES:
        problems.append(f"workflow: {default!r} is not a template ({', '.join(_TEMPLATES)})")
    cc: dict[str, tuple[str, ...]] = {}
    for state, groups in _pairs(raw.get("notify_cc") or {}, "notify_cc", problems).items():
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
    owners = _pairs(raw.get("owners") or {}, "owners", problems)
    for state in owners:
        if state not in _STATES:
            problems.append(f"owners: {state!r} is not a RolloutProgress state")
    roles = dict(model.DEFAULT_ROLES)
    for role, group in _pairs(raw.get("roles") or {}, "roles", problems).items():
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
        early_adopters=_early_adopters(raw.get("early_adopters"), registry.known, problems),
    )


_TEAM_KEYS = ("name", "ngi", "group", "major_releases")


def _team_tables(value: Any, problems: list[str]) -> list[Mapping[str, Any]]:
    """The teams as tables: a TOML array of tables, or ``name:NGI:group:MAJOR+MAJOR,…``."""
    if isinstance(value, list):
        tables = [item for item in value if isinstance(item, Mapping)]
        if len(tables) != len(value):
            problems.append("early_adopters: each team is a table ([[early_adopters]])")
        return tables
    tables = []
    for item in str(value).split(","):
        if not item.strip():
            continue
        parts = [p.strip() for p in item.split(":")]
        if len(parts) != 4:
            problems.append(
                f"early_adopters: {item.strip()!r} is not NAME:NGI:GROUP:MAJOR+MAJOR (GROUP may "
                "be empty)"
            )
            continue
        name, ngi, group, majors = parts
        tables.append(
            {"name": name, "ngi": ngi, "group": group, "major_releases": majors.split("+")}
        )
    return tables


def _early_adopters(
    value: Any, majors: tuple[str, ...], problems: list[str]
) -> tuple[model.EarlyAdopterTeam, ...]:
    """The early-adopter teams; the built-in default (the one global group) when none are set."""
    if value is None or value == "" or value == []:
        return model.DEFAULT_EARLY_ADOPTERS
    teams: list[model.EarlyAdopterTeam] = []
    for table in _team_tables(value, problems):
        name = str(table.get("name") or "").strip()
        where = f"early_adopters: team {name!r}" if name else "early_adopters: a team"
        unknown = sorted(set(map(str, table)) - set(_TEAM_KEYS))
        if unknown:
            problems.append(
                f"{where}: unknown key {', '.join(unknown)} (known: {', '.join(_TEAM_KEYS)})"
            )
        if not major_releases.SAFE_NAME.match(name):
            problems.append(
                f"{where}: the name must be 1-64 letters, digits, '.', '_', '+' or '-' (it is a "
                "value of the EarlyAdopters field)"
            )
            continue
        ngi = str(table.get("ngi") or "").strip()
        if not ngi or len(ngi) > 100 or not ngi.isprintable():
            problems.append(f"{where}: ngi must name the team's NGI (at most 100 characters)")
        group = str(table.get("group") or "").strip() or f"sw-rel-ea-{name}"
        if len(group) > 200 or not group.isprintable():
            problems.append(f"{where}: group {group!r} is not an RT group name")
        adopted = _names(table.get("major_releases"), f"{where}: major_releases", problems)
        if not adopted:
            problems.append(f"{where}: major_releases must name the major releases it adopts")
        unknown_majors = [m for m in adopted if majors and m not in majors]
        if unknown_majors:
            problems.append(
                f"{where}: {', '.join(unknown_majors)} not among major_releases "
                f"({', '.join(majors)})"
            )
        teams.append(
            model.EarlyAdopterTeam(name=name, ngi=ngi, group=group, major_releases=adopted)
        )
    for label, key in (("name", "name"), ("group", "group")):
        seen = [getattr(t, key) for t in teams]
        twice = sorted({v for v in seen if seen.count(v) > 1})
        if twice:
            problems.append(
                f"early_adopters: the {label} {', '.join(twice)} is used by more than one team"
            )
    return tuple(teams)


def _names(value: Any, name: str, problems: list[str]) -> tuple[str, ...]:
    """A list of names from a TOML array or from ``a,b,c`` (environment), without repeats."""
    if value is None or value == "":
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    names = [str(item).strip() for item in items]
    if any(not n or any(c.isspace() or c in "/\\" for c in n) for n in names):
        problems.append(f"{name}: {value!r} is not a list of names (no spaces or slashes)")
        return ()
    return tuple(dict.fromkeys(names))
