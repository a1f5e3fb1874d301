"""The settings model: frozen, keyword-only dataclasses for everything ``rollout`` needs.

Pure data with small derived values (the REST2 URL, the workflow of a major release). Building
them from the environment and a file, and checking them, is ``bridge.settings.load``'s job; this
module must not read the environment, files or anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bridge import secrets

DEFAULT_QUEUE = "sw-rel"


@dataclass(frozen=True, kw_only=True)
class TrackerSettings:
    """How to reach RT: REST2 URL, credentials (token or user + password), limits."""

    url: str
    token: secrets.Secret | None = None
    user: str | None = None
    password: secrets.Secret | None = None
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
class IntakeLimits:
    """How long a connection to the receiver may take, and how much of it one client may hold
    (``ROLLOUT_RECEIVER_*``; enforced by ``bridge.intake.connections``)."""

    # Seconds for a request's line and headers, from the connection (or the previous answer).
    header_timeout: float = 5.0
    # Seconds for a request's body, from the end of its headers.
    body_timeout: float = 15.0
    max_header_bytes: int = 16384  # request line and headers together
    max_connections: int = 1000  # all clients together; beyond it, requests get 503
    max_connections_per_client: int = 100  # per client address; 0: no cap
    # Addresses or networks without the per-client cap (a reverse proxy in front).
    uncapped_clients: tuple[str, ...] = ()
    log_interval: float = 10.0  # seconds between two log lines of one kind of trouble


@dataclass(frozen=True, kw_only=True)
class ReceiverSettings:
    """The HTTP receiver of RT's hooks."""

    host: str = "127.0.0.1"
    port: int = 8750
    hook_secret: secrets.Secret | None = None
    hook_tolerance: float = 300.0  # seconds a signed hook stays acceptable (replay window)
    max_body_bytes: int = 65536
    limits: IntakeLimits = field(default_factory=IntakeLimits)


@dataclass(frozen=True, kw_only=True)
class EventRetention:
    """A retention rule of the event log: events of ``kinds`` (``("*",)``: every kind no other
    rule names) older than ``days`` are deleted by housekeeping (``bridge.store.retention``)."""

    kinds: tuple[str, ...]
    days: float


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
    # Refused-hook records (settled ones) older than this are deleted by housekeeping.
    refusal_retention_days: float = 30.0
    # Retention of other events by kind (``event_retention``); empty: kept for ever.
    event_retention: tuple[EventRetention, ...] = ()
    # Where retention exports events before deleting them (gzipped JSON Lines).
    event_export_dir: Path = Path(".rollout/event-exports")
    # The bridge's own RT account: changes it makes itself are not new work.
    rt_bridge_user: str | None = None
    # Jobs of different tickets processed at once by one daemon (a ticket's run one at a time).
    workers: int = 4
    # Where ``rollout daemon`` serves its Prometheus ``/metrics`` (port 0: not served).
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0


# The workflow's roles (``@name`` on its rows) and the RT group that gives each.
DEFAULT_ROLES: Mapping[str, str] = {
    "qc": "sw-rel-qc",
    "sr": "sw-rel-sr",
    "admin": "sw-rel-admin",
    "provider": "sw-rel-providers",
}


@dataclass(frozen=True, kw_only=True)
class EarlyAdopterTeam:
    """A team of sites that adopts releases of some major releases early: told when one enters
    staged rollout, it accepts by being added to the ticket's ``EarlyAdopters`` (its ``name``
    is a value of that field) and then watches the ticket as its RT ``group``."""

    name: str
    ngi: str
    group: str
    # The major releases it adopts; empty: every one (only the built-in default team).
    major_releases: tuple[str, ...]

    def adopts(self, major_release: str | None) -> bool:
        """Whether the team is told of staged rollouts of ``major_release``."""
        if not self.major_releases:
            return True
        return major_release is not None and major_release in self.major_releases


