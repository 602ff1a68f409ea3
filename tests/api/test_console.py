"""The web console (/ui) over ASGI: sign-in, CSRF, read-only keys, escaping, every page."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from netcron.db.models import Schedule
from tests.api.conftest import ADMIN_KEY, READ_KEY, WORKER_KEY

HOSTILE = "<script>alert('x')</script>\x1b[31mred\x1b[0m & \x07bell"


async def sign_in(client: httpx.AsyncClient, key: str) -> str:
    """Sign in through the form; the session's CSRF token."""
    form = await client.get("/ui/login")
    assert form.status_code == 200
    token = re.search(r'name="token" value="([^"]+)"', form.text)
    assert token is not None
    response = await client.post("/ui/login", data={"api_key": key, "token": token.group(1)})
    assert response.status_code == 303, response.text
    return await csrf_of(client)


async def csrf_of(client: httpx.AsyncClient, path: str = "/ui") -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no API key header: only the console's cookie speaks for it."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://netcron.test"
    ) as http:
        yield http


async def add_run(
    app: FastAPI,
    schedule: dict[str, Any],
    *,
    output: str,
    status: str = "succeeded",
    minutes_ago: float = 1,
    error_kind: str | None = None,
    tracking: bool = False,
) -> str:
    """A finished run, recorded as the worker records runs (whatever stores the output)."""
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    run_id = f"{schedule['id']}:{int(at.timestamp())}"
    record = {
        "run_id": run_id,
        "command_id": schedule["command_id"],
        "status": status,
        "scheduled_at": at.isoformat(),
        "started_at": (at + timedelta(milliseconds=3)).isoformat(),
        "finished_at": (at + timedelta(milliseconds=250)).isoformat(),
        "output": output,
        "error": "it broke" if status == "failed" else None,
        "error_kind": error_kind,
        "executor_id": "exec-1:42",
        "command": "show running-config",
        "tracking": {"platform": "cisco_ios"} if tracking else None,
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://netcron.test",
        headers={"X-API-Key": WORKER_KEY},
    ) as worker:
        path = f"/devices/{schedule['device_id']}/schedules/{schedule['id']}/result"
        response = await worker.post(path, json=record)
        assert response.status_code == 200, response.text
    return run_id


async def test_pages_send_a_visitor_without_session_to_sign_in(
    browser: httpx.AsyncClient,
) -> None:
    for path in ("/ui", "/ui/devices", f"/ui/devices/{uuid.uuid4()}", "/ui/jobs"):
        response = await browser.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/ui/login?next=/ui")


async def test_the_console_answers_with_and_without_its_trailing_slash(
    browser: httpx.AsyncClient,
) -> None:
    assert (await browser.get("/ui/")).headers["location"] == "/ui"
    assert (await browser.get("/ui")).headers["location"] == "/ui/login?next=/ui"


async def test_an_api_key_header_is_not_a_console_session(client: httpx.AsyncClient) -> None:
    assert (await client.get("/ui/devices")).status_code == 303


async def test_sign_in_keeps_the_key_in_an_httponly_strict_cookie_only(
    browser: httpx.AsyncClient,
) -> None:
    form = await browser.get("/ui/login")
    token = re.search(r'name="token" value="([^"]+)"', form.text)
    assert token is not None
    response = await browser.post("/ui/login", data={"api_key": ADMIN_KEY, "token": token.group(1)})
    cookie = next(
        v
        for k, v in response.headers.multi_items()
        if k == "set-cookie" and "netcron_console=" in v
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    assert ADMIN_KEY not in cookie
    page = await browser.get("/ui")
    assert page.status_code == 200
    assert ADMIN_KEY not in page.text


async def test_the_cookie_is_secure_over_https(app: FastAPI) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://netcron.test"
    ) as https:
        form = await https.get("/ui/login")
        token = re.search(r'name="token" value="([^"]+)"', form.text)
        assert token is not None
        response = await https.post(
            "/ui/login", data={"api_key": ADMIN_KEY, "token": token.group(1)}
        )
        cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
        assert any("netcron_console=" in c and "Secure" in c for c in cookies)


async def test_a_wrong_key_or_a_missing_form_token_does_not_sign_in(
    browser: httpx.AsyncClient,
) -> None:
    form = await browser.get("/ui/login")
    token = re.search(r'name="token" value="([^"]+)"', form.text)
    assert token is not None
    wrong = await browser.post("/ui/login", data={"api_key": "nope", "token": token.group(1)})
    assert wrong.status_code == 401
    forged = await browser.post("/ui/login", data={"api_key": ADMIN_KEY, "token": "forged"})
    assert forged.status_code == 403
    results_only = await browser.post(
        "/ui/login", data={"api_key": WORKER_KEY, "token": token.group(1)}
    )
    assert results_only.status_code == 401
    assert (await browser.get("/ui")).status_code == 303


