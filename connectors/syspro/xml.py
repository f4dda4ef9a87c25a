"""SYSPRO e.net XML: the XmlIn documents we send (COMFND table queries) and reading XmlOut.

Wire facts (docs/wire/erps.md §1): XmlIn starts with a Windows-1252 declaration and names its schema
(`xsd:noNamespaceSchemaLocation="COMFND.XSD"`); COMFND answers with a root named after the table, one
`<Row>` per row with one element per column, and `<RowsReturned>` (numbers right-aligned with spaces).
Business-object errors come back as XML with `ErrorNumber`/`ErrorDescription`, not as HTTP errors.
A document with a DTD is refused before parsing (entity expansion is not ours to allow).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

DECLARATION = '<?xml version="1.0" encoding="Windows-1252"?>'


@dataclass(frozen=True)
class Expression:
    """One `<Expression>` of a COMFND Where clause: `column condition value`, joined by `and_or`."""

    column: str
    condition: str  # EQ, NE, GT, GE, LT, LE, LIKE
    value: Any
    and_or: str = "And"
    open_bracket: str = "("
    close_bracket: str = ")"


def comfnd(
    *,
    table: str,
    columns: tuple[str, ...] = (),
    where: tuple[Expression, ...] = (),
    order_by: tuple[str, ...] = (),
    return_rows: int = 0,
) -> str:
    """The XmlIn of a COMFND query on one table (columns: all when empty)."""
    parts = [
        DECLARATION,
        '<Query xmlns:xsd="http://www.w3.org/2001/XMLSchema-instance" xsd:noNamespaceSchemaLocation="COMFND.XSD">',
        f"<TableName>{escape(table)}</TableName>",
    ]
    if return_rows:
        parts.append(f"<ReturnRows>{int(return_rows)}</ReturnRows>")
    if columns:
        parts.append("<Columns>" + "".join(f"<Column>{escape(c)}</Column>" for c in columns) + "</Columns>")
    if where:
        parts.append(
            "<Where>"
            + "".join(
                f"<Expression><OpenBracket>{escape(e.open_bracket)}</OpenBracket><AndOr>{escape(e.and_or)}</AndOr>"
                f"<Column>{escape(e.column)}</Column><Condition>{escape(e.condition)}</Condition>"
                f"<Value>{escape(str(e.value))}</Value><CloseBracket>{escape(e.close_bracket)}</CloseBracket></Expression>"
                for e in where
            )
            + "</Where>"
        )
    if order_by:
        parts.append("<OrderBy>" + "".join(f"<Column>{escape(c)}</Column>" for c in order_by) + "</OrderBy>")
    parts.append("</Query>")
    return "\n".join(parts)


def sorqry(sales_order: str) -> str:
    """The XmlIn of a sales order query with its stocked lines and their values."""
    return "\n".join(
        [
            DECLARATION,
            '<Query xmlns:xsd="http://www.w3.org/2001/XMLSchema-instance" xsd:noNamespaceSchemaLocation="SORQRY.XSD">',
            f"<Key><SalesOrder>{escape(sales_order)}</SalesOrder></Key>",
            "<Option><IncludeStockedLines>Y</IncludeStockedLines><IncludeNonStockedLines>N</IncludeNonStockedLines>"
            "<IncludeFreightLines>N</IncludeFreightLines><IncludeMiscLines>N</IncludeMiscLines>"
            "<IncludeCommentLines>N</IncludeCommentLines><IncludeValues>Y</IncludeValues>"
            "<ReturnLineShipDate>N</ReturnLineShipDate><XslStylesheet/></Option>",
            "</Query>",
        ]
    )


class XmlUnreadable(ValueError):
    """XmlOut that is not well-formed XML (or carries a DTD)."""


def parse(body: bytes | str) -> ET.Element:
    """XmlOut as an element tree, honouring its declared encoding (bytes are parsed as sent)."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    head = data[:4096].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise XmlUnreadable("the answer carries a document type declaration")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise XmlUnreadable(f"the answer is not well-formed XML ({exc})") from None


def errors_of(root: ET.Element) -> list[str]:
    """Business-object errors reported inside the XML ("Stock code '1004' not found (240004)")."""
    found = []
    for node in root.iter():
        if node.tag != "ErrorDescription":
            continue
        text = (node.text or "").strip()
        if text and text not in found:
            found.append(text)
    for node in root.iter("ErrorMessage"):
        text = (node.text or "").strip()
        if text and text not in found:
            found.append(text)
    return found


def rows_of(root: ET.Element) -> list[dict[str, str]]:
    """COMFND rows: {column: text with the padding stripped}; an empty element is ''."""
    return [{child.tag: (child.text or "").strip() for child in row} for row in root.iter("Row")]


def rows_returned(root: ET.Element) -> int | None:
    node = root.find("RowsReturned")
    if node is None or not (node.text or "").strip():
        return None
    try:
        return int((node.text or "").strip())
    except ValueError:
        return None
