"""The console's sign-in: an API key kept in an encrypted, HttpOnly session cookie, and CSRF.

The cookie holds a Fernet token (``NETCRON_SECRET_KEY``) of the key, a CSRF token and the
time of sign-in, so every api replica and worker process reads it alike and JavaScript
never sees the key. Each form carries the session's CSRF token; a change whose token does
not match is refused (403) before anything else happens.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from dataclasses import dataclass

from fastapi import Request, Response

from netcron.apikeys import ApiKey, find_key
from netcron.crypto import CredentialCipher, CredentialsUnreadable

COOKIE = "netcron_console"
#: A pre-session token for the sign-in form itself (login CSRF).
LOGIN_COOKIE = "netcron_console_login"
COOKIE_PATH = "/ui"
#: A session ends this long after sign-in, whatever happens in between.
SESSION_SECONDS = 12 * 3600


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
    issued: float

    @property
    def can_write(self) -> bool:
        return "write" in self.key.scopes


def _cipher(request: Request) -> CredentialCipher:
    cipher: CredentialCipher = request.app.state.cipher
    return cipher


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def open_session(request: Request, response: Response, key: ApiKey) -> None:
    """Sign in: a new cookie with a new CSRF token."""
    payload = {"k": key.key, "c": secrets.token_urlsafe(32), "t": time.time()}
    token = _cipher(request).encrypt_bytes(json.dumps(payload).encode()).decode()
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_SECONDS,
        path=COOKIE_PATH,
        httponly=True,
        secure=is_https(request),
        samesite="strict",
    )
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)


def close_session(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, httponly=True, secure=is_https(request), samesite="strict"
    )


def current_user(request: Request) -> ConsoleUser | None:
    """The session's user, or None: no cookie, a cookie this api did not make, an expired
    one, or one whose key is no longer configured."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        payload = json.loads(_cipher(request).decrypt_bytes(token.encode()))
        presented, csrf, issued = str(payload["k"]), str(payload["c"]), float(payload["t"])
    except (CredentialsUnreadable, ValueError, KeyError, TypeError):
        return None
    if not 0 <= time.time() - issued <= SESSION_SECONDS:
        return None
    key = find_key(request.app.state.api_keys, presented)
    if key is None or "read" not in key.scopes:
        return None
    return ConsoleUser(key=key, csrf=csrf, issued=issued)


async def signed_in(request: Request) -> ConsoleUser:
    """Dependency of every console page: the user, or a redirect to the sign-in form."""
    user = current_user(request)
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
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)


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
