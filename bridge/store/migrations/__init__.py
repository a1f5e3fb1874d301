"""Alembic migrations of the bridge's database, run by ``database.migrate``."""
