"""Label selectors: which devices a job targets, as a model, a SQL condition and a test.

``labels``: every key must match (a list of values matches any of them); ``devices``:
these ids as well; ``exclude_labels``: a device matching any one of these pairs is left
out; ``all``: every device. Evaluated at each fire, so a device added later with
matching labels is in the next fire and a deleted one is not.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import ColumnElement, and_, false, not_, or_, true, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from netcron.db.models import Device

LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
LabelValue = Annotated[str, StringConstraints(max_length=256)]
Values = LabelValue | Annotated[list[LabelValue], Field(min_length=1, max_length=100)]


def _has(key: str, value: str) -> ColumnElement[bool]:
    return type_coerce(Device.labels, JSONB).contains({key: value})


def _values(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


class Target(BaseModel):
    """The devices a job runs on."""

    model_config = ConfigDict(extra="forbid")

    all: bool = Field(False, description="Every device (exclude_labels still apply).")
    labels: dict[LabelKey, Values] = Field(
        default_factory=dict,
        examples=[{"site": "ams1", "role": ["core", "edge"]}],
        description="Every key must match; a list of values matches any of them.",
    )
    devices: list[uuid.UUID] = Field(
        default_factory=list, max_length=10_000, description="These devices as well (ids)."
    )
    exclude_labels: dict[LabelKey, Values] = Field(
        default_factory=dict,
        examples=[{"state": ["maintenance", "retired"]}],
        description="Leave out a device that matches any one of these pairs.",
    )

    @model_validator(mode="after")
    def _names_something(self) -> Target:
        if not (self.all or self.labels or self.devices):
            raise ValueError("the selector is empty: give labels, devices, or all=true")
        if len(set(self.devices)) != len(self.devices):
            raise ValueError("devices: an id appears twice")
        return self

    def condition(self) -> ColumnElement[bool]:
        """The selector as a condition on ``devices`` (JSONB containment, index-friendly)."""
        chosen: list[ColumnElement[bool]] = []
        if self.all:
            chosen.append(true())
        if self.labels:
            chosen.append(
                and_(
                    *(
                        or_(*(_has(key, v) for v in _values(value)))
                        for key, value in self.labels.items()
                    )
                )
            )
        if self.devices:
            chosen.append(Device.id.in_(self.devices))
        included = or_(*chosen) if chosen else false()
        excluded = [
            _has(key, v) for key, value in self.exclude_labels.items() for v in _values(value)
        ]
        return and_(included, not_(or_(*excluded))) if excluded else included

    def matches(self, device_id: uuid.UUID, labels: Mapping[str, Any]) -> bool:
        """The same rule in Python (tests check the two agree)."""
        if any(labels.get(k) in _values(v) for k, v in self.exclude_labels.items()):
            return False
        by_labels = bool(self.labels) and all(
            labels.get(k) in _values(v) for k, v in self.labels.items()
        )
        return self.all or by_labels or device_id in self.devices


def parse_label_filters(filters: list[str]) -> dict[str, list[str]]:
    """``GET /devices?label=site:ams1&label=role:core``: repeated keys match any value."""
    selector: dict[str, list[str]] = {}
    for item in filters:
        key, sep, value = item.partition(":")
        if not sep or not key:
            raise ValueError(f"{item!r} is not key:value")
        selector.setdefault(key, []).append(value)
    return selector
