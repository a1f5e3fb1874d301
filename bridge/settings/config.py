"""Settings: built once at start-up from ``ROLLOUT_*`` variables and an optional TOML file.

Every problem is collected and reported together as one ``ConfigError``. Secrets are held in
``Secret`` so they never show in ``repr``, logs or error messages. No module-level singleton:
build a ``Settings`` and pass it down.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bridge import errors

ENV_PREFIX = "ROLLOUT_"
# One path component the bridge will create: no "..", no hidden names, no separators.
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
DEFAULT_QUEUE = "sw-rel"


class Secret:
    """A secret string that hides itself in ``repr``/``str``; call ``reveal()`` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself. Only pass it to the thing that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, kw_only=True)
class TrackerSettings:
    """How to reach RT: REST2 URL, credentials (token or user + password), limits."""

    url: str
    token: Secret | None = None
    user: str | None = None
    password: Secret | None = None
    timeout: float = 20.0
    retries: int = 3
    backoff: float = 0.5
    verify_tls: bool = True

    @property
    def rest_url(self) -> str:
        """The REST2 base URL, always ending in ``REST/2.0/``."""
        base = self.url.rstrip("/")
        if base.endswith("/REST/2.0"):
            return base + "/"
        return base + "/REST/2.0/"

    @property
    def web_url(self) -> str:
        """The RT web root (the URL people open), ending in ``/``."""
        return self.rest_url[: -len("REST/2.0/")]

    def auth_description(self) -> str:
        """How the bridge authenticates, safe to show: never the secret itself."""
        if self.token is not None:
            return "an auth token"
        return f"user {self.user!r} with a password"


@dataclass(frozen=True, kw_only=True)
class ReceiverSettings:
    """The HTTP receiver of RT's hooks."""

    host: str = "127.0.0.1"
    port: int = 8750
    hook_secret: Secret | None = None
    hook_tolerance: float = 300.0  # seconds a signed hook stays acceptable (replay window)
    max_body_bytes: int = 65536


@dataclass(frozen=True, kw_only=True)
class DaemonSettings:
    """The repo daemon's scheduling, leases and retries."""

    worker_name: str = ""  # default: host name and process id
    drain_interval: float = 1.0
    reconcile_interval: float = 60.0
    lease_seconds: float = 300.0
    retry_base_delay: float = 5.0
    retry_max_attempts: int = 8
    housekeeping_interval: float = 6 * 3600.0  # seconds between pool garbage collections
    # The bridge's own RT account: changes it makes itself are not new work.
    rt_bridge_user: str | None = None


DEFAULT_CC: Mapping[str, tuple[str, ...]] = {
    "Unverified": ("sw-rel-qc",),
    "InVerification": ("sw-rel-qc",),
    "WaitingForResponse": ("sw-rel-qc",),
    "StageRollout": ("sw-rel-sr", "sw-rel-early-adopters"),
    "Deferred": ("sw-rel-sr",),
    "Production": ("sw-rel-production",),
}


@dataclass(frozen=True, kw_only=True)
class WorkflowSettings:
    """Which workflow each major release follows, and who is told of each state."""

    default: str = "staged"
    per_major_release: Mapping[str, str] = field(default_factory=dict)
    # Groups that are Cc on the ticket in each state (the list is replaced on every change).
    cc: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_CC))
    admin_cc: tuple[str, ...] = ("sw-rel-admin",)

    def workflow_for(self, major_release: str | None) -> str:
        """The workflow template name for ``major_release``."""
        if major_release and major_release in self.per_major_release:
            return self.per_major_release[major_release]
        return self.default


