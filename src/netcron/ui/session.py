"""The console's sign-in: server-side sessions behind an HttpOnly cookie, and CSRF.

The cookie holds a random token; PostgreSQL holds its SHA-256 (so a database read gives
no usable cookie), the API key encrypted with ``NETCRON_SECRET_KEY``, the session's CSRF
token and its end. Every api replica reads the same table, and signing out deletes the
row, so a copy of the cookie taken earlier opens nothing afterwards. Each form carries the
CSRF token; a change whose token does not match is refused (403) before anything else.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request, Response
from sqlalchemy import DateTime, String, Text, delete, func, select
from sqlalchemy.orm import Mapped, mapped_column

from netcron.apikeys import ApiKey, find_key
from netcron.crypto import CredentialCipher, CredentialsUnreadable
from netcron.db.models import Base

COOKIE = "netcron_console"
#: A pre-session token for the sign-in form itself (login CSRF).
LOGIN_COOKIE = "netcron_console_login"
COOKIE_PATH = "/ui"
#: A session ends this long after sign-in, whatever happens in between.
SESSION_LIFETIME = timedelta(hours=12)


class ConsoleSession(Base):
    """A signed-in browser: the hash of its cookie, the key it signed in with, its CSRF token."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_key: Mapped[str] = mapped_column(Text, nullable=False)
    csrf: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class SignInRequired(Exception):
    """No valid session: pages redirect to the sign-in form."""


class ConsoleForbidden(Exception):
    """A change refused by the console itself (bad CSRF token, or a key without ``write``)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class ConsoleUser:
    """The signed-in key and the session's CSRF token."""

    key: ApiKey
    csrf: str

    @property
    def can_write(self) -> bool:
        return "write" in self.key.scopes


def _cipher(request: Request) -> CredentialCipher:
    cipher: CredentialCipher = request.app.state.cipher
    return cipher


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


async def open_session(request: Request, response: Response, key: ApiKey) -> None:
    """Sign in: a new session row, a new cookie, a new CSRF token; expired rows go."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    async with request.app.state.sessionmaker() as session:
        await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
        session.add(
            ConsoleSession(
                id=_digest(token),
                api_key=_cipher(request).encrypt_bytes(key.key.encode()).decode(),
                csrf=secrets.token_urlsafe(32),
                expires_at=now + SESSION_LIFETIME,
            )
        )
        await session.commit()
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path=COOKIE_PATH,
        httponly=True,
        secure=is_https(request),
        samesite="strict",
    )
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)


async def close_session(request: Request, response: Response) -> None:
    """Sign out: the session row is deleted, so the cookie opens nothing any more."""
    token = request.cookies.get(COOKIE)
    if token:
        async with request.app.state.sessionmaker() as session:
            await session.execute(delete(ConsoleSession).where(ConsoleSession.id == _digest(token)))
            await session.commit()
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, httponly=True, secure=is_https(request), samesite="strict"
    )


async def current_user(request: Request) -> ConsoleUser | None:
    """The session's user, or None: no cookie, an unknown or ended session, or a key that
    is no longer configured (or lost its ``read`` scope)."""
    if hasattr(request.state, "console_user"):
        cached: ConsoleUser | None = request.state.console_user
        return cached
    request.state.console_user = user = await _look_up(request)
    return user


async def _look_up(request: Request) -> ConsoleUser | None:
    token = request.cookies.get(COOKIE)
    if not token or len(token) > 128:
        return None
    async with request.app.state.read_sessionmaker() as session:
        row = (
            await session.execute(
                select(ConsoleSession.api_key, ConsoleSession.csrf).where(
                    ConsoleSession.id == _digest(token),
                    ConsoleSession.expires_at > datetime.now(UTC),
                )
            )
        ).first()
    if row is None:
        return None
    try:
        presented = _cipher(request).decrypt_bytes(row.api_key.encode()).decode()
    except CredentialsUnreadable:
        return None
    key = find_key(request.app.state.api_keys, presented)
    if key is None or "read" not in key.scopes:
        return None
    return ConsoleUser(key=key, csrf=row.csrf)


async def signed_in(request: Request) -> ConsoleUser:
    """Dependency of every console page: the user, or a redirect to the sign-in form."""
    user = await current_user(request)
    if user is None:
        raise SignInRequired()
    return user


def check_csrf(user: ConsoleUser, presented: str | None) -> None:
    if not presented or not hmac.compare_digest(presented.encode(), user.csrf.encode()):
        raise ConsoleForbidden("the form's CSRF token does not match this session; reload")


def check_write(user: ConsoleUser) -> None:
    if not user.can_write:
        raise ConsoleForbidden(f"the key {user.key.name!r} is read-only: it cannot change things")


def login_token(request: Request) -> str:
    """The sign-in form's token, kept in a short-lived cookie of its own (double submit)."""
    token = request.cookies.get(LOGIN_COOKIE)
    return token if token and len(token) <= 64 else secrets.token_urlsafe(24)


def set_login_token(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path=COOKIE_PATH,
        httponly=True,
        secure=is_https(request),
        samesite="strict",
    )


def check_login_token(request: Request, presented: str | None) -> None:
    expected = request.cookies.get(LOGIN_COOKIE)
    if not expected or not presented or not hmac.compare_digest(presented, expected):
        raise ConsoleForbidden("the sign-in form expired; reload it and try again")