# Without configured teams, the one global group of earlier versions stands for every early
# adopter of every major release, so an existing installation keeps telling it.
DEFAULT_EARLY_ADOPTERS = (
    EarlyAdopterTeam(
        name="early-adopters", ngi="", group="sw-rel-early-adopters", major_releases=()
    ),
)


@dataclass(frozen=True, kw_only=True)
class WorkflowSettings:
    """Which workflow each major release follows, and who is told of each state."""

    default: str = "staged"
    per_major_release: Mapping[str, str] = field(default_factory=dict)
    # Overrides of the workflow definition's Cc groups, per state label (the definition's
    # [states] table says who is Cc by default; the list is replaced on every change).
    cc: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    admin_cc: tuple[str, ...] = ("sw-rel-admin",)
    # The known major releases; a release naming another fails at intake. Empty: any name
    # (each new spelling then makes new trees and a staged-rollout slot of its own).
    major_releases: tuple[str, ...] = ()
    # Overrides of the definition's owner per state label: an RT user name ("" keeps).
    owners: Mapping[str, str] = field(default_factory=dict)
    # Role name -> the RT group whose members have it (a move is checked against its row's).
    roles: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ROLES))
    # The early-adopter teams (told of staged rollouts of their major releases).
    early_adopters: tuple[EarlyAdopterTeam, ...] = DEFAULT_EARLY_ADOPTERS

    def early_adopter(self, name: str) -> EarlyAdopterTeam | None:
        """The team called ``name`` (a value of the EarlyAdopters field), or None."""
        return next((t for t in self.early_adopters if t.name == name), None)

    def early_adopters_of(self, major_release: str | None) -> tuple[EarlyAdopterTeam, ...]:
        """The teams told when a release of ``major_release`` enters staged rollout."""
        return tuple(t for t in self.early_adopters if t.adopts(major_release))

    def workflow_for(self, major_release: str | None) -> str:
        """The workflow template name for ``major_release``."""
        if major_release and major_release in self.per_major_release:
            return self.per_major_release[major_release]
        return self.default


@dataclass(frozen=True, kw_only=True)
class SyncHost:
    """A provider host the sync may connect to (settings: ``[[sync_hosts]]``), and the
    credentials offered to it and to no other host.

    ``host`` is, as ``bridge.settings.sync_hosts`` checked and normalised it: a name in lower
    case (``mirror.example.org``; ``*.example.org`` for every name below it), an address
    (``192.0.2.7``, ``2001:db8::7``) or a network (``192.0.2.0/24``). Empty ``ports`` or
    ``protocols``: any. A credential left ``None`` is the global one of ``RepositorySettings``.
    """

    host: str
    ports: tuple[int, ...] = ()
    protocols: tuple[str, ...] = ()  # Sync-Protocol names: rsync, sftp, https
    rsync_password_file: Path | None = None
    sftp_user: str | None = None
    sftp_key_file: Path | None = None
    https_ca_file: Path | None = None


