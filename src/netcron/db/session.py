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
POOL_SIZE = 30
MAX_OVERFLOW = 20


def create_engine(database_url: str) -> AsyncEngine:
    return create_async_engine(
        database_url, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, pool_pre_ping=True
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
