"""The slice of OData query syntax the simulated ERPs accept, compiled to Python predicates.

`$filter`: eq ne gt ge lt le, and or not, parentheses; literals 'text' (quotes doubled inside),
numbers (optional m/d/f/L suffix), true/false/null, datetime'2024-05-01T00:00', V2 time'PT14H30M00S'
(stored and compared as '14:30:00', type "time"), bare ISO dates and
type-qualified enum literals (`SAPB1.BoCardTypes'cCustomer'`, compared as text; a field typed
"enum:<qualified type>" accepts only literals of that type, as IFS does); functions
substringof, contains, startswith, endswith, length, tolower, toupper, trim, year, month, day.
`$orderby`: `Field [asc|desc], ...`.

Records are rows addressed through a field map `name → (index, type)`: lists with integer indexes
(Sage 300) or dicts keyed by the field name itself (SAP Business One). Each simulator says how a
date (or time) literal is stored (`date_literal`, `text_as`), so B1's `UpdateDate ge '2024-05-01'`
compares a quoted text with a date field in the server's own stored shape. Errors raise QueryError
with the message the server sends back in its own envelope.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

Row = list[Any]
Getter = Callable[[Row], Any]
Predicate = Callable[[Row], bool]


class QueryError(ValueError):
    pass


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<datetime>datetime'(?P<dt>[^']*)')
    | (?P<time>time'(?P<tm>[^']*)')
    | (?P<enum>(?P<qual>[A-Za-z_]\w*(?:\.\w+)+)'(?P<member>(?:[^']|'')*)')
    | (?P<string>'(?:[^']|'')*')
    | (?P<date>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?)
    | (?P<punct>[(),])
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.X,
)
_COMPARE = {"eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "ge": operator.ge,
            "lt": operator.lt, "le": operator.le}
Normalizer = Callable[[str], Any]


def datetime_literal(text: str) -> str:
    """'2024-05-01T00:00' → '2024-05-01T00:00:00', the shape the server stores dates in."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise QueryError(f"Unrecognized 'Edm.DateTime' literal 'datetime'{text}''.") from None
    return value.replace(tzinfo=None, microsecond=0).isoformat()


def time_literal(text: str) -> str:
    """V2 Edm.Time 'PT14H30M00S' → '14:30:00', the shape the server stores times in."""
    match = re.fullmatch(r"PT(?:(\d{1,2})H)?(?:(\d{1,2})M)?(?:(\d{1,2})(?:\.\d+)?S)?", text.strip())
    if not match or text.strip() == "PT":
        raise QueryError(f"Unrecognized 'Edm.Time' literal 'time'{text}''.")
    h, m, s = (int(g or 0) for g in match.groups())
    if h > 23 or m > 59 or s > 59:
        raise QueryError(f"Unrecognized 'Edm.Time' literal 'time'{text}''.")
    return f"{h:02d}:{m:02d}:{s:02d}"


def _tokens(text: str, as_date: Normalizer, as_time: Normalizer = time_literal) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError(f"Syntax error at position {pos} in '{text}'.")
        pos = match.end()
        kind = match.lastgroup
        if kind == "datetime":
            out.append(("literal", (as_date(match.group("dt")), "date")))
        elif kind == "time":
            out.append(("literal", (as_time(match.group("tm")), "time")))
        elif kind == "enum":
            out.append(("literal", (match.group("member").replace("''", "'"), "enum", match.group("qual"))))
        elif kind == "string":
            out.append(("literal", (match.group("string")[1:-1].replace("''", "'"), "string")))
        elif kind == "date":
            out.append(("literal", (as_date(match.group("date")), "date")))
        elif kind == "number":
            raw = match.group("number").rstrip("mMdDfFlL")
            out.append(("literal", (float(raw) if any(c in raw for c in ".eE") else int(raw), "number")))
        elif kind == "punct":
            out.append((match.group("punct"), None))
        else:
            word = match.group("name")
            low = word.lower()
            if low in ("true", "false"):
                out.append(("literal", (low == "true", "bool")))
            elif low == "null":
                out.append(("literal", (None, "null")))
            elif low in _COMPARE or low in ("and", "or", "not"):
                out.append((low, None))
            else:
                out.append(("name", word))
    return out


def _compatible(a: str, b: str) -> bool:
    if "null" in (a, b) or a == b:
        return True
    if a.startswith("enum:") or b.startswith("enum:"):  # already checked by check_enum
        return {a[:5], b[:5]} <= {"enum:", "enum"}
    return {a, b} <= {"string", "enum"}