@dataclass(frozen=True, kw_only=True)
class RepositorySettings:
    """The package repository's trees and how they are reached."""

    root: Path = field(default_factory=lambda: Path(".rollout/repo"))
    base_url: str = "http://127.0.0.1:8751/"  # where mirrors and clients see ``root``
    # Production area of a major release, relative to root (default production/<major>).
    production_paths: Mapping[str, str] = field(default_factory=dict)
    keep_snapshots: int = 3  # older snapshots of an area are removed after a publish
    sync_timeout: float = 600.0  # seconds without progress before a sync is given up
    sync_connect_timeout: float = 30.0
    max_release_bytes: int = 50 * 1024**3  # a release larger than this is refused
    rsync_password_file: Path | None = None  # for rsync daemons that want a password
    sftp_user: str | None = None  # when the Sync-URL names none
    sftp_key_file: Path | None = None  # private key for SFTP sources (no passphrase)
    sftp_known_hosts: Path | None = None
    sftp_allow_unknown_hosts: bool = False  # accept (and log) host keys not in known_hosts
    https_ca_file: Path | None = None  # None: the system's trusted CAs
    sync_allow_http: bool = False  # plain http:// Sync-URLs (checksums still verified)
    signing_key: str | None = None  # GnuPG fingerprint; None: trees are published unsigned
    gnupghome: Path | None = None
    signing_passphrase_file: Path | None = None
    signing_also_publish: tuple[str, ...] = ()  # further public keys (key rotation)

    def production_path(self, major_release: str) -> str:
        """The production area of ``major_release``, relative to the root."""
        return self.production_paths.get(major_release, f"production/{major_release}")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the ``rollout`` command needs, checked once."""

    tracker: TrackerSettings
    queue: str = DEFAULT_QUEUE
    data_dir: Path = field(default_factory=lambda: Path(".rollout"))
    # None: SQLite in data_dir. A Secret, because a PostgreSQL URL may carry a password.
    database_url: Secret | None = None
    receiver: ReceiverSettings = field(default_factory=ReceiverSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    workflow: WorkflowSettings = field(default_factory=WorkflowSettings)
    repository: RepositorySettings = field(default_factory=RepositorySettings)

    def database(self) -> str:
        """The database URL to use (the SQLite default when none is configured)."""
        if self.database_url is not None:
            return self.database_url.reveal()
        return f"sqlite:///{(self.data_dir / 'bridge.sqlite').resolve()}"

    @property
    def hook_secret(self) -> Secret | None:
        """The secret RT's scrip signs hooks with."""
        return self.receiver.hook_secret


def redact_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def _read_secret(name: str, raw: Mapping[str, Any], problems: list[str]) -> Secret | None:
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
        return Secret(text)
    return Secret(str(value)) if value else None


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


def _tracker_from(raw: Mapping[str, Any], problems: list[str]) -> TrackerSettings:
    url = str(raw.get("rt_url") or "")
    if not url:
        problems.append("rt_url is not set (ROLLOUT_RT_URL), e.g. https://rt.example.org/")
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"rt_url: {redact_url(url)!r} is not an http(s) URL")
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
    return TrackerSettings(
        url=redact_url(url),
        token=token,
        user=user,
        password=password,
        timeout=_number("rt_timeout", raw, 20.0, problems),
        retries=int(retries),
        backoff=_number("rt_backoff", raw, 0.5, problems),
        verify_tls=verify,
    )


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    require_tracker: bool = True,
) -> Settings:
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

    tracker = _tracker_from(raw, tracker_problems)
    if require_tracker:
        problems.extend(tracker_problems)
    queue = str(raw.get("queue") or DEFAULT_QUEUE)
    if not queue.strip() or len(queue) > 200:
        problems.append(f"queue: {queue!r} is not a usable queue name")
    hook_secret = _read_secret("hook_secret", raw, problems)
    if hook_secret is not None:
        problems.extend(_check_hook_secret(hook_secret))
    data_dir = Path(str(raw.get("data_dir") or ".rollout"))
    database_url = _read_secret("database_url", raw, problems)
    if database_url is not None and not database_url.reveal().startswith(
        ("sqlite:", "postgresql:", "postgresql+psycopg:")
    ):
        problems.append("database_url: use sqlite:///PATH or postgresql://USER@HOST/DB")
    port = _number("listen_port", raw, 8750, problems)
    if not 0 < port < 65536 or port != int(port):
        problems.append(f"listen_port: {raw.get('listen_port')!r} is not a TCP port")
    receiver = ReceiverSettings(
        host=str(raw.get("listen_host") or "127.0.0.1"),
        port=int(port),
        hook_secret=hook_secret,
        hook_tolerance=_number("hook_tolerance", raw, 300.0, problems),
        max_body_bytes=int(_number("max_hook_bytes", raw, 65536, problems)),
    )
    daemon = DaemonSettings(
        worker_name=str(raw.get("worker_name") or ""),
        drain_interval=_number("drain_interval", raw, 1.0, problems),
        reconcile_interval=_number("reconcile_interval", raw, 60.0, problems),
        lease_seconds=_number("lease_seconds", raw, 300.0, problems),
        retry_base_delay=_number("retry_base_delay", raw, 5.0, problems),
        retry_max_attempts=int(_number("retry_max_attempts", raw, 8, problems)),
        housekeeping_interval=_number("housekeeping_interval", raw, 6 * 3600.0, problems),
        rt_bridge_user=str(raw["rt_bridge_user"]) if raw.get("rt_bridge_user") else None,
    )
    workflow = _workflow_from(raw, problems)
    repository = _repository_from(raw, data_dir, problems)
    if problems:
        raise errors.ConfigError(problems)
    return Settings(
        tracker=tracker,
        queue=queue,
        data_dir=data_dir,
        database_url=database_url,
        receiver=receiver,
        daemon=daemon,
        workflow=workflow,
        repository=repository,
    )


