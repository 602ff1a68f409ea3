"""TTP templates from users, checked before TTP reads them.

TTP evaluates a template's function arguments with ``eval``, runs ``<macro>`` and
``<vars>`` text as Python, reads files named in ``<input>``/``<lookup>`` and writes them
from ``<output>``, and exits the process (``SystemExit``) on an argument it cannot
parse. A template is a parsing recipe here, not a program: only ``<group>`` (with the
attributes that shape results) and ``<doc>`` tags are accepted, and a function's
arguments must be plain literals (``set(True)``, ``contains("ip")``, ``joinmatches(",")``).
"""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET

ALLOWED_TAGS = frozenset({"group", "doc"})
#: Group attributes that only shape results (``input``, for one, loads files by path).
ALLOWED_GROUP_ATTRIBUTES = frozenset(
    {
        "name",
        "method",
        "contains",
        "containsall",
        "exclude",
        "excludeall",
        "del",
        "default",
        "equal",
        "to_int",
        "void",
        "itemize",
    }
)
_VARIABLE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_FUNCTION = re.compile(r"^(?P<name>\S+?)\s?(\((?P<options>.*)\))?$", re.DOTALL)


class UnsafeTemplate(ValueError):
    """A template that asks TTP for more than parsing."""


def check_template(template: str) -> None:
    """Raise :class:`UnsafeTemplate` (or ``ET.ParseError``) unless ``template`` is plain."""
    root = ET.fromstring(f"<template>{template}</template>")
    _check_variables(root.text or "")
    for element in root.iter():
        if element is root:
            continue
        if element.tag not in ALLOWED_TAGS:
            raise UnsafeTemplate(f"tag <{element.tag}> is not accepted (only <group>, <doc>)")
        for name, value in element.attrib.items():
            if element.tag == "group" and name not in ALLOWED_GROUP_ATTRIBUTES:
                raise UnsafeTemplate(f"group attribute {name!r} is not accepted")
            if "(" in value or "{{" in value:
                raise UnsafeTemplate(f"attribute {name}={value!r} may not hold a function call")
        if element.tag != "doc":
            _check_variables(element.text or "")
        _check_variables(element.tail or "")


def _check_variables(text: str) -> None:
    for variable in _VARIABLE.findall(text):
        for item in (part.strip() for part in variable.split("|")):
            match = _FUNCTION.match(item)
            if item and match is None:
                raise UnsafeTemplate(f"cannot read {{{{ {variable.strip()} }}}}")
            options = match.group("options") if match else None
            if options:
                _check_literals(item, options)


def _check_literals(item: str, options: str) -> None:
    try:
        call = ast.parse(f"f({options})", mode="eval").body
    except SyntaxError:
        raise UnsafeTemplate(f"cannot read the arguments of {item!r}") from None
    assert isinstance(call, ast.Call)
    for value in (*call.args, *(keyword.value for keyword in call.keywords)):
        if not _literal(value) or any(keyword.arg is None for keyword in call.keywords):
            raise UnsafeTemplate(f"the arguments of {item!r} must be plain literals")


def _literal(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return isinstance(node.operand, ast.Constant)
    if isinstance(node, ast.Tuple | ast.List):
        return all(_literal(item) for item in node.elts)
    return False