class _Parser:
    def __init__(self, text: str, fields: dict[str, tuple[Any, str]], entity: str, date_literal: Normalizer,
                 text_as: dict[str, Normalizer], enums: dict[str, Collection[str]]):
        self.text = text
        self.enums = enums  # qualified enum type → its members, for fields typed "enum:<qualified type>"
        self.fields = fields  # name → (row index or dict key, type)
        self.entity = entity
        self.text_as = text_as  # field type → how a quoted text compared with it is stored
        self.toks = _tokens(text, date_literal)
        self.pos = 0

    def peek(self) -> str | None:
        return self.toks[self.pos][0] if self.pos < len(self.toks) else None

    def take(self, kind: str | None = None) -> tuple[str, Any]:
        if self.pos >= len(self.toks):
            raise QueryError(f"Unexpected end of expression in '{self.text}'.")
        tok = self.toks[self.pos]
        if kind and tok[0] != kind:
            raise QueryError(f"Expected '{kind}' at token {self.pos + 1} in '{self.text}'.")
        self.pos += 1
        return tok

    # Nodes: ("bool", predicate) or ("value", getter, type)
    def parse(self) -> Predicate:
        node = self.or_expr()
        if self.pos != len(self.toks):
            raise QueryError(f"Syntax error at token {self.pos + 1} in '{self.text}'.")
        return self.as_bool(node)

    def as_bool(self, node: tuple) -> Predicate:
        if node[0] == "bool":
            return node[1]
        if node[2] == "bool":
            getter = node[1]
            return lambda row: getter(row) is True
        raise QueryError(f"The $filter expression must evaluate to a boolean: '{self.text}'.")

    def or_expr(self) -> tuple:
        node = self.and_expr()
        while self.peek() == "or":
            self.take()
            left, right = self.as_bool(node), self.as_bool(self.and_expr())
            node = ("bool", lambda row, a=left, b=right: a(row) or b(row))
        return node

    def and_expr(self) -> tuple:
        node = self.not_expr()
        while self.peek() == "and":
            self.take()
            left, right = self.as_bool(node), self.as_bool(self.not_expr())
            node = ("bool", lambda row, a=left, b=right: a(row) and b(row))
        return node

    def not_expr(self) -> tuple:
        if self.peek() == "not":
            self.take()
            inner = self.as_bool(self.not_expr())
            return ("bool", lambda row: not inner(row))
        return self.compare()

    def compare(self) -> tuple:
        left = self.primary()
        op = self.peek()
        if op not in _COMPARE:
            return left
        self.take()
        right = self.primary()
        if left[0] != "value" or right[0] != "value":
            raise QueryError(f"Operator '{op}' needs two values in '{self.text}'.")
        left, right = self.coerce(left, right), self.coerce(right, left)
        self.check_enum(left, right, op)
        self.check_enum(right, left, op)
        if not _compatible(left[2], right[2]):
            raise QueryError(f"A binary operator with incompatible types was detected. Found operand types "
                             f"'{left[2]}' and '{right[2]}' for operator kind '{op}'.")
        return ("bool", _comparison(op, left[1], right[1]))

    def check_enum(self, node: tuple, other: tuple, op: str) -> None:
        """A strictly typed enum field ("enum:IfsApp.X.State") takes only its own qualified literals."""
        if not str(node[2]).startswith("enum:") or other[2] == "null":
            return
        qualified = node[2][5:]
        if other[2] == node[2]:
            return
        if other[2] != "enum" or len(other) < 5:
            raise QueryError(f"A binary operator with incompatible types was detected. Found operand types "
                             f"'{qualified}' and 'Edm.{'String' if other[2] == 'string' else other[2]}' for "
                             f"operator kind '{op}'. Use a type-qualified literal: {qualified}'<Value>'.")
        if other[4] != qualified:
            raise QueryError(f"The enum type '{other[4]}' does not match the property's type '{qualified}'.")
        members = self.enums.get(qualified)
        if members is not None and other[3] not in members:
            raise QueryError(f"The string '{other[3]}' is not a valid enumerated type constant of '{qualified}'.")

    def coerce(self, node: tuple, other: tuple) -> tuple:
        """A quoted text compared with a date/time field becomes that field's stored shape."""
        if len(node) >= 4 and node[2] == "string" and other[2] in self.text_as:
            try:
                constant = self.text_as[other[2]](node[3])
            except (TypeError, ValueError):
                raise QueryError(f"The literal '{node[3]}' is not a valid {other[2]}.") from None
            return ("value", lambda row: constant, other[2], constant)
        return node

    def primary(self) -> tuple:
        kind, value = self.take()
        if kind == "(":
            node = self.or_expr()
            self.take(")")
            return node
        if kind == "literal":
            constant, typ, *qualified = value  # an enum literal also carries its qualified type name
            return ("value", lambda row: constant, typ, constant, *qualified)  # 4th item: a literal's value
        if kind == "name":
            if self.peek() == "(":
                return self.function(value)
            if value not in self.fields:
                raise QueryError(f"Could not find a property named '{value}' on type '{self.entity}'.")
            index, typ = self.fields[value]
            return ("value", operator.itemgetter(index), typ)
        raise QueryError(f"Syntax error at token {self.pos} in '{self.text}'.")

    def function(self, name: str) -> tuple:
        self.take("(")
        args = [self.or_expr()]
        while self.peek() == ",":
            self.take()
            args.append(self.or_expr())
        self.take(")")
        low = name.lower()
        if any(a[0] != "value" for a in args):
            raise QueryError(f"Function '{name}' takes values, not conditions.")
        getters = [a[1] for a in args]
        arity = {"substringof": 2, "contains": 2, "startswith": 2, "endswith": 2, "length": 1, "tolower": 1,
                 "toupper": 1, "trim": 1, "year": 1, "month": 1, "day": 1}
        if low not in arity:
            raise QueryError(f"An unknown function with name '{name}' was found.")
        if len(args) != arity[low]:
            raise QueryError(f"Function '{name}' takes {arity[low]} argument(s).")
        if low in ("substringof", "contains", "startswith", "endswith"):
            a, b = getters
            if low == "substringof":  # OData v3 order: substringof('needle', Field)
                a, b = b, a
            test = {"substringof": operator.contains, "contains": operator.contains,
                    "startswith": str.startswith, "endswith": str.endswith}[low]

            def predicate(row, a=a, b=b, test=test):
                hay, needle = a(row), b(row)
                return isinstance(hay, str) and isinstance(needle, str) and test(hay, needle)

            return ("bool", predicate)
        (get,) = getters
        if low == "length":
            return ("value", lambda row: len(v) if isinstance(v := get(row), str) else None, "number")
        if low in ("tolower", "toupper", "trim"):
            method = {"tolower": str.lower, "toupper": str.upper, "trim": str.strip}[low]
            return ("value", lambda row: method(v) if isinstance(v := get(row), str) else None, "string")
        start, end = {"year": (0, 4), "month": (5, 7), "day": (8, 10)}[low]

        def part(row):
            value = get(row)
            try:
                return int(value[start:end])
            except (TypeError, ValueError):
                return None

        return ("value", part, "number")


