"""The async engine and session factory (asyncpg)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

#: Connections kept open. Past it, connections are opened per request and closed after
#: it: under 200 requests/s a pool of 10 opened a new PostgreSQL backend many times a
#: second, which cost more than the queries (see README, Performance).
POOL_SIZE = 20
MAX_OVERFLOW = 10


def create_engine(database_url: str) -> AsyncEngine:
    """The pool, without a ping per checkout (a round trip on every request).

    After a database restart the first statement on a dead connection fails, and
    SQLAlchemy then discards every connection opened before it, so one request sees
    the outage rather than each pooled connection in turn.
    """
    return create_async_engine(database_url, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads, on the same pool in autocommit: no BEGIN and COMMIT round trips.

    Each statement sees the latest committed data; a read of several statements (a page
    and its total) may see a write land between them, which a listing can live with.
    """
    return async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
    )
