"""Alembic environment: always run with a connection handed over by ``database.migrate``."""

from __future__ import annotations

from alembic import context

from bridge.store import tables

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through bridge.store.database.migrate (rollout db upgrade)")
context.configure(
    connection=connection,
    target_metadata=tables.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
