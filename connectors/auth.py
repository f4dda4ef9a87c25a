"""Auth lifecycles the ERP clients share.

- `SessionLogon`: a logon session (SAP B1 `B1SESSION` cookie, SYSPRO session id) shared by a client's
  threads; logged on lazily, logged on again once when the server says the session expired, logged off
  when the client closes. Two threads meeting an expired session log on once, not twice.
- `ClientCredentials`: OAuth2 client-credentials tokens (IFS, S/4HANA) cached until shortly before
  expiry and refreshed by one worker at a time per connection, through a `TokenStore` (the database
  row of the connection, locked, so every worker process of every host shares one token). A
  `ScopedTokenStore` ties the stored token to the credentials that obtained it; `token_of` reads the
  token endpoint's answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from django.db import transaction

from connectors.base import ConnectorError
from connectors.models import Connection

T = TypeVar("T")
REFRESH_MARGIN_S = 30.0


class SessionLogon:
    def __init__(self, *, logon: Callable[[], Any], logoff: Callable[[Any], None] | None = None,
                 expired: Callable[[ConnectorError], bool]):
        self._logon = logon
        self._logoff = logoff
        self._expired = expired
        self._lock = threading.Lock()
        self._session: Any = None
        self._generation = 0
        self.logons = 0  # how many times we logged on (a renewal shows as 2)

    def current(self) -> tuple[Any, int]:
        with self._lock:
            if self._session is None:
                self._session = self._logon()
                self._generation += 1
                self.logons += 1
            return self._session, self._generation

    def renew(self, stale_generation: int) -> tuple[Any, int]:
        """Log on again unless another thread already did since `stale_generation`."""
        with self._lock:
            if self._generation == stale_generation or self._session is None:
                self._session = None
                self._session = self._logon()
                self._generation += 1
                self.logons += 1
            return self._session, self._generation

    def call(self, fn: Callable[[Any], T]) -> T:
        """Run `fn(session)`; when the server says the session expired, log on again once and retry."""
        session, generation = self.current()
        try:
            return fn(session)
        except ConnectorError as exc:
            if not self._expired(exc):
                raise
        session, _ = self.renew(generation)
        return fn(session)

    def run(self, fn: Callable[[Any], T], *, system: str) -> T:
        """`call(fn)`; a session that expires again right after a new logon is the server's trouble, so
        that is a transient error (the run is retried later), not a failed record."""
        try:
            return self.call(fn)
        except ConnectorError as exc:
            if self._expired(exc):
                raise ConnectorError(f"{system} keeps ending the session; the run will retry later.",
                                     permanent=False, status=exc.status, code=exc.code) from exc
            raise

    @property
    def active(self) -> bool:
        return self._session is not None

    def close(self) -> None:
        """Log off (best effort: a failed logoff only lets the server time the session out)."""
        with self._lock:
            session, self._session = self._session, None
        if session is not None and self._logoff is not None:
            try:
                self._logoff(session)
            except ConnectorError:
                pass


class TokenStore(Protocol):
    """Where a connection's current access token lives, shared by its workers."""

    def read(self) -> tuple[str, float]:
        """(token, expires_at epoch seconds); ('', 0) when none."""

    def refresh_locked(self, refresh: Callable[[tuple[str, float]], tuple[str, float]]) -> tuple[str, float]:
        """Under a lock other workers wait on: call `refresh(current)` and save what it returns."""


