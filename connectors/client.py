"""The shape every ERP client shares, so a client package holds only what is its own: a context manager
the engine always closes (logging off first when the client holds a logon session), one call through
the toolkit's retry loop with the client's policy, sleep, jitter and timeout, and the object lookup."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Self

import requests

from connectors.base import ConnectorError, NotFound
from connectors.http import RetryPolicy, retry_after_seconds, send, status_error

if TYPE_CHECKING:  # a type only: Sage 300's client needs no auth module (nor its models) at import
    from connectors.auth import SessionLogon


class ErpClient:
    """Mixed into each ERP client; the client's __init__ sets the instance attributes below."""

    system: str  # the system's name in messages ("SAP Business One")
    objects: Mapping[str, Any] = {}  # the objects `changed_since`/`read_one` know, by name
    logon: SessionLogon | None = None  # a logon session to log off on close, if the system has one
    session: requests.Session
    policy: RetryPolicy
    sleep: Callable[[float], None]
    timeout: Any
    _rng: random.Random

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self.logon is not None:
            self.logon.close()
        self.session.close()

    def _send(
        self,
        method: str,
        url: str,
        *,
        classify: Callable[[requests.Response], ConnectorError | None],
        policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One call through `connectors.http.send` with this client's retry settings."""
        return send(
            self.session,
            method,
            url,
            system=self.system,
            classify=classify,
            policy=policy or self.policy,
            sleep=self.sleep,
            rng=self._rng,
            timeout=self.timeout,
            **kwargs,
        )

    def _secrets(self) -> tuple[str, ...]:
        """The client's secrets, which `_scrub` keeps out of every message."""
        return ()

    def _scrub(self, text: str) -> str:
        """`text` with each secret (3 characters or more: shorter ones would blank out ordinary words)
        replaced, before it goes into an error message, a log or an audit row."""
        for secret in self._secrets():
            if len(secret) >= 3:
                text = text.replace(secret, "••••")
        return text

    def _object(self, obj: str) -> Any:
        try:
            return self.objects[obj]
        except KeyError:
            raise ConnectorError(
                f"{self.system} has no object {obj!r} here (known: {', '.join(self.objects)}).",
                permanent=True,
            ) from None


def json_object(
    resp: requests.Response, *, system: str, not_json: str, allow_empty: bool = True
) -> dict[str, Any]:
    """The JSON object a call answered ({} for 204 or an empty body when `allow_empty`); anything else is a
    permanent error: `not_json` says which address the customer should check."""
    if allow_empty and (resp.status_code == 204 or not resp.content):
        return {}
    try:
        body = resp.json()
    except ValueError:
        raise ConnectorError(not_json, permanent=True, status=resp.status_code) from None
    if not isinstance(body, dict):
        raise ConnectorError(
            f"{system} sent an unexpected response.", permanent=True, status=resp.status_code
        )
    return body


def status_answer(resp: requests.Response, *, system: str, message: str, code: str = "") -> ConnectorError:
    """An error status the client has no words of its own for: 404 is NotFound, the rest is classified by
    `status_error` with the server's Retry-After. The message is kept as the error's body (the write-back
    records it)."""
    if resp.status_code == 404:
        return NotFound(f"{system}: {message}", code=code)
    retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
    error = status_error(system, resp.status_code, message, retry_after=retry_after, code=code)
    error.body = message
    return error