def _comparison(op: str, left: Getter, right: Getter) -> Predicate:
    compare = _COMPARE[op]
    if op in ("eq", "ne"):
        return lambda row: compare(left(row), right(row))

    def ordered(row):
        a, b = left(row), right(row)
        if a is None or b is None:
            return False
        try:
            return compare(a, b)
        except TypeError:  # a malformed record holding the wrong type never matches
            return False

    return ordered


def compile_filter(text: str, fields: dict[str, tuple[Any, str]], *, entity: str = "",
                   date_literal: Normalizer = datetime_literal,
                   text_as: dict[str, Normalizer] | None = None,
                   enums: dict[str, Collection[str]] | None = None) -> Predicate:
    """`entity` names the type in "no such property" messages; `date_literal` stores datetime'…' and
    bare ISO date literals (default 'YYYY-MM-DDTHH:MM:SS'); `text_as` maps a field type to the
    normalizer of quoted texts compared with it (none by default: Sage wants a datetime literal); `enums`
    lists the members of each qualified enum type that fields typed "enum:<type>" hold (IFS: such a field
    refuses a plain string and a literal of another enum type)."""
    return _Parser(text, fields, entity, date_literal, text_as or {}, enums or {}).parse()


def parse_orderby(text: str, fields: dict[str, tuple[Any, str]], *, entity: str = "") -> list[tuple[Any, bool]]:
    """'CustomerName desc, CustomerNumber' → [(index, descending), ...]."""
    keys = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise QueryError(f"The $orderby expression '{text}' is not valid.")
        if words[0] not in fields:
            raise QueryError(f"Could not find a property named '{words[0]}' on type '{entity}'.")
        keys.append((fields[words[0]][0], len(words) == 2 and words[1].lower() == "desc"))
    return keys


def sort_key(index: Any) -> Callable[[Row], tuple]:
    """Nulls first, then numbers, then text: malformed rows with odd types still sort."""
    def key(row: Row) -> tuple:
        value = row[index]
        if value is None:
            return (0, 0)
        if isinstance(value, bool | int | float):
            return (1, value)
        return (2, str(value))

    return key


def nonnegative(value: str | None, name: str) -> int | None:
    """A $top/$skip-style option as a number (None when absent); anything but digits is a QueryError
    in the words B1 and IFS use."""
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise QueryError(f"Invalid value '{value}' for {name}.")
    return int(value)


def key_segment(text: str, key_field: str) -> str | None:
    """The key literal of an entity path segment, `Key='x'` or `'x'`; None when it names another field."""
    text = text.strip()
    if "=" in text:
        field, _, text = text.partition("=")
        if field.strip() != key_field:
            return None
        text = text.strip()
    return text


def string_literal(text: str) -> str | None:
    """ "'O''Brien'" → "O'Brien"; None when the text is not one quoted literal."""
    if len(text) < 2 or text[0] != "'" or text[-1] != "'" or "'" in text[1:-1].replace("''", ""):
        return None
    return text[1:-1].replace("''", "'")
