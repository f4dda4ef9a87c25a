"""Records of one entity in one company: O(1) lookup, cursor paging over indexes, a search index.

Ids are handed out in increasing order, so `ids` is always sorted and paging by id is a bisect.
`modlog` holds (update_ts, seq, id) per modification; an entry is current while the record's seq
matches, so paging by update_time is a bisect too (re-sorted only if the clock was set backwards).
Search sees versions: a write becomes visible `search_index_delay_s` after it happened.
All methods are called with the company lock held.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .errors import invalid

Projection = tuple[tuple[str, str, str], ...]  # (group, field code, text) triples
# (ts, projection, the record's data dict then: never mutated, writes replace it); projection None: deleted
Version = tuple[float, Projection | None, dict[str, Any] | None]


class Rec:
    __slots__ = ("id", "data", "custom", "add_ts", "update_ts", "seq", "deleted", "versions")

    def __init__(self, rec_id: int, data: dict[str, Any], custom: dict[str, Any], ts: float):
        self.id = rec_id
        self.data = data
        self.custom = custom
        self.add_ts = ts
        self.update_ts = ts
        self.seq = 0
        self.deleted = False
        self.versions: list[Version] = []


def encode_cursor(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError):
        raise invalid("cursor: Invalid cursor") from None
    if not isinstance(payload, dict):
        raise invalid("cursor: Invalid cursor")
    return payload


class Store:
    def __init__(self) -> None:
        self.recs: dict[int, Rec] = {}
        self.ids: list[int] = []
        self.modlog: list[tuple[float, int, int]] = []
        self.modlog_sorted = True
        self.add_sorted = True
        self.next_id = 1
        self.seq = 0
        # lower-cased search text -> id, or set of ids (candidates, verified on use)
        self.index: dict[str, int | set[int]] = {}

    # -- writes ---------------------------------------------------------------------------------

    def new_id(self) -> int:
        rec_id = self.next_id
        self.next_id += 1
        return rec_id

    def insert(self, rec: Rec) -> None:
        if self.ids and rec.add_ts < self.recs[self.ids[-1]].add_ts:
            self.add_sorted = False
        self.recs[rec.id] = rec
        self.ids.append(rec.id)
        self._log(rec)

    def touch(self, rec: Rec, ts: float) -> None:
        rec.update_ts = ts
        self._log(rec)

    def _log(self, rec: Rec) -> None:
        self.seq += 1
        rec.seq = self.seq
        log = self.modlog
        if log and rec.update_ts < log[-1][0]:
            self.modlog_sorted = False
        log.append((rec.update_ts, rec.seq, rec.id))
        if len(log) > 2 * len(self.recs) + 1024:
            self._rebuild_modlog()

    def _rebuild_modlog(self) -> None:
        self.modlog = sorted((r.update_ts, r.seq, r.id) for r in self.recs.values())
        self.modlog_sorted = True

    # -- paging ---------------------------------------------------------------------------------

    def page(self, *, sort_by: str, direction: str, cursor: str | None, limit: int,
             match: Callable[[Rec], bool], since: float | None = None, until: float | None = None,
             only_ids: Iterable[int] | None = None,
             sort_key: Callable[[Rec], Any] | None = None) -> tuple[list[Rec], str | None]:
        """One page of live records passing `match`, plus the next cursor (None at the end)."""
        position = decode_cursor(cursor) if cursor else None
        if position is not None and (position.get("field") != sort_by or position.get("sortDirection") != direction):
            raise invalid("cursor: Cursor does not match the requested sorting")
        want = limit + 1
        desc = direction == "desc"

        def ok(rec: Rec) -> bool:
            if rec.deleted:
                return False
            if since is not None and rec.update_ts < since:
                return False
            if until is not None and rec.update_ts >= until:
                return False
            return match(rec)

        out: list[Rec] = []
        if only_ids is not None:
            chosen = sorted({i for i in only_ids if i in self.recs}, reverse=desc)
            recs = [self.recs[i] for i in chosen]
            if sort_by != "id":
                recs.sort(key=lambda r: (sort_key(r) if sort_key else r.id, r.id), reverse=desc)
            start = 0
            if position is not None:
                start = int(position.get("offset", 0))
            for rec in recs[start:]:
                if ok(rec):
                    out.append(rec)
                    if len(out) == want:
                        break
            page = out[:limit]
            more = len(out) > limit
            next_cursor = None
            if more:
                consumed = recs.index(page[-1]) + 1
                next_cursor = encode_cursor({"field": sort_by, "sortDirection": direction, "offset": consumed})
            return page, next_cursor

        if sort_by == "id" or (sort_by == "add_time" and self.add_sorted):
            out = self._scan_ids(position, desc, want, ok)
            page = out[:limit]
            last = page[-1] if page else None
            value = (last.id if sort_by == "id" else last.add_ts) if last else None
            nxt = encode_cursor({"field": sort_by, "fieldValue": value, "sortDirection": direction,
                                 "id": last.id}) if len(out) > limit and last else None
            return page, nxt
        if sort_by == "update_time":
            out = self._scan_modlog(position, desc, want, ok, since, until)
            page = out[:limit]
            last = page[-1] if page else None
            nxt = encode_cursor({"field": sort_by, "fieldValue": last.update_ts, "sortDirection": direction,
                                 "id": last.id, "seq": last.seq}) if len(out) > limit and last else None
            return page, nxt
        # anything else (name, due_date, add_time after the clock went back): sort the live records
        key = sort_key or (lambda r: r.add_ts)
        ordered = sorted(((key(r), r.id) for r in self.recs.values() if not r.deleted), reverse=desc)
        start = 0
        if position is not None:
            mark = (position.get("fieldValue"), position.get("id"))
            try:
                if desc:
                    start = next((i for i, item in enumerate(ordered) if item < mark), len(ordered))
                else:
                    start = bisect_right(ordered, mark)
            except TypeError:
                raise invalid("cursor: Invalid cursor") from None
        for _, rec_id in ordered[start:]:
            rec = self.recs[rec_id]
            if ok(rec):
                out.append(rec)
                if len(out) == want:
                    break
        page = out[:limit]
        last = page[-1] if page else None
        nxt = encode_cursor({"field": sort_by, "fieldValue": key(last), "sortDirection": direction,
                             "id": last.id}) if len(out) > limit and last else None
        return page, nxt

    def _scan_ids(self, position: dict[str, Any] | None, desc: bool, want: int,
                  ok: Callable[[Rec], bool]) -> list[Rec]:
        ids, recs, out = self.ids, self.recs, []
        if position is not None:
            try:
                last_id = int(position["id"])
            except (KeyError, TypeError, ValueError):
                raise invalid("cursor: Invalid cursor") from None
            i = bisect_left(ids, last_id) - 1 if desc else bisect_right(ids, last_id)
        else:
            i = len(ids) - 1 if desc else 0
        step = -1 if desc else 1
        n = len(ids)
        while 0 <= i < n:
            rec = recs[ids[i]]
            if ok(rec):
                out.append(rec)
                if len(out) == want:
                    break
            i += step
        return out

    def _scan_modlog(self, position: dict[str, Any] | None, desc: bool, want: int, ok: Callable[[Rec], bool],
                     since: float | None, until: float | None) -> list[Rec]:
        if not self.modlog_sorted:
            self._rebuild_modlog()
        log, recs, out = self.modlog, self.recs, []
        if position is not None:
            try:
                mark = (float(position["fieldValue"]), int(position["seq"]))
            except (KeyError, TypeError, ValueError):
                raise invalid("cursor: Invalid cursor") from None
            i = bisect_left(log, mark) - 1 if desc else bisect_right(log, (mark[0], mark[1], math.inf))
        elif desc:
            i = (bisect_left(log, (until,)) if until is not None else len(log)) - 1
        else:
            i = bisect_left(log, (since,)) if since is not None else 0
        step = -1 if desc else 1
        n = len(log)
        while 0 <= i < n:
            ts, seq, rec_id = log[i]
            if not desc and until is not None and ts >= until:
                break
            if desc and since is not None and ts < since:
                break
            rec = recs.get(rec_id)
            if rec is not None and rec.seq == seq and ok(rec):
                out.append(rec)
                if len(out) == want:
                    break
            i += step
        return out

    def live(self) -> Iterator[Rec]:
        for rec_id in self.ids:
            rec = self.recs[rec_id]
            if not rec.deleted:
                yield rec

    # -- search ---------------------------------------------------------------------------------

    def add_version(self, rec: Rec, ts: float, projection: Projection | None, delay: float) -> None:
        """Record what search will show for `rec` from `ts + delay` on; drop versions nobody can see."""
        index = self.index
        for _, _, text in projection or ():
            key = text.lower()
            ids = index.get(key)
            if ids is None:
                index[key] = rec.id
            elif isinstance(ids, int):
                if ids != rec.id:
                    index[key] = {ids, rec.id}
            else:
                ids.add(rec.id)
        versions = rec.versions
        versions.append((ts, projection, rec.data if projection is not None else None))
        horizon = ts - delay
        keep_from = 0
        for i, (vts, _, _) in enumerate(versions):
            if vts <= horizon:
                keep_from = i
        if keep_from:
            dropped = versions[:keep_from]
            del versions[:keep_from]
            still = {text.lower() for _, proj, _ in versions for _, _, text in proj or ()}
            for _, proj, _ in dropped:
                for _, _, text in proj or ():
                    key = text.lower()
                    if key not in still:
                        ids = index.get(key)
                        if ids == rec.id:
                            del index[key]
                        elif isinstance(ids, set):
                            ids.discard(rec.id)
                            if len(ids) == 1:
                                index[key] = next(iter(ids))

    @staticmethod
    def visible(rec: Rec, now: float, delay: float) -> Version | None:
        """The version search shows now, or None if the record is not (yet) in the index."""
        if not delay:
            version = rec.versions[-1] if rec.versions else None
        else:
            horizon = now - delay
            version = None
            for candidate in rec.versions:
                if candidate[0] <= horizon:
                    version = candidate
                else:
                    break
        if version is None or version[1] is None:
            return None
        return version

    def candidates(self, term: str) -> list[int]:
        ids = self.index.get(term.lower())
        if ids is None:
            return []
        return [ids] if isinstance(ids, int) else sorted(ids)
