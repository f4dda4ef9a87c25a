"""SYSPRO's XML out: Windows-1252 declaration, root attributes in single quotes, one element per line
without indentation, empty elements as <X/>, numbers right-aligned with leading spaces (quantities
with 6 decimals) and `Edited_*` copies with thousands separators where the business object gives them."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

DECLARATION = '<?xml version="1.0" encoding="Windows-1252"?>'
ROOT_ATTRS = (
    "Language='05' Language2='EN' CssStyle='' DecFormat='1' DateFormat='01' Role='01' "
    "Version='8.0.033' OperatorPrimaryRole='   '"
)
NUMERIC = ("int", "money", "qty")


def number(value: Any, kind: str) -> str:
    """Right-aligned as SYSPRO prints it; a malformed value (text in a numeric column) passes through."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if kind == "int":
        return f"{int(value):8d}"
    if kind == "qty":
        return f"{value:16.6f}"
    return f"{value:16.2f}"


def edited(value: Any, kind: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,.6f}" if kind == "qty" else f"{value:,.2f}"


def text(value: Any, kind: str) -> str:
    if kind in NUMERIC:
        return number(value, kind)
    if kind == "date":
        return str(value)[:10]
    return "" if value is None else str(value)


def element(name: str, value: str) -> str:
    return f"<{name}>{escape(value)}</{name}>" if value != "" else f"<{name}/>"


def column(name: str, value: Any, kind: str, *, with_edited: bool = False) -> list[str]:
    out = [element(name, text(value, kind))]
    if with_edited and kind in ("money", "qty"):
        out.append(element(f"Edited_{name}", edited(value, kind)))
    return out


def document(root: str, lines: list[str], extra_attrs: str = "") -> str:
    attrs = f"{ROOT_ATTRS} {extra_attrs}".rstrip()
    return "\n".join([DECLARATION, f"<{root} {attrs}>", *lines, f"</{root}>", ""])


def encode(body: str) -> bytes:
    return body.encode("cp1252", errors="xmlcharrefreplace")