class MemoryTokenStore:
    """A store for one process (tests, pings of unsaved connections)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: tuple[str, float] = ("", 0.0)

    def read(self) -> tuple[str, float]:
        return self._value

    def refresh_locked(self, refresh):
        with self._lock:
            self._value = refresh(self._value)
            return self._value


class ConnectionTokenStore:
    """The token in the connection's encrypted credentials, refreshed under a row lock (one refresh at a
    time per connection across processes and hosts)."""

    def __init__(self, connection_pk: int):
        self.pk = connection_pk

    def read(self) -> tuple[str, float]:
        conn = Connection.objects.filter(pk=self.pk).only("credentials").first()
        data = (conn.credentials or {}) if conn else {}
        return str(data.get("access_token") or ""), float(data.get("access_expires_at") or 0)

    def refresh_locked(self, refresh):
        with transaction.atomic():
            conn = Connection.objects.select_for_update().get(pk=self.pk)
            data = dict(conn.credentials or {})
            current = (str(data.get("access_token") or ""), float(data.get("access_expires_at") or 0))
            token, expires_at = refresh(current)
            if (token, expires_at) != current:
                data.update(access_token=token, access_expires_at=expires_at)
                conn.credentials = data
                conn.save(update_fields=["credentials"])
            return token, expires_at


class ScopedTokenStore:
    """The stored token counts only for the credentials it was issued to: after the customer changes the
    client, secret or address, workers fetch a new token instead of using the old one until it expires.
    The scope (a hash, never a secret) is kept as `prefix` of the stored token."""

    def __init__(self, inner: TokenStore, prefix: str):
        self.inner, self.prefix = inner, prefix

    def read(self) -> tuple[str, float]:
        return self._unwrap(self.inner.read())

    def refresh_locked(self, refresh):
        return self._unwrap(self.inner.refresh_locked(lambda current: self._wrap(refresh(self._unwrap(current)))))

    def _unwrap(self, value: tuple[str, float]) -> tuple[str, float]:
        token, expires_at = value
        return (token[len(self.prefix) :], expires_at) if token.startswith(self.prefix) else ("", 0.0)

    def _wrap(self, value: tuple[str, float]) -> tuple[str, float]:
        token, expires_at = value
        return (self.prefix + token if token else "", expires_at)


def token_of(body: dict[str, Any], *, default_lifetime: float, missing: str) -> tuple[str, float]:
    """(access_token, lifetime seconds) from a token endpoint's JSON answer; `expires_in` falls back to
    `default_lifetime` when absent or unreadable. No token is a permanent ConnectorError(`missing`)."""
    token = str(body.get("access_token") or "")
    if not token:
        raise ConnectorError(missing, permanent=True)
    try:
        lifetime = float(body.get("expires_in") or default_lifetime)
    except (TypeError, ValueError):
        lifetime = float(default_lifetime)
    return token, lifetime


class ClientCredentials:
    """`token()` gives a valid access token; `invalidate(token)` after a 401 makes the next call fetch a
    new one (once, whichever worker gets there first)."""

    def __init__(self, *, fetch: Callable[[], tuple[str, float]], store: TokenStore,
                 margin_s: float = REFRESH_MARGIN_S, clock: Callable[[], float] = time.time):
        self._fetch = fetch  # → (token, lifetime seconds)
        self._store = store
        self._margin = margin_s
        self._clock = clock
        self.fetches = 0

    def _fresh(self, value: tuple[str, float]) -> bool:
        return bool(value[0]) and value[1] - self._margin > self._clock()

    def token(self) -> str:
        value = self._store.read()
        if self._fresh(value):
            return value[0]
        return self._store.refresh_locked(self._refresh_if_stale)[0]

    def invalidate(self, token: str) -> str:
        def refresh(current: tuple[str, float]) -> tuple[str, float]:
            if current[0] and current[0] != token and self._fresh(current):
                return current  # another worker already replaced the rejected token
            return self._new()

        return self._store.refresh_locked(refresh)[0]

    def call(self, attempt: Callable[[str], T], *, rejected: Callable[[ConnectorError], bool]) -> T:
        """`attempt(token)`; when the server rejects the token (`rejected(error)`), once more with a new one."""
        token = self.token()
        try:
            return attempt(token)
        except ConnectorError as exc:
            if not rejected(exc):
                raise
        return attempt(self.invalidate(token))

    def _refresh_if_stale(self, current: tuple[str, float]) -> tuple[str, float]:
        return current if self._fresh(current) else self._new()

    def _new(self) -> tuple[str, float]:
        token, lifetime = self._fetch()
        self.fetches += 1
        return token, self._clock() + float(lifetime)
