"""Which events a webhook receives: its event types, and its label selector."""

from __future__ import annotations

from typing import Any

from netcron.events import Event
from netcron.runs import RunStatus

#: Device checks that fail are delivered under this type (their event is ``device.checked``).
CHECK_FAILED = "device.check_failed"
TEST = "webhook.test"

#: Every type a webhook may ask for. ``run.changed`` (config history) and the ``fire.*``
#: types (fleets) are accepted before the code that publishes them exists.
EVENT_TYPES = frozenset(
    {f"run.{status.value}" for status in RunStatus}
    | {"run.changed", "fire.started", "fire.finished"}
    | {f"device.{what}" for what in ("created", "updated", "deleted", "checked")}
    | {CHECK_FAILED}
    | {f"command.{what}" for what in ("created", "updated", "deleted")}
    | {f"schedule.{what}" for what in ("created", "updated", "deleted", "paused", "resumed")}
)


def delivered_as(event: Event, event_types: list[str]) -> str | None:
    """The type under which a webhook asking for ``event_types`` gets ``event``, if any.

    A failed device check is ``device.checked`` to those who asked for every check, and
    ``device.check_failed`` to those who asked only for failures.
    """
    if event.type in event_types:
        return event.type
    if event.type == "device.checked" and not event.data.get("ok", True):
        return CHECK_FAILED if CHECK_FAILED in event_types else None
    return None


def selects(selector: dict[str, Any], labels: dict[str, Any] | None) -> bool:
    """An empty selector selects everything; otherwise every pair must be in ``labels``.

    ``labels`` are those of the event's device, or those the event carries in
    ``data.labels`` (fleets); None when it has neither (a deleted device, say), which
    only a webhook without a selector receives.
    """
    if not selector:
        return True
    return labels is not None and all(labels.get(key) == value for key, value in selector.items())
