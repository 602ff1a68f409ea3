"""What PATCH bodies share: a field left out keeps its value, and null is no value."""

from __future__ import annotations


def not_null(value: object) -> object:
    if value is None:
        raise ValueError("may not be null; leave the field out to keep its value")
    return value
