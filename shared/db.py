"""The SQLAlchemy handle shared by the web and worker processes."""

from __future__ import annotations

from datetime import UTC, datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Connection, MetaData

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Stable constraint names, so Alembic autogenerate and downgrades work on every backend."""

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))


def utcnow() -> datetime:
    """Timezone-aware UTC now; every timestamp the service stores is UTC."""
    return datetime.now(UTC)


def read_only_connection() -> Connection:
    """The session's connection in autocommit mode, for a request that only reads.

    A lone SELECT then costs one round trip instead of three (BEGIN, SELECT, ROLLBACK). Only
    for requests that write nothing afterwards: every later statement of the session, until it
    is closed at the end of the request, runs in autocommit too. Inside an open transaction (a
    CLI command, a test holding the session) the transaction's connection is used as it is.
    """
    if db.session().in_transaction():
        return db.session.connection()
    return db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