async def test_sign_out_ends_the_session_even_for_a_copy_of_its_cookie(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    csrf = await sign_in(browser, ADMIN_KEY)
    copied = browser.cookies.get("netcron_console")
    assert copied
    response = await browser.post("/ui/logout", data={"csrf": csrf})
    assert response.status_code == 303
    assert (await browser.get("/ui")).status_code == 303
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://netcron.test",
        cookies={"netcron_console": copied},
    ) as thief:
        assert (await thief.get("/ui")).status_code == 303


async def test_a_made_up_cookie_opens_nothing(app: FastAPI) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://netcron.test",
        cookies={"netcron_console": "x" * 43},
    ) as forger:
        assert (await forger.get("/ui")).status_code == 303


async def test_a_change_without_the_csrf_token_is_refused(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, device: dict[str, Any]
) -> None:
    await sign_in(browser, ADMIN_KEY)
    for data in ({}, {"csrf": "not-the-token"}):
        response = await browser.post(f"/ui/devices/{device['id']}/delete", data=data)
        assert response.status_code == 403
    assert (await client.get(f"/devices/{device['id']}")).status_code == 200


async def test_a_read_only_key_sees_no_change_buttons_and_cannot_change(
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    schedule: dict[str, Any],
) -> None:
    csrf = await sign_in(browser, READ_KEY)
    device_id = schedule["device_id"]
    for path in ("/ui/devices", f"/ui/devices/{device_id}", "/ui/jobs"):
        page = await browser.get(path)
        assert page.status_code == 200
        assert "read-only" in page.text
        for action in ("Delete", "Pause", "Run now", "New device", "Check now", "Add a command"):
            assert f">{action}<" not in page.text, (path, action)
    base = f"/ui/devices/{device_id}/commands/{schedule['command_id']}/schedules/{schedule['id']}"
    for path in (f"{base}/pause", f"/ui/devices/{device_id}/delete", "/ui/devices"):
        response = await browser.post(path, data={"csrf": csrf, "name": "x"})
        assert response.status_code == 403, path
    assert (await client.get(f"/devices/{device_id}")).status_code == 200
    still = await client.get(f"/devices/{device_id}/commands/{schedule['command_id']}/schedules")
    assert still.json()["items"][0]["is_active"] is True


