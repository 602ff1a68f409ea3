"""Device checks: can netcron reach the device, log in, and what does it say it is?

The api cannot answer that itself (only executors decrypt credentials and reach
devices), so it asks one executor over NATS request/reply and keeps the answer on the
device as ``last_check``.
"""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from netcron.api.auth import read_or_write
from netcron.api.deps import OrchestratorDep, SessionDep
from netcron.api.devices import get_device
from netcron.api.errors import ServiceUnavailable
from netcron.api.events import emit
from netcron.api.results import learn_host_key
from netcron.api.specs import device_target, lock_schedules
from netcron.db.models import Device, Schedule
from netcron.events import Event
from netcron.messages import CHECKS_SUBJECT, CheckRequest, CheckResult

log = logging.getLogger(__name__)
router = APIRouter(dependencies=[Depends(read_or_write)], tags=["devices"])

#: Beyond the device's connect timeout, what a check may take (login, `show version`).
CHECK_MARGIN = 20.0


def check_request(device: Device) -> CheckRequest:
    return CheckRequest(device_id=device.id, **device_target(device).model_dump())


@router.post("/devices/{device_id}/check", response_model=CheckResult)
async def check_device(
    device_id: uuid.UUID,
    session: SessionDep,
    orchestrator: OrchestratorDep,
    request: Request,
    background: BackgroundTasks,
) -> CheckResult:
    """Reach the device now: TCP, login, host key, prompt, platform and version.

    Answers within the device's connect timeout plus 20 s; a failed check is a 200 with
    ``ok: false`` and an ``error_kind``. The answer is kept as the device's ``last_check``.
    """
    device = await get_device(session, device_id)
    nc = request.app.state.nats
    if nc is None:
        raise ServiceUnavailable("the broker is not connected yet, so no executor can be asked")
    ask = check_request(device)
    try:
        reply = await nc.request(
            CHECKS_SUBJECT,
            ask.model_dump_json().encode(),
            timeout=device.connect_timeout + CHECK_MARGIN,
        )
    except NoRespondersError:
        raise ServiceUnavailable("no executor is running to check the device") from None
    except NatsTimeoutError:
        raise ServiceUnavailable("no executor answered the check in time") from None
    result = CheckResult.model_validate_json(reply.data)
    await lock_schedules(session, Schedule.device_id == device_id, for_delete=False)
    device = await get_device(session, device_id, lock=True)
    device.last_check = result.model_dump(mode="json")
    if result.login == "ok" and result.host_key is not None:
        await learn_host_key(session, orchestrator, background, device_id, result.host_key)
    log.info(
        "device check: %s",
        "ok" if result.ok else f"failed ({result.error_kind})",
        extra={"device_id": device_id},
    )
    emit(
        background,
        request,
        Event(
            type="device.checked",
            device_id=device_id,
            data={"ok": result.ok, "error_kind": result.error_kind, "login": result.login},
        ),
    )
    return result
