"""Schemathesis against the app's own OpenAPI schema: no 5xx, responses match the schema.

The app runs for real (uvicorn, real PostgreSQL, lifespan) with Temporal replaced by the
in-memory orchestrator; every request carries a full-scope API key. Examples per
operation are bounded so the run stays short.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from netcron.config import Settings

from .conftest import ADMIN_KEY, replica, serving

MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def served(settings: Settings, nats_url: str) -> Iterator[str]:
    """The api with every dependency up, so that /ready answers 200 like the rest."""
    with serving(replica(settings, nats_url)) as base:
        yield base


@pytest.fixture(scope="module")
def api_schema(served: str) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
    schema.config.base_url = served
    return schema


#: Endpoints that answer with an endless stream; their own tests cover them.
STREAMS = {"/events"}
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def test_no_server_error_and_responses_match_the_schema(
    api_schema: schemathesis.BaseSchema,
) -> None:
    """Every operation, MAX_EXAMPLES generated cases each; the first failure fails the test."""
    operations = [
        operation
        for operation in (result.ok() for result in api_schema.get_all_operations())
        if operation.path not in STREAMS
    ]
    calls = 0

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(headers={"X-API-Key": ADMIN_KEY}, checks=CHECKS)

        run()
    print(f"fuzzed {len(operations)} operations with {calls} cases")
    assert len(operations) >= 15
    assert calls >= len(operations)


def test_the_fuzzed_api_still_answers(served: str) -> None:
    assert httpx.get(f"{served}/health").status_code == 200
