"""A command's history options, as the api takes them and as run specs and tasks carry them.

The same models serve a job once jobs track changes: they hold plain values (patterns,
an engine name, a template) and know nothing of where they are stored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import regex
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

#: Bounds on what a user may hand the regex engine: every pattern runs on every output.
MAX_PATTERNS = 50
MAX_PATTERN_LENGTH = 512
MAX_TEMPLATE_LENGTH = 65_536


def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """A pattern as netcron applies it: Python ``re`` syntax, multi-line (``^`` starts a
    line), on the ``regex`` engine, whose matching takes a time limit."""
    return regex.compile(pattern, regex.MULTILINE | regex.VERSION0)


def _compiles(pattern: str) -> str:
    try:
        compile_pattern(pattern)
    except regex.error as exc:
        raise ValueError(f"invalid regex: {exc}") from None
    return pattern


Pattern = Annotated[
    str, Field(min_length=1, max_length=MAX_PATTERN_LENGTH), AfterValidator(_compiles)
]
Patterns = Annotated[list[Pattern], Field(max_length=MAX_PATTERNS)]


def ttp_error(template: str) -> str | None:
    """Why a TTP template does not compile (or is not accepted), or None when it does."""
    from ttp import ttp

    from netcron.history.templates import UnsafeTemplate, check_template

    try:
        check_template(template)
        ttp(template=template)
    except UnsafeTemplate as exc:
        return str(exc)
    except (Exception, SystemExit) as exc:
        # TTP exits the process on some malformed templates: never let it
        return f"{type(exc).__name__}: {exc}".rstrip(": ")
    return None


class ParseSpec(BaseModel):
    """How a run's output becomes records: ntc-templates' TextFSM, or a TTP template."""

    model_config = ConfigDict(extra="forbid")

    engine: Literal["textfsm", "ttp"] = Field(
        description="textfsm: the ntc-templates template for the platform and command; "
        "ttp: the `template` given here."
    )
    template: str | None = Field(
        None, max_length=MAX_TEMPLATE_LENGTH, description="The TTP template (engine ttp only)."
    )

    @model_validator(mode="after")
    def _template_fits_engine(self) -> ParseSpec:
        if self.engine == "ttp" and not self.template:
            raise ValueError("engine ttp needs a template")
        if self.engine == "textfsm" and self.template is not None:
            raise ValueError("engine textfsm takes no template (ntc-templates chooses one)")
        return self


class CheckedParseSpec(ParseSpec):
    """A parse spec from a client: a TTP template must compile (checked at the edge only)."""

    @model_validator(mode="after")
    def _template_compiles(self) -> CheckedParseSpec:
        if self.engine == "ttp" and self.template:
            error = ttp_error(self.template)
            if error:
                raise ValueError(f"template does not compile: {error}")
        return self


class HistoryOptions(BaseModel):
    """What a command (or a job) asks of its runs' output, as its run spec carries it."""

    track_changes: bool = False
    ignore_lines: list[str] = Field(default_factory=list)
    mask: list[str] = Field(default_factory=list)
    parse: ParseSpec | None = None


class ChangeTracking(BaseModel):
    """What the api needs to compare a run with the one before it: how to normalize it."""

    platform: str
    ignore_lines: list[str] = Field(default_factory=list)


#: A parsed record: what TextFSM or TTP made of the output.
Record = dict[str, Any]
