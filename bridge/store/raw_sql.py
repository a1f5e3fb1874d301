"""The few hot statements of intake run on the DBAPI cursor of a SQLAlchemy connection: fixed
SQL text with bound parameters, values converted by the columns' own SQLAlchemy types.

Every accepted hook's commit runs a handful of statements; through SQLAlchemy's execution
machinery (execution context, parameter processing, result set-up) each cost ~0.1–0.3 ms of
CPU, more than the database's own work (docs/benchmarks.md, "Receiver"). ``insert_rows``,
``insert_sql`` and ``execute`` run the same statements in the caller's transaction without
that machinery; the rows stored are the same, because each value goes through the bind
processor SQLAlchemy would have used (``binders``: SQLite's text form of a datetime, its
integers for booleans), and results through the result processor asked for (``reader``). A
DBAPI error is raised as SQLAlchemy's ``DBAPIError`` subclass, as ``Connection.execute``
would.

Only constants and column names go into the text; values are always bound parameters. It
decides nothing about what is stored (``queue``, ``event_log`` do).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

Processor = Callable[[Any], Any] | None


def marker(dialect: sa.Dialect) -> str:
    """The positional parameter marker of the dialect's driver (``?`` for sqlite3, ``%s`` for
    psycopg)."""
    return "?" if dialect.paramstyle in ("qmark", "numeric") else "%s"


# Keyed by the dialect (an engine's): bounded, as tests make many engines.
@functools.lru_cache(maxsize=256)
def binders(
    dialect: sa.Dialect, table: sa.Table, columns: tuple[str, ...]
) -> tuple[Processor, ...]:
    """The bind processor of each of ``columns`` on ``dialect`` (None where it binds as is)."""
    return tuple(
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
    )


def reader(dialect: sa.Dialect, type_: sa.types.TypeEngine[Any]) -> Processor:
    """The result processor of ``type_`` on ``dialect`` (None where the driver's value is it)."""
    return type_.dialect_impl(dialect).result_processor(dialect, None)


def row_values(
    row: dict[str, Any], columns: Sequence[str], processors: Sequence[Processor]
) -> list[Any]:
    """``row``'s values in the order of ``columns``, each bound as its column's type binds it."""
    values = []
    for name, process in zip(columns, processors, strict=True):
        value = row[name]
        values.append(value if process is None or value is None else process(value))
    return values


@functools.lru_cache(maxsize=4096)
def insert_sql(
    dialect: sa.Dialect,
    table: str,
    columns: tuple[str, ...],
    rows: int,
    *,
    on_conflict: str | None = None,
    returning: tuple[str, ...] = (),
) -> str:
    """``INSERT INTO table (columns) VALUES (...), ... [ON CONFLICT (c) DO NOTHING]
    [RETURNING ...]`` for ``rows`` rows (made once per shape)."""
    quote = dialect.identifier_preparer.quote
    one = "(" + ", ".join([marker(dialect)] * len(columns)) + ")"
    sql = (
        f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
        f"VALUES {', '.join([one] * rows)}"
    )
    if on_conflict is not None:
        sql += f" ON CONFLICT ({quote(on_conflict)}) DO NOTHING"
    if returning:
        sql += f" RETURNING {', '.join(quote(c) for c in returning)}"
    return sql


# Rows per insert statement (SQLite binds at most 32,766 parameters in one).
ROWS_PER_INSERT = 500


def insert_rows(
    conn: sa.Connection,
    table: sa.Table,
    columns: tuple[str, ...],
    rows: Sequence[dict[str, Any]],
    *,
    on_conflict: str | None = None,
    returning: tuple[str, ...] = (),
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (their ``columns``, each bound as its column's type binds it) into
    ``table`` in ``conn``'s transaction: one multi-row INSERT per ``ROWS_PER_INSERT`` rows.
    Returns the ``returning`` columns of the rows inserted, in no promised order."""
    dialect = conn.dialect
    processors = binders(dialect, table, columns)
    returned: list[tuple[Any, ...]] = []
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start : start + ROWS_PER_INSERT]
        sql = insert_sql(
            dialect, table.name, columns, len(chunk), on_conflict=on_conflict, returning=returning
        )
        params = [v for row in chunk for v in row_values(row, columns, processors)]
        returned += execute(conn, sql, params)
    return returned


def execute(
    conn: sa.Connection, sql: str, params: Sequence[Any], *, many: bool = False
) -> list[tuple[Any, ...]]:
    """Run ``sql`` with ``params`` (a sequence of rows when ``many``) on ``conn``'s DBAPI
    connection, in its transaction; the rows it returns (none for a statement without).

    Raises SQLAlchemy's ``DBAPIError`` (``IntegrityError``, ``OperationalError``…) wrapping
    the driver's error."""
    dialect = conn.dialect
    cursor = conn.connection.cursor()
    try:
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []
    except dialect.loaded_dbapi.Error as exc:
        raise sa.exc.DBAPIError.instance(
            sql,
            params,
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            dialect=dialect,
            ismulti=many,
        ) from exc
    finally:
        cursor.close()
