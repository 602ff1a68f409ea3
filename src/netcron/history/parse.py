"""Parsed output: records from TextFSM (ntc-templates, by platform and command) or TTP.

Runs in the executor, on the masked output, beside the text: a parse failure becomes the
run's ``parse_error`` and never fails the run.
"""

from __future__ import annotations

import json
from typing import Any

from netcron.history.options import ParseSpec, Record
from netcron.history.templates import check_template

#: netcron platforms that ntc-templates files under another name.
NTC_PLATFORMS = {"cisco_xe": "cisco_ios"}


def parse(
    text: str, platform: str, command: str, spec: ParseSpec, max_bytes: int
) -> tuple[list[Record] | None, str | None]:
    """``(records, None)``, or ``(None, why)`` when the output could not be parsed."""
    try:
        if spec.engine == "textfsm":
            records = _textfsm(text, platform, command)
        else:
            assert spec.template is not None
            records = _ttp(text, spec.template)
    except (Exception, SystemExit) as exc:
        # SystemExit: TTP's answer to some malformed templates, never the executor's exit
        return None, f"{spec.engine}: {_first_line(exc)}"
    size = len(json.dumps(records, default=str).encode())
    if size > max_bytes:
        return None, f"{spec.engine}: parsed output is {size} bytes, over the {max_bytes} kept"
    return records, None


def _textfsm(text: str, platform: str, command: str) -> list[Record]:
    from ntc_templates.parse import parse_output

    records = parse_output(
        platform=NTC_PLATFORMS.get(platform, platform), command=command, data=text
    )
    return [dict(record) for record in records]


def _ttp(text: str, template: str) -> list[Record]:
    from ttp import ttp

    check_template(template)  # the api checked it; a task could come from elsewhere
    parser = ttp(data=text, template=template)
    parser.parse()
    return _records(parser.result())


def _records(result: Any) -> list[Record]:
    """TTP nests results per template and per input; a run has one of each."""
    found = result[0][0] if result and result[0] else []
    if isinstance(found, dict):
        return [found]
    return [item if isinstance(item, dict) else {"value": item} for item in found]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