@dataclass(frozen=True, kw_only=True)
class RepositorySettings:
    """The package repository's trees and how they are reached."""

    root: Path = field(default_factory=lambda: Path(".rollout/repo"))
    base_url: str = "http://127.0.0.1:8751/"  # where mirrors and clients see ``root``
    # Production area of a major release, relative to root (default production/<major>).
    production_paths: Mapping[str, str] = field(default_factory=dict)
    keep_snapshots: int = 3  # older snapshots of an area are removed after a publish
    # "snapshots": every snapshot of an area is a full tree of hard links (a promotion costs
    # per file of the area); "tree": the shared areas (stagerollout, production) keep one
    # payload tree and small metadata snapshots (a promotion costs per file of the release).
    area_layout: str = "snapshots"
    # With PostgreSQL: seconds after which the database drops the area locks of a daemon whose
    # host vanished (TCP keepalives on the lock connection; docs/publication.md "Locks").
    lock_lease: float = 60.0
    # Metadata of a publication from the previous snapshot's and the tools' caches (only the
    # packages that changed are read); False: every publication reads every package.
    metadata_incremental: bool = True
    sync_timeout: float = 600.0  # seconds without progress before a sync is given up
    sync_connect_timeout: float = 30.0
    # A sync's overall deadline: this many seconds plus the release's declared size at
    # sync_min_rate bytes/s, however steadily bytes arrive.
    sync_deadline_min: float = 900.0
    sync_min_rate: float = 1024.0**2
    max_release_bytes: int = 50 * 1024**3  # a release larger than this is refused
    rsync_password_file: Path | None = None  # for rsync daemons that want a password
    sftp_user: str | None = None  # when the Sync-URL names none
    sftp_key_file: Path | None = None  # private key for SFTP sources (no passphrase)
    sftp_known_hosts: Path | None = None
    sftp_allow_unknown_hosts: bool = False  # accept (and log) host keys not in known_hosts
    https_ca_file: Path | None = None  # None: the system's trusted CAs
    sync_allow_http: bool = False  # plain http:// Sync-URLs (checksums still verified)
    # The hosts a Sync-URL may name. Empty: any host (as before; a warning at start-up).
    sync_hosts: tuple[SyncHost, ...] = ()
    # GnuPG fingerprint; None: the bridge's own key (made once in <data dir>/gnupg, see
    # repo_daemon.metadata.keys), unless ``unsigned``.
    signing_key: str | None = None
    unsigned: bool = False  # signing_key = "none": trees are published unsigned (a warning)
    gnupghome: Path | None = None
    signing_passphrase_file: Path | None = None
    signing_also_publish: tuple[str, ...] = ()  # further public keys (key rotation)
    # Keys the technology providers sign their RPMs with: published in RPM-GPG-KEY-rollout
    # beside the signing key, so dnf's gpgcheck=1 can check the packages.
    package_keys: tuple[str, ...] = ()
    # -- the major releases' production (bridge.settings.major_releases fills these) --------
    # Major releases whose production path is one flat area, whatever the ReleaseType.
    flat_production: frozenset[str] = frozenset()
    # The ReleaseType of a major release's releases when neither ticket nor release.xml says.
    release_types: Mapping[str, str] = field(default_factory=dict)

    def production_path(self, major_release: str) -> str:
        """The production path of ``major_release``, relative to the root: the parent of its
        ``base`` and ``updates`` areas, or its one area when it is flat."""
        return self.production_paths.get(major_release, f"production/{major_release}")

    def is_flat(self, major_release: str) -> bool:
        """Whether ``major_release`` publishes production into its one flat area."""
        return major_release in self.flat_production

    def release_type_for(self, major_release: str | None) -> str:
        """The ReleaseType of a release of ``major_release`` that nobody typed."""
        return self.release_types.get(major_release or "", "NonIncremental")


# Who may read each kind of area (docs/access.md): role names of ``WorkflowSettings.roles``,
# ``early_adopters`` (the teams of the area's major release) or ``anyone`` (no login).
ANYONE = "anyone"
EARLY_ADOPTERS = "early_adopters"
AREA_KINDS = ("unverified", "stagerollout", "production")
DEFAULT_AREA_ROLES: Mapping[str, tuple[str, ...]] = {
    "unverified": ("qc", "sr", "admin"),
    "stagerollout": (EARLY_ADOPTERS, "sr", "qc", "admin"),
    "production": (ANYONE,),
}


