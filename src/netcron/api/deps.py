"""Request dependencies as ``Annotated`` aliases, so a route's signature reads like a sentence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from netcron.api.orchestrator import Orchestrator
from netcron.config import Settings
from netcron.crypto import CredentialCipher

READS = frozenset({"GET", "HEAD"})


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    """One unit of work per request: committed when the handler returns, else rolled back.

    A read (GET, HEAD) gets an autocommit session: it writes nothing, so it needs no
    transaction, and skipping BEGIN and COMMIT saves two round trips per request.
    """
    if request.method in READS:
        async with request.app.state.read_sessionmaker() as session:
            yield session
        return
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


def _orchestrator(request: Request) -> Orchestrator:
    orchestrator: Orchestrator = request.app.state.orchestrator
    return orchestrator


def _cipher(request: Request) -> CredentialCipher:
    cipher: CredentialCipher = request.app.state.cipher
    return cipher


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


#: scope="function": commit before the response is sent. With the default ("request")
#: FastAPI sends the response first, so a client could get 201 for a row that is not
#: committed yet (a quick follow-up request saw 404), or for one whose commit failed.
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
OrchestratorDep = Annotated[Orchestrator, Depends(_orchestrator)]
CipherDep = Annotated[CredentialCipher, Depends(_cipher)]
SettingsDep = Annotated[Settings, Depends(_settings)]