async def test_device_output_renders_as_text_on_every_page(
    app: FastAPI, browser: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    await add_run(app, schedule, output="hostname r1\n", minutes_ago=5)
    run_id = await add_run(app, schedule, output=f"hostname r1\n{HOSTILE}\n", status="failed")
    await sign_in(browser, ADMIN_KEY)
    device_id = schedule["device_id"]
    base = f"/ui/devices/{device_id}/runs/{run_id}"
    for path in (base, f"{base}/diff", f"{base}/diff?view=side", "/ui"):
        page = await browser.get(path)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text
        assert "\x1b" not in page.text and "\x07" not in page.text
        if path != "/ui":
            assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text
            assert '0x1b">^[</span>[31mred' in page.text  # ESC shown, marked, as ^[
        assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_the_output_downloads_as_stored(
    app: FastAPI, browser: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    run_id = await add_run(app, schedule, output=HOSTILE)
    await sign_in(browser, ADMIN_KEY)
    response = await browser.get(f"/ui/devices/{schedule['device_id']}/runs/{run_id}/output")
    assert response.status_code == 200
    assert response.text == HOSTILE
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_every_reading_page_answers(
    app: FastAPI,
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    schedule: dict[str, Any],
) -> None:
    run_id = await add_run(app, schedule, output="ok\n", status="failed", error_kind="unreachable")
    job = await client.post(
        "/jobs",
        json={
            "name": "backup",
            "command": "show run",
            "target": {"all": True},
            "cron": "0 2 * * *",
        },
    )
    assert job.status_code == 201, job.text
    fire = await client.post(f"/jobs/{job.json()['id']}/runs")
    assert fire.status_code == 202, fire.text
    await sign_in(browser, ADMIN_KEY)
    device_id = schedule["device_id"]
    pages = [
        "/ui",
        "/ui/devices",
        "/ui/devices?q=edge&labels=",
        "/ui/devices/new",
        f"/ui/devices/{device_id}",
        f"/ui/devices/{device_id}/edit",
        f"/ui/devices/{device_id}/runs/{run_id}",
        f"/ui/devices/{device_id}/runs/{run_id}/diff",
        "/ui/jobs",
        "/ui/jobs/new",
        f"/ui/jobs/{job.json()['id']}",
        f"/ui/jobs/{job.json()['id']}/fires/{fire.json()['fire_id']}",
    ]
    for path in pages:
        response = await browser.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert response.headers["content-type"].startswith("text/html")
    overview = await browser.get("/ui")
    assert "edge-1" in overview.text  # a failing device
    assert "exec-1:42" in overview.text


async def test_client_mistakes_are_pages_with_4xx(
    browser: httpx.AsyncClient, device: dict[str, Any]
) -> None:
    await sign_in(browser, ADMIN_KEY)
    assert (await browser.get(f"/ui/devices/{uuid.uuid4()}")).status_code == 404
    assert (await browser.get("/ui/devices/not-a-uuid")).status_code == 422
    assert (await browser.get(f"/ui/devices/{device['id']}/runs/nope")).status_code == 404
    assert (await browser.get("/ui/devices?labels=nocolon")).status_code == 422
    bad = await browser.get(f"/ui/devices/{device['id']}/runs/x/diff?view=sideways")
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("text/html")


async def test_a_device_is_created_edited_and_deleted_through_forms(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    csrf = await sign_in(browser, ADMIN_KEY)
    form = {
        "csrf": csrf,
        "name": "core-sw-9",
        "host": "10.9.9.9",
        "port": "22",
        "platform": "arista_eos",
        "username": "ops",
        "password": "pw-1",
        "labels": "site:ams1 role:core",
        "host_key_policy": "trust_on_first_use",
    }
    created = await browser.post("/ui/devices", data=form)
    assert created.status_code == 303, created.text
    device_id = created.headers["location"].split("/")[3].split("?")[0]
    stored = (await client.get(f"/devices/{device_id}")).json()
    assert stored["labels"] == {"site": "ams1", "role": "core"}
    assert stored["has_password"] is True

    invalid = await browser.post("/ui/devices", data=form | {"name": "x2", "host": "not a host"})
    assert invalid.status_code == 422
    assert "neither an IP address nor a valid DNS name" in invalid.text
    duplicate = await browser.post("/ui/devices", data=form)
    assert duplicate.status_code == 409

    edited = await browser.post(
        f"/ui/devices/{device_id}", data=form | {"host": "10.9.9.10", "password": ""}
    )
    assert edited.status_code == 303, edited.text
    stored = (await client.get(f"/devices/{device_id}")).json()
    assert stored["host"] == "10.9.9.10"
    assert stored["has_password"] is True  # left empty: kept

    found = await browser.get("/ui/devices?labels=site:ams1+role:core")
    assert "core-sw-9" in found.text
    assert "core-sw-9" not in (await browser.get("/ui/devices?labels=site:fra1")).text

    deleted = await browser.post(f"/ui/devices/{device_id}/delete", data={"csrf": csrf})
    assert deleted.status_code == 303
    assert (await client.get(f"/devices/{device_id}")).status_code == 404


async def test_a_schedule_is_added_paused_resumed_and_run_through_forms(
    app: FastAPI, browser: httpx.AsyncClient, command: dict[str, Any]
) -> None:
    csrf = await sign_in(browser, ADMIN_KEY)
    device_id, command_id = command["device_id"], command["id"]
    base = f"/ui/devices/{device_id}/commands/{command_id}/schedules"
    added = await browser.post(base, data={"csrf": csrf, "cron": "*/5 * * * *", "timezone": "UTC"})
    assert added.status_code == 303, added.text
    refused = await browser.post(base, data={"csrf": csrf, "cron": "every tuesday"})
    assert refused.status_code == 422
    async with app.state.sessionmaker() as session:
        schedule = await session.scalar(select(Schedule).where(Schedule.command_id == command_id))
    assert schedule is not None
    for action, active in (("pause", False), ("resume", True)):
        response = await browser.post(f"{base}/{schedule.id}/{action}", data={"csrf": csrf})
        assert response.status_code == 303
        async with app.state.sessionmaker() as session:
            row = await session.get(Schedule, schedule.id)
            assert row is not None and row.is_active is active
    assert (await browser.post(f"{base}/{schedule.id}/run", data={"csrf": csrf})).status_code == 303
    page = await browser.get(f"/ui/devices/{device_id}")
    assert "*/5 * * * *" in page.text


async def test_a_job_is_created_run_and_paused_through_forms(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, device: dict[str, Any]
) -> None:
    csrf = await sign_in(browser, ADMIN_KEY)
    created = await browser.post(
        "/ui/jobs",
        data={
            "csrf": csrf,
            "name": "nightly",
            "command": "show running-config",
            "labels": "",
            "all": "on",
            "cron": "0 2 * * *",
            "timezone": "Europe/Amsterdam",
        },
    )
    assert created.status_code == 303, created.text
    job_id = created.headers["location"].split("/")[3].split("?")[0]
    page = await browser.get(f"/ui/jobs/{job_id}")
    assert "Targets now (1)" in page.text and "edge-1" in page.text
    assert (await browser.post(f"/ui/jobs/{job_id}/run", data={"csrf": csrf})).status_code == 303
    assert (await browser.post(f"/ui/jobs/{job_id}/pause", data={"csrf": csrf})).status_code == 303
    assert (await client.get(f"/jobs/{job_id}")).json()["state"] == "paused"
    assert "No fires yet" not in (await browser.get(f"/ui/jobs/{job_id}")).text
    empty = await browser.post(
        "/ui/jobs", data={"csrf": csrf, "name": "none", "command": "x", "cron": "0 2 * * *"}
    )
    assert empty.status_code == 422


async def test_the_overview_counts_a_device_failing_until_a_later_run_succeeds(
    app: FastAPI, browser: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    await add_run(app, schedule, output="", status="failed", minutes_ago=20)
    await sign_in(browser, ADMIN_KEY)
    failing = await browser.get("/ui")
    assert re.search(r"Failing devices</h2><p class=\"big\">1<", failing.text)
    await add_run(app, schedule, output="ok", minutes_ago=10)
    recovered = await browser.get("/ui")
    assert re.search(r"Failing devices</h2><p class=\"big\">0<", recovered.text)
    assert 'Runs, last hour</h2><p class="big">2<' in recovered.text


CONFIG = (
    "hostname r1\n! Last configuration change at {clock}\ninterface Gi0/1\n description {what}\n"
)


async def test_configuration_versions_are_listed_each_with_its_diff(
    app: FastAPI,
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    schedule: dict[str, Any],
) -> None:
    command = f"/devices/{schedule['device_id']}/commands/{schedule['command_id']}"
    tracked = await client.patch(command, json={"track_changes": True})
    assert tracked.status_code == 200, tracked.text
    first = await add_run(
        app,
        schedule,
        output=CONFIG.format(clock="10:00", what="uplink"),
        minutes_ago=30,
        tracking=True,
    )
    await add_run(  # only a volatile line moved: no new version
        app,
        schedule,
        output=CONFIG.format(clock="10:30", what="uplink"),
        minutes_ago=25,
        tracking=True,
    )
    second = await add_run(
        app,
        schedule,
        output=CONFIG.format(clock="11:00", what="core"),
        minutes_ago=20,
        tracking=True,
    )
    await sign_in(browser, ADMIN_KEY)
    device_page = f"/ui/devices/{schedule['device_id']}"
    page = await browser.get(device_page)
    assert "Configuration history" in page.text
    assert page.text.count("/diff") >= 2  # two versions
    link = f"/runs/{quote(second, safe='')}/diff?against={quote(first, safe='')}"
    assert link in page.text
    diff = await browser.get(device_page + link)
    assert diff.status_code == 200
    assert "description uplink" in diff.text and "description core" in diff.text
    assert "Last configuration change" not in diff.text  # volatile, hidden


async def test_a_command_that_does_not_track_changes_lists_no_versions(
    app: FastAPI, browser: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    await add_run(app, schedule, output="hostname r1\n", minutes_ago=3)
    await sign_in(browser, ADMIN_KEY)
    page = await browser.get(f"/ui/devices/{schedule['device_id']}")
    assert "Configuration history" not in page.text


async def test_the_console_event_stream_needs_a_session(browser: httpx.AsyncClient) -> None:
    assert (await browser.get("/ui/events")).status_code == 303
    await sign_in(browser, ADMIN_KEY)
    # These tests run without NATS: the stream says so, as a page, with 503.
    response = await browser.get("/ui/events?device_id=not-a-uuid")
    assert response.status_code == 422
    assert (await browser.get("/ui/events")).status_code == 503
