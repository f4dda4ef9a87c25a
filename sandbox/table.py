"""One entity set of a simulated OData ERP in memory (SAP B1, IFS): records kept sorted by key, and
query results cached per ($filter, $orderby) until the next write, so paging through thousands of
records never re-filters or re-sorts per page. A write replaces a record's dict (copy on write), so a
response being serialised never sees a half-made change."""

from __future__ import annotations

import bisect
from collections import OrderedDict
from typing import Any

from sandbox.odata import compile_filter, parse_orderby, sort_key

CACHED_QUERIES = 16


class KeyedTable:
    """`fields` is the filter compiler's field map; `qualified` the type name its errors and enum
    literals use; `filter_options` the simulator's literal shapes (`date_literal`, `text_as`, `enums`)."""

    def __init__(
        self,
        *,
        entity: str,
        key_field: str,
        type_name: str,
        fields: dict[str, tuple[str, str]],
        qualified: str,
        filter_options: dict[str, Any],
    ):
        self.entity, self.key_field, self.type_name, self.fields = entity, key_field, type_name, fields
        self.qualified = qualified
        self.filter_options = filter_options
        self.keys: list[Any] = []
        self.records: list[dict[str, Any]] = []
        self.by_key: dict[Any, dict[str, Any]] = {}
        self.version = 0
        self.cache: OrderedDict[tuple[str, str], tuple[int, list[dict[str, Any]]]] = OrderedDict()

    def written(self, key: Any | None) -> None:
        """After every write (`key` None: all records): cached views are stale."""
        self.version += 1
        self.cache.clear()

    def load(self, records: list[dict[str, Any]]) -> None:
        self.records = sorted(records, key=lambda r: r[self.key_field])
        self.keys = [r[self.key_field] for r in self.records]
        self.by_key = dict(zip(self.keys, self.records, strict=True))
        self.written(None)

    def put(self, record: dict[str, Any]) -> None:
        key = record[self.key_field]
        at = bisect.bisect_left(self.keys, key)
        if key in self.by_key:
            self.records[at] = record
        else:
            self.keys.insert(at, key)
            self.records.insert(at, record)
        self.by_key[key] = record
        self.written(key)

    def delete(self, key: Any) -> bool:
        if self.by_key.pop(key, None) is None:
            return False
        at = bisect.bisect_left(self.keys, key)
        del self.keys[at]
        del self.records[at]
        self.written(key)
        return True

    def query(self, filter_text: str, orderby: str) -> list[dict[str, Any]]:
        """Matching records in order, from the cache while the table is unchanged."""
        if not filter_text and (not orderby or orderby == self.key_field):
            return self.records
        cache_key = (filter_text, orderby)
        hit = self.cache.get(cache_key)
        if hit and hit[0] == self.version:
            self.cache.move_to_end(cache_key)
            return hit[1]
        rows = self.records
        if filter_text:
            predicate = compile_filter(filter_text, self.fields, entity=self.qualified, **self.filter_options)
            rows = [row for row in rows if predicate(row)]
        if orderby:
            rows = list(rows)
            for key, descending in reversed(parse_orderby(orderby, self.fields, entity=self.qualified)):
                rows.sort(key=sort_key(key), reverse=descending)  # stable: ties keep key order
        self.cache[cache_key] = (self.version, rows)
        while len(self.cache) > CACHED_QUERIES:
            self.cache.popitem(last=False)
        return rows
