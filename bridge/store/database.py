"""Opening the bridge's database (SQLite by default, PostgreSQL by URL) and migrating it.

SQLite runs in WAL mode with ``synchronous=FULL``: a commit is on disk before the receiver
answers 2xx, also across a power loss. Every SQLite transaction starts with ``BEGIN IMMEDIATE``
so a claim is one writer's short transaction. PostgreSQL uses psycopg 3. Nothing here knows
about jobs; ``queue`` does.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import exc as alembic_errors

from bridge import errors

logger = logging.getLogger(__name__)


def default_url(data_dir: Path) -> str:
    """The embedded default: one SQLite file in the data directory."""
    return f"sqlite:///{(data_dir / 'bridge.sqlite').resolve()}"


def create_engine(url: str, *, pool_size: int = 5) -> sa.Engine:
    """An engine for ``url`` (``sqlite:///…`` or ``postgresql://…``), set up for durability.

    Raises ``ConfigError`` for a URL that names neither.
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise errors.ConfigError([f"database_url: not a database URL ({exc})"]) from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})
        _make_sqlite_durable(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return sa.create_engine(parsed, pool_size=pool_size, pool_pre_ping=True)
    raise errors.ConfigError(
        [f"database_url: {parsed.get_backend_name()!r} is not supported; use sqlite or postgresql"]
    )


def _make_sqlite_durable(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class SchemaTooNew(errors.BridgeError):
    """The database was migrated by a newer version of the bridge than this one: its schema's
    revision is not among the migrations this version ships. Permanent: running a version that
    knows the revision is the way out (docs/operations.md, "Upgrading")."""

    def __init__(self, revision: str, head: str) -> None:
        self.revision = revision
        self.head = head
        super().__init__(
            f"the database's schema is at revision {revision}, which this version of the bridge "
            f"does not know (its newest is {head}): a newer version has migrated it. Run that "
            'version (or a newer one) here; see docs/operations.md, "Upgrading"'
        )


def _alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", "bridge.store:migrations")
    config.attributes["connection"] = connection
    return config


# Key of the PostgreSQL advisory lock that serialises migrations of processes starting at once.
_MIGRATION_LOCK = 0x526F6C6C  # "Roll"


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest revision (creating it on first use). Idempotent.

    On PostgreSQL several processes starting at once migrate one after another (an advisory
    lock); SQLite's ``BEGIN IMMEDIATE`` serialises them by itself.
    """
    if engine.dialect.name != "postgresql":
        with engine.begin() as connection:
            _upgrade(connection)
        return
    with engine.connect() as lock:
        lock.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
        try:
            with engine.begin() as connection:
                _upgrade(connection)
        finally:
            lock.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
            lock.commit()


def _upgrade(connection: sa.Connection) -> None:
    _refuse_newer(connection)
    command.upgrade(_alembic_config(connection), "head")


def _refuse_newer(connection: sa.Connection) -> tuple[str | None, str | None]:
    """The schema's current revision (None: no schema yet) and the newest this version ships;
    ``SchemaTooNew`` when the current one is not among them."""
    current = MigrationContext.configure(connection).get_current_revision()
    scripts = ScriptDirectory.from_config(_alembic_config(connection))
    head = scripts.get_current_head()
    if current is not None:
        try:
            known = scripts.get_revision(current)
        except alembic_errors.CommandError:
            known = None
        if known is None:
            raise SchemaTooNew(current, str(head))
    return current, head


def schema_is_current(engine: sa.Engine) -> bool:
    """Whether the database is at the newest migration. Raises ``SchemaTooNew`` when a newer
    version of the bridge has migrated it."""
    with engine.connect() as connection:
        current, head = _refuse_newer(connection)
    return current == head
