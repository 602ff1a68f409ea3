"""Parsing with the shipped ntc-templates and with TTP; failures are reported, not raised."""

from __future__ import annotations

import pytest

from netcron.history.options import ParseSpec, ttp_error
from netcron.history.parse import parse
from netcron.simulator import outputs

TEXTFSM = ParseSpec(engine="textfsm")


@pytest.mark.parametrize(
    ("platform", "produce", "field", "expected"),
    [
        ("cisco_ios", outputs.ios_version(False), "hostname", "r1"),
        ("cisco_xe", outputs.ios_version(True), "hostname", "r1"),
        ("arista_eos", outputs.eos_version, "model", "DCS-7050SX3-48YC8"),
    ],
)
def test_show_version_parses_with_ntc_templates(
    platform: str, produce: object, field: str, expected: str
) -> None:
    assert callable(produce)
    records, error = parse(produce("r1", 1), platform, "show version", TEXTFSM, 1_000_000)
    assert error is None
    assert records is not None and records[0][field] == expected


@pytest.mark.parametrize(
    ("platform", "produce"),
    [("cisco_ios", outputs.ios_interfaces), ("arista_eos", outputs.eos_interfaces)],
)
def test_show_interfaces_parses_with_ntc_templates(platform: str, produce: object) -> None:
    assert callable(produce)
    records, error = parse(produce("r1", 1), platform, "show interfaces", TEXTFSM, 1_000_000)
    assert error is None and records
    assert {"interface", "link_status"} <= set(records[0])
    assert all(
        record["link_status"] in {"up", "down", "administratively down"} for record in records
    )


def test_a_command_without_a_template_is_a_parse_error() -> None:
    records, error = parse("x", "cisco_ios", "show nothing here", TEXTFSM, 1_000_000)
    assert records is None
    assert error is not None and error.startswith("textfsm:")


def test_ttp_makes_records_from_a_users_template() -> None:
    template = "<group>\ninterface {{ name }}\n ip address {{ ip }} {{ mask }}\n</group>"
    spec = ParseSpec(engine="ttp", template=template)
    text = (
        "interface Gi1\n ip address 10.0.0.1 255.255.255.0\n!\n"
        "interface Gi2\n ip address 10.0.1.1 255.255.255.0\n"
    )
    records, error = parse(text, "cisco_ios", "show run", spec, 1_000_000)
    assert error is None
    assert records == [
        {"name": "Gi1", "ip": "10.0.0.1", "mask": "255.255.255.0"},
        {"name": "Gi2", "ip": "10.0.1.1", "mask": "255.255.255.0"},
    ]


def test_parsed_output_past_the_limit_is_a_parse_error() -> None:
    records, error = parse(
        outputs.ios_interfaces("r1", 1), "cisco_ios", "show interfaces", TEXTFSM, 100
    )
    assert records is None and error is not None and "over the 100" in error


def test_a_template_that_does_not_compile_says_why() -> None:
    assert ttp_error("<group>\ninterface {{ name }}\n</group") is not None
    assert ttp_error("<group>\ninterface {{ name }}\n</group>") is None


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("<macro>\ndef m(data):\n    return data\n</macro>", "<macro>"),
        ("<vars>\nx = 1\n</vars>", "<vars>"),
        ('<output returner="file" url="/tmp/"/>', "<output>"),
        ('<input load="text">/etc/passwd</input>', "<input>"),
        ('<group input="/etc/">\nroot:{{ x }}\n</group>', "'input'"),
        (
            "<group>\nx {{ a | set(().__class__.__mro__[1].__subclasses__()) }}\n</group>",
            "plain literals",
        ),
        ("<group>\nx {{ a | set(open('/etc/passwd').read()) }}\n</group>", "plain literals"),
        ('<group functions="set(1)">\nx {{ a }}\n</group>', "'functions'"),
        ("<group>\nx {{ a | set(True)) }}\n</group>", "cannot read"),
    ],
)
def test_a_template_that_asks_for_more_than_parsing_is_refused(template: str, why: str) -> None:
    error = ttp_error(template)
    assert error is not None and why in error


def test_a_refused_template_is_a_parse_error_in_the_executor_too() -> None:
    spec = ParseSpec(engine="ttp", template="<macro>\ndef m(d):\n    return d\n</macro>")
    records, error = parse("x", "cisco_ios", "show run", spec, 1_000_000)
    assert records is None and error is not None and "<macro>" in error


def test_literal_arguments_are_accepted() -> None:
    template = (
        '<group name="interfaces" contains="ip">\n'
        "interface {{ name | contains('Gi') }}\n"
        " ip address {{ ip | re('IP') }} {{ mask | joinmatches(',') }}\n"
        " shutdown {{ disabled | set(True) }}\n"
        "</group>"
    )
    assert ttp_error(template) is None