def _repository_from(
    raw: Mapping[str, Any], data_dir: Path, problems: list[str]
) -> RepositorySettings:
    root = Path(str(raw.get("repo_root") or data_dir / "repo"))
    base_url = str(raw.get("repo_url") or "http://127.0.0.1:8751/")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(f"repo_url: {base_url!r} is not an http(s) URL")
    if not base_url.endswith("/"):
        base_url += "/"
    paths = _pairs(raw.get("production_paths") or {}, "production_paths", problems)
    for major, path in paths.items():
        names = path.strip("/").split("/")
        if path.startswith("/") or not path.strip("/") or not all(_SAFE.match(n) for n in names):
            problems.append(
                f"production_paths: {major} = {path!r} must be a relative path of names made "
                "of letters, digits, '.', '_', '+' and '-' below repo_root"
            )
    return RepositorySettings(
        root=root,
        base_url=base_url,
        production_paths={k: v.strip("/") for k, v in paths.items()},
        keep_snapshots=int(_number("keep_snapshots", raw, 3, problems, allow_zero=True)),
        sync_timeout=_number("sync_timeout", raw, 600.0, problems),
        sync_connect_timeout=_number("sync_connect_timeout", raw, 30.0, problems),
        max_release_bytes=int(_number("max_release_bytes", raw, 50 * 1024**3, problems)),
        rsync_password_file=_path("rsync_password_file", raw, problems),
        sftp_user=str(raw["sftp_user"]) if raw.get("sftp_user") else None,
        sftp_key_file=_path("sftp_key_file", raw, problems),
        sftp_known_hosts=_path("sftp_known_hosts", raw, problems),
        sftp_allow_unknown_hosts=_flag(raw.get("sftp_allow_unknown_hosts")),
        https_ca_file=_path("https_ca_file", raw, problems),
        sync_allow_http=_flag(raw.get("sync_allow_http")),
        signing_key=_signing_key(raw.get("signing_key"), "signing_key", problems),
        gnupghome=Path(str(raw["gnupghome"])) if raw.get("gnupghome") else None,
        signing_passphrase_file=_path("signing_passphrase_file", raw, problems),
        signing_also_publish=tuple(
            key
            for item in str(raw.get("signing_also_publish") or "").split(",")
            if (key := _signing_key(item.strip(), "signing_also_publish", problems))
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
    "Deferred", "Production", "Rejected", "Ignored", "NotPublished", "Failed",
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


def _workflow_from(raw: Mapping[str, Any], problems: list[str]) -> WorkflowSettings:
    default = str(raw.get("workflow") or "staged")
    if default not in _TEMPLATES:
        problems.append(f"workflow: {default!r} is not a template ({', '.join(_TEMPLATES)})")
    per_major = _pairs(raw.get("workflows") or {}, "workflows", problems)
    for major, name in per_major.items():
        if name not in _TEMPLATES:
            problems.append(f"workflows: {major} = {name!r} is not a template")
    cc = dict(DEFAULT_CC)
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
    return WorkflowSettings(default=default, per_major_release=per_major, cc=cc, admin_cc=admin_cc)


def _check_hook_secret(secret: Secret) -> list[str]:
    """A Standard Webhooks secret is ``whsec_`` + base64 of at least 16 bytes."""
    value = secret.reveal()
    body = value.removeprefix("whsec_")
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return ["hook_secret: not base64 (expected whsec_ followed by base64)"]
    if len(key) < 16:
        return [
            "hook_secret: too short; use at least 16 random bytes "
            "(`rollout tracker sandbox up` makes one)"
        ]
    return []
