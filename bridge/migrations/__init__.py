"""Alembic migrations of the bridge's database (queue, events, state). Run by ``database.migrate``."""
