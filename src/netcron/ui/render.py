"""Templates: Jinja2 with autoescape on, the filters pages use, and the security headers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from netcron.cron import next_fire_time
from netcron.ui.session import ConsoleUser

TEMPLATES = Path(__file__).parent / "templates"

#: C0 controls (but tab and newline), DEL and C1 controls: shown marked, so a device's
#: terminal escapes can neither hide text nor reach the reader's terminal on copy.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")

#: What every console response says about itself: no inline script or style, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _caret(code: int) -> str:
    """Caret notation (``^[`` for ESC, ``^?`` for DEL), as a terminal's ``cat -v`` shows them."""
    if code == 0x7F:
        return "^?"
    if code < 0x20:
        return "^" + chr(code + 0x40)
    return f"\\x{code:02x}"


def visible(text: str | None) -> Markup:
    """``text`` escaped, with each control character shown as a marked caret sequence.

    The text is escaped first and only constant markup is added afterwards, so nothing a
    device sent can become markup; an escape code shows as ``^[[31m`` and reaches no one's
    terminal through copy and paste.
    """
    if not text:
        return Markup("")

    def mark(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f'<span class="ctl" title="control character 0x{code:02x}">{_caret(code)}</span>'

    return Markup(_CONTROLS.sub(mark, str(escape(text))))


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "—"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        text = f"{seconds:.0f} s"
    elif seconds < 3600:
        text = f"{seconds / 60:.0f} min"
    elif seconds < 86400:
        text = f"{seconds / 3600:.1f} h"
    else:
        text = f"{seconds / 86400:.1f} d"
    return f"in {text}" if future else f"{text} ago"


def stamp(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def seconds(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    value = (end - start).total_seconds()
    return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"


def next_fire(schedule: Any) -> datetime | None:
    try:
        return next_fire_time(schedule.cron, schedule.timezone, datetime.now(UTC))
    except (ValueError, StopIteration):
        return None


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(visible=visible, ago=ago, stamp=stamp)
    env.globals.update(seconds=seconds, next_fire=next_fire)
    return env


ENV = _environment()


def page(
    request: Request,
    template: str,
    user: ConsoleUser | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a page; ``user`` decides whether change buttons and forms appear."""
    html = ENV.get_template(template).render(
        request=request,
        user=user,
        can_write=bool(user and user.can_write),
        csrf=user.csrf if user else "",
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