@dataclass(frozen=True, kw_only=True)
class AccessSettings:
    """Who may read which area, and how the check of people's RT logins is bounded."""

    area_roles: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_AREA_ROLES)
    )
    cache_seconds: float = 60.0  # a login checked with RT is trusted this long
    stale_seconds: float = 6 * 3600.0  # ... and this long while RT cannot answer
    groups_seconds: float = 300.0  # the role groups' members are read again after this
    rt_calls_per_second: float = 5.0  # logins checked with RT, at most (a token bucket)
    rt_burst: int = 20
    cache_entries: int = 10000
    check_host: str = "127.0.0.1"  # where ``rollout repo access-check`` listens (for nginx)
    check_port: int = 8752
    # Who may read the audit feed's API (``GET /api/events``): workflow roles, or ``anyone``.
    events_api_roles: tuple[str, ...] = ("admin",)
    # Who may read the status pages and the metrics' API (``/status``, ``GET /api/metrics``).
    status_roles: tuple[str, ...] = ("admin", "qc", "sr")
    # Who may read Prometheus's ``GET /metrics``: ``anyone`` (no login, the default), or roles.
    metrics_roles: tuple[str, ...] = (ANYONE,)

    def roles_for(self, kind: str) -> tuple[str, ...]:
        """The roles that may read areas of ``kind``; nobody's for an unknown kind."""
        return tuple(self.area_roles.get(kind, ()))

    def is_public(self, kind: str) -> bool:
        return ANYONE in self.roles_for(kind)


@dataclass(frozen=True, kw_only=True)
class DeclaredSubscription:
    """A webhook subscription declared in the settings file (``[[subscriptions]]``): kept in
    the database under its name at start-up, read-only from the API (docs/notifications.md)."""

    name: str
    url: str
    secret: secrets.Secret
    description: str = ""
    kinds: tuple[str, ...] = ("*",)
    major_releases: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()
    target_states: tuple[str, ...] = ()
    emergency: bool | None = None
    github_signature: bool = False
    enabled: bool = True


# Svix's schedule, and two more days: ten attempts over about three days.
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (
    0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0, 86400.0, 86400.0,
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class WebhookSettings:
    """Outbound webhooks (docs/notifications.md): where deliveries may go, how they are
    retried, when a failing endpoint is warned about and disabled, and who may manage them."""

    # Destinations normally refused (loopback, private, link-local...) that are allowed.
    allow_cidrs: tuple[str, ...] = ()
    # Delay before each attempt (seconds): the first is usually 0 (at once).
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    jitter: float = 0.1  # each delay varies by up to this fraction
    timeout: float = 15.0  # seconds for one attempt, connect and answer
    response_cap: int = 4096  # bytes of an answer kept (and read)
    # An endpoint failing without a success for this long is disabled (warned at 50 %, 90 %).
    disable_after: float = 5 * 86400.0
    # ... and only after at least this many failed attempts.
    disable_min_failures: int = 5
    # A rotated secret keeps signing beside the new one for this long.
    secret_overlap: float = 86400.0
    workers: int = 8  # deliveries sent at once by one daemon
    batch: int = 64  # deliveries claimed in one transaction
    poll_interval: float = 0.5  # seconds between looks for due deliveries when idle
    lease_seconds: float = 60.0
    # Finished deliveries and their attempts are deleted after this many days.
    retention_days: float = 30.0
    # Who may manage subscriptions and deliveries over the API (workflow roles, or anyone).
    api_roles: tuple[str, ...] = ("admin",)
    declared: tuple[DeclaredSubscription, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the ``rollout`` command needs, checked once."""

    tracker: TrackerSettings
    queue: str = DEFAULT_QUEUE
    data_dir: Path = field(default_factory=lambda: Path(".rollout"))
    # None: SQLite in data_dir. A Secret, because a PostgreSQL URL may carry a password.
    database_url: secrets.Secret | None = None
    receiver: ReceiverSettings = field(default_factory=ReceiverSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    workflow: WorkflowSettings = field(default_factory=WorkflowSettings)
    repository: RepositorySettings = field(default_factory=RepositorySettings)
    access: AccessSettings = field(default_factory=AccessSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)

    def database(self) -> str:
        """The database URL to use (the SQLite default when none is configured)."""
        if self.database_url is not None:
            return self.database_url.reveal()
        return f"sqlite:///{(self.data_dir / 'bridge.sqlite').resolve()}"

    @property
    def hook_secret(self) -> secrets.Secret | None:
        """The secret RT's scrip signs hooks with."""
        return self.receiver.hook_secret
