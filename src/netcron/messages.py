"""The broker contract: task and result messages on NATS JetStream (versioned JSON).

Publishers set ``Nats-Msg-Id`` from :meth:`msg_id`, so a retried publish inside the
stream's duplicate window is dropped by the broker instead of being run twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from netcron.history.options import ParseSpec
from netcron.platforms import ErrorKind, HostKeyPolicy
from netcron.runs import RunStatus

TASKS_STREAM = "NETCRON_TASKS"
TASKS_SUBJECT_PREFIX = "netcron.tasks"
RESULTS_STREAM = "NETCRON_RESULTS"
RESULTS_SUBJECT_PREFIX = "netcron.results"
EXECUTORS_CONSUMER = "executors"
RELAY_CONSUMER = "relay"
#: Results of job runs: one subject per fire, read by that fire's dispatcher alone.
FIRE_RESULTS_STREAM = "NETCRON_FIRE_RESULTS"
FIRE_RESULTS_SUBJECT_PREFIX = "netcron.fires"


def fire_results_subject(fire_id: UUID) -> str:
    return f"{FIRE_RESULTS_SUBJECT_PREFIX}.{fire_id}"


class TaskMessage(BaseModel):
    """One attempt of one run, for an executor to carry out."""

    version: Literal[1] = 1
    run_id: str
    schedule_id: UUID | None = None
    device_id: UUID
    command_id: UUID | None = None
    job_id: UUID | None = None
    fire_id: UUID | None = Field(None, description="Set for a job's run: where its result goes.")
    attempt: int = Field(1, ge=1)
    scheduled_at: datetime
    deadline: datetime = Field(description="Past this moment the task is not started.")
    platform: str
    host: str
    port: int
    username: str | None = None
    credentials: str | None = Field(
        None, description="Fernet token of the device credentials; only the executor opens it."
    )
    command: str = Field(description="The rendered CLI line.")
    timeout: float = Field(gt=0, description="Seconds the command may take.")
    connect_timeout: float = Field(
        10.0, gt=0, description="Seconds to open the session (login included)."
    )
    host_key_policy: HostKeyPolicy = HostKeyPolicy.TRUST_ON_FIRST_USE
    host_key: str | None = Field(
        None, description="Expected host key fingerprint (SHA256:…); None: not known yet."
    )
    session_limit: int = Field(
        1, ge=1, description="Sessions to this device at once, across all executors."
    )
    mask: list[str] = Field(
        default_factory=list,
        description="The command's own secret patterns, masked with the platform's defaults.",
    )
    parse: ParseSpec | None = Field(None, description="Parse the output into records.")

    @property
    def subject(self) -> str:
        return f"{TASKS_SUBJECT_PREFIX}.{self.platform}"

    @property
    def msg_id(self) -> str:
        return f"{self.run_id}:{self.attempt}"


class ResultMessage(BaseModel):
    """What an executor reports about one attempt of one run.

    ``running`` is reported when the attempt starts; a final status when it ends.
    """

    version: Literal[1] = 1
    run_id: str
    schedule_id: UUID | None = None
    device_id: UUID
    command_id: UUID | None = None
    job_id: UUID | None = None
    fire_id: UUID | None = None
    scheduled_at: datetime
    attempt: int = Field(1, ge=1)
    status: RunStatus
    started_at: datetime | None = None
    finished_at: datetime | None = None
    output: str | None = None
    output_truncated: bool = False
    error: str | None = None
    error_kind: ErrorKind | None = None
    host_key: str | None = Field(
        None, description="Fingerprint of the host key the device presented (SHA256:…)."
    )
    parsed: list[dict[str, Any]] | None = None
    parse_error: str | None = None
    executor_id: str

    @classmethod
    def for_task(
        cls, task: TaskMessage, status: RunStatus, executor_id: str, **fields: object
    ) -> ResultMessage:
        """A result about ``task``, carrying its ids."""
        return cls.model_validate(
            {
                "run_id": task.run_id,
                "schedule_id": task.schedule_id,
                "device_id": task.device_id,
                "command_id": task.command_id,
                "job_id": task.job_id,
                "fire_id": task.fire_id,
                "scheduled_at": task.scheduled_at,
                "attempt": task.attempt,
                "status": status,
                "executor_id": executor_id,
                **fields,
            }
        )

    @property
    def subject(self) -> str:
        if self.fire_id is not None:
            return fire_results_subject(self.fire_id)
        return f"{RESULTS_SUBJECT_PREFIX}.{self.schedule_id}"

    @property
    def msg_id(self) -> str:
        return f"{self.run_id}:{self.attempt}:{self.status.value}"


#: Device checks are NATS request/reply: the api asks, one executor (queue group
#: ``executors``) answers.
CHECKS_SUBJECT = "netcron.checks"
CHECKS_QUEUE = "executors"


class CheckRequest(BaseModel):
    """Check one device now: can it be reached, logged into, and what is it?"""

    version: Literal[1] = 1
    device_id: UUID
    platform: str
    host: str
    port: int
    username: str | None = None
    credentials: str | None = Field(None, description="Fernet token, as on a task.")
    connect_timeout: float = Field(10.0, gt=0)
    host_key_policy: HostKeyPolicy = HostKeyPolicy.TRUST_ON_FIRST_USE
    host_key: str | None = None
    session_limit: int = Field(
        1, ge=1, description="As on a task: a check's session counts against it."
    )


class CheckResult(BaseModel):
    """What a check found; nothing secret."""

    version: Literal[1] = 1
    device_id: UUID
    checked_at: datetime
    ok: bool = Field(description="Reached, logged in, and the host key is acceptable.")
    reachable: bool = Field(description="A TCP connection to host:port opened.")
    connect_ms: float | None = Field(None, description="TCP connect latency.")
    login: Literal["ok", "failed", "not_tried"] = "not_tried"
    host_key: str | None = Field(None, description="Fingerprint the device presented.")
    prompt: str | None = None
    platform: str | None = Field(None, description="The platform read from the device.")
    software_version: str | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    executor_id: str
