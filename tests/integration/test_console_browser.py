"""The web console in a real browser (Playwright driving the system's Chromium) on the real
stack: sign in, create a device, command and schedule, watch runs arrive without a
reload, read an output, compare two outputs, pause, and run a job. Any console error or
uncaught page error fails the test.

Set ``NETCRON_CONSOLE_SCREENSHOTS=<dir>`` to save screenshots of the main pages there
(the README's come from ``docs/console/``).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from netcron.dev import DevStack

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("NETCRON_CHROMIUM", "/usr/bin/chromium")
SHOTS = os.environ.get("NETCRON_CONSOLE_SCREENSHOTS")
HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned=2">\x1b[31mred\x1b[0m'

try:
    from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None  # type: ignore[assignment]


def _why_no_browser() -> str | None:
    if sync_playwright is None:
        return "the browser tests need the playwright package (pip install 'netcron[test]')"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return (
            f"no Chromium at {CHROMIUM}: install Debian's chromium and chromium-driver "
            "(make test does where apt-get works), or set NETCRON_CHROMIUM"
        )
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = _why_no_browser()
    if reason:
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, stack: DevStack) -> Iterator[Page]:
    """A fresh browser context; the test fails on any console error or page error."""
    context = browser.new_context(
        base_url=stack.api_url, viewport={"width": 1280, "height": 860}, locale="en-GB"
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text} ({message.location.get('url')})")

    opened = context.new_page()
    opened.set_default_timeout(10_000)
    opened.on("console", on_console)
    opened.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    opened.on("dialog", lambda dialog: dialog.accept())
    yield opened
    context.close()
    assert not errors, errors


def sign_in(page: Page, stack: DevStack) -> None:
    page.goto("/ui")
    expect(page).to_have_url(f"{stack.api_url}/ui/login?next=/ui")
    page.get_by_label("API key", exact=True).fill(stack.api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=False)


def api(stack: DevStack) -> httpx.Client:
    return httpx.Client(base_url=stack.api_url, headers={"X-API-Key": stack.api_key}, timeout=10)


def record(
    stack: DevStack,
    device_id: str,
    schedule_id: str,
    command_id: str,
    minutes_ago: int,
    output: str,
) -> str:
    """A finished run with this output, recorded as the worker records runs."""
    at = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).replace(microsecond=0)
    run_id = f"{schedule_id}:{int(at.timestamp())}"
    body: dict[str, Any] = {
        "run_id": run_id,
        "command_id": command_id,
        "status": "succeeded",
        "scheduled_at": at.isoformat(),
        "started_at": (at + timedelta(milliseconds=4)).isoformat(),
        "finished_at": (at + timedelta(milliseconds=320)).isoformat(),
        "output": output,
        "executor_id": "bench-host:1",
        "command": "show running-config",
        # as the worker sends it for a command that tracks changes
        "tracking": {"platform": "cisco_ios"},
    }
    with api(stack) as client:
        response = client.post(f"/devices/{device_id}/schedules/{schedule_id}/result", json=body)
        assert response.status_code == 200, response.text
    return run_id


def test_a_schedule_made_in_the_console_shows_its_runs_live(page: Page, stack: DevStack) -> None:
    sign_in(page, stack)
    name = f"console-{uuid.uuid4().hex[:6]}"
    page.get_by_role("link", name="Devices", exact=True).click()
    page.get_by_role("link", name="New device").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Host (IP address or DNS name)", exact=True).fill("192.0.2.10")
    page.get_by_label("Platform", exact=True).select_option("cisco_ios")
    page.get_by_label("Username", exact=True).fill("netops")
    page.get_by_label("Password", exact=True).fill("s3cret-pw")
    page.get_by_label("Labels (key:value, separated by spaces)", exact=True).fill(
        "site:ams1 role:edge"
    )
    page.get_by_role("button", name="Create device").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    device_url = page.url.split("?")[0]

    page.get_by_label("Name", exact=True).fill("version")
    page.get_by_label("Command", exact=True).fill("show version")
    page.get_by_role("button", name="Add command").click()
    expect(page.get_by_role("heading", name="version show version")).to_be_visible()
    expect(page.locator("#runs")).to_contain_text("No runs yet")

    # Nothing below reloads the page: a marker on window would not survive one.
    page.evaluate("window.stayed = true")
    page.get_by_text("Add a schedule").click()
    page.get_by_label("Cron", exact=True).fill("*/2 * * * * *")
    page.get_by_role("button", name="Add schedule").click()
    page.wait_for_url(f"{device_url}?note=created")
    page.evaluate("window.stayed = true")
    expect(page.locator("#live-state")).to_have_text("live")
    expect(page.locator("#runs").get_by_text("succeeded").first).to_be_visible(timeout=15_000)
    assert page.evaluate("window.stayed") is True
    shot(page, "device")

    page.locator("#runs a").first.click()
    expect(page.get_by_role("heading", name="Run succeeded")).to_be_visible()
    expect(page.locator("#output")).to_contain_text("Cisco")
    expect(page.get_by_role("link", name="Download")).to_be_visible()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "Cisco" in copied
    shot(page, "run")

    page.goto(device_url)
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("[data-schedule]").get_by_text("paused")).to_be_visible()
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    page.get_by_role("button", name="Check now").click()
    expect(page.get_by_text("Check done")).to_be_visible()
    expect(page.locator(".facts")).to_contain_text("login ok")

    page.goto("/ui")
    expect(page.locator("#overview")).to_contain_text(name)
    shot(page, "overview")
    page.goto("/ui/devices?labels=site:ams1")
    expect(page.get_by_role("link", name=name)).to_be_visible()
    shot(page, "devices")


def test_device_output_and_a_diff_render_as_text(page: Page, stack: DevStack) -> None:
    with api(stack) as client:
        device = client.post(
            "/devices",
            json={
                "name": f"diff-{uuid.uuid4().hex[:6]}",
                "host": "192.0.2.20",
                "platform": "cisco_ios",
            },
        ).json()
        command = client.post(
            f"/devices/{device['id']}/commands",
            json={"name": "config", "text": "show running-config", "track_changes": True},
        ).json()
        schedule = client.post(
            f"/devices/{device['id']}/commands/{command['id']}/schedules",
            json={"cron": "0 0 1 1 *", "is_active": False},
        ).json()
    ids = (device["id"], schedule["id"], command["id"])
    old = (
        "hostname r1\n! Last configuration change at 10:00:01\ninterface Gi0/1\n"
        " description uplink\n"
    )
    new = (
        "hostname r1\n! Last configuration change at 11:00:07\ninterface Gi0/1\n"
        f" description core\n shutdown\n{HOSTILE}\n"
    )
    record(stack, *ids, minutes_ago=10, output=old)
    run_id = record(stack, *ids, minutes_ago=5, output=new)

    sign_in(page, stack)
    page.goto(f"/ui/devices/{device['id']}")
    versions = page.locator("table.versions")
    expect(versions.locator("tbody tr")).to_have_count(2)
    versions.get_by_role("link", name="diff with the version before").click()
    expect(page.locator("#diff tr.d-added").first).to_contain_text("description core")
    page.goto(f"/ui/devices/{device['id']}/runs/{run_id}")
    output = page.locator("#output")
    expect(output).to_contain_text("<script>window.pwned = 1</script>")
    expect(output).to_contain_text("^[[31mred^[[0m")
    assert page.evaluate("window.pwned") is None
    assert page.locator("main script, main img").count() == 0

    page.get_by_role("link", name="Diff with the previous run").click()
    diff = page.locator("#diff")
    expect(diff.locator("tr.d-removed")).to_contain_text(["description uplink"])
    expect(diff.locator("tr.d-added").first).to_contain_text("description core")
    expect(diff).not_to_contain_text("Last configuration change")
    expect(page.get_by_text("2 volatile lines hidden")).to_be_visible()
    shot(page, "diff-unified")
    page.get_by_role("link", name="Side by side").click()
    expect(page.locator("#diff.side td.d-added").first).to_contain_text("description core")
    shot(page, "diff-side")
    page.get_by_role("link", name="Show volatile lines").click()
    expect(page.locator("#diff")).to_contain_text("Last configuration change at 11:00:07")
    assert page.evaluate("window.pwned") is None


def test_a_job_run_from_the_console_shows_its_fire_live(page: Page, stack: DevStack) -> None:
    site = f"s{uuid.uuid4().hex[:6]}"
    with api(stack) as client:
        for index in range(3):
            response = client.post(
                "/devices",
                json={
                    "name": f"{site}-sw-{index}",
                    "host": f"192.0.2.{30 + index}",
                    "platform": "arista_eos",
                    "labels": {"site": site},
                },
            )
            assert response.status_code == 201, response.text
    sign_in(page, stack)
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.get_by_role("link", name="New job").click()
    page.get_by_label("Name", exact=True).fill(f"{site}-backup")
    page.get_by_label("Command (placeholders").fill("show running-config")
    page.get_by_label("Target labels").fill(f"site:{site}")
    page.get_by_label("Cron", exact=True).fill("0 3 * * *")
    page.get_by_role("button", name="Create job").click()
    expect(page.get_by_role("heading", name="Targets now (3)")).to_be_visible()
    page.evaluate("window.stayed = true")
    expect(page.locator("#live-state")).to_have_text("live")
    page.get_by_role("button", name="Run now").click()
    page.evaluate("window.stayed = true")
    expect(page.locator("#fires").get_by_text("3/3")).to_be_visible(timeout=20_000)
    expect(page.locator("#fires").get_by_text("finished")).to_be_visible(timeout=20_000)
    assert page.evaluate("window.stayed") is True
    shot(page, "job")
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    page.goto("/ui/jobs")
    shot(page, "jobs")


def test_reading_pages_work_without_javascript(browser: Browser, stack: DevStack) -> None:
    context = browser.new_context(base_url=stack.api_url, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        page.goto("/ui/login")
        page.get_by_label("API key", exact=True).fill(stack.api_key)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
        page.get_by_role("link", name="Devices", exact=True).click()
        expect(page.get_by_role("heading", name="Devices", exact=True)).to_be_visible()
        page.get_by_label("Name", exact=True).fill("console-")
        page.get_by_role("button", name="Search").click()
        expect(page).to_have_url(re.compile(r"q=console-"))
        first = page.locator("#device-list tbody a").first
        first.click()
        expect(page.locator("#runs")).to_be_visible()
        page.get_by_role("link", name="Jobs", exact=True).click()
        expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
    finally:
        context.close()


def test_the_console_is_usable_from_the_keyboard(page: Page, stack: DevStack) -> None:
    page.goto("/ui/login")
    expect(page.get_by_label("API key", exact=True)).to_be_focused()  # autofocus
    page.keyboard.type(stack.api_key)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Devices", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{stack.api_url}/ui/devices")
    expect(page.get_by_role("heading", name="Devices", exact=True)).to_be_visible()


@pytest.mark.skipif(not SHOTS, reason="screenshots only when NETCRON_CONSOLE_SCREENSHOTS is set")
def test_screenshots_of_a_small_estate(page: Page, stack: DevStack) -> None:
    """The README's overview, devices and jobs pictures, over a few devices of two sites."""
    with api(stack) as client:
        made = []
        for index, (site, role, platform) in enumerate(
            [
                ("ams1", "core", "cisco_xe"),
                ("ams1", "access", "arista_eos"),
                ("ams1", "access", "arista_eos"),
                ("fra2", "core", "juniper_junos"),
                ("fra2", "edge", "cisco_xr"),
                ("fra2", "access", "cisco_nxos"),
            ]
        ):
            device = client.post(
                "/devices",
                json={
                    "name": f"{site}-{role}-{index + 1:02d}",
                    "host": f"10.{20 + index}.0.1",
                    "platform": platform,
                    "labels": {"site": site, "role": role},
                },
            ).json()
            command = client.post(
                f"/devices/{device['id']}/commands",
                json={"name": "config", "text": "show running-config"},
            ).json()
            schedule = client.post(
                f"/devices/{device['id']}/commands/{command['id']}/schedules",
                json={"cron": "*/3 * * * * *"},
            ).json()
            made.append((device, command, schedule))
        device, command, schedule = made[4]
        client.patch(
            f"/devices/{device['id']}/commands/{command['id']}/schedules/{schedule['id']}",
            json={"is_active": False},
        )
        at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=15)
        failed = {
            "run_id": f"{schedule['id']}:{int(at.timestamp())}",
            "command_id": command["id"],
            "status": "failed",
            "scheduled_at": at.isoformat(),
            "started_at": at.isoformat(),
            "finished_at": (at + timedelta(seconds=10)).isoformat(),
            "error": "no answer from 10.24.0.1:22 within 10 s",
            "error_kind": "unreachable",
            "executor_id": "vm:4711",
        }
        client.post(f"/devices/{device['id']}/schedules/{schedule['id']}/result", json=failed)
        job = client.post(
            "/jobs",
            json={
                "name": "ams1-nightly-backup",
                "command": "show running-config",
                "target": {"labels": {"site": "ams1"}},
                "cron": "0 2 * * *",
                "timezone": "Europe/Amsterdam",
                "concurrency": {"max_in_flight": 5},
            },
        ).json()
        client.post(f"/jobs/{job['id']}/runs")
    sign_in(page, stack)
    page.wait_for_timeout(7_000)  # a few fires of every schedule
    page.goto("/ui")
    shot(page, "overview")
    page.goto("/ui/devices?labels=site:ams1+site:fra2")
    shot(page, "devices")
    page.goto(f"/ui/jobs/{job['id']}")
    expect(page.locator("#fires").get_by_text("finished")).to_be_visible(timeout=20_000)
    shot(page, "job")
    page.goto("/ui/jobs")
    shot(page, "jobs")
    with api(stack) as client:
        for device, _, _ in made:
            client.delete(f"/devices/{device['id']}")
        client.delete(f"/jobs/{job['id']}")
