"""IFS IAM (Keycloak) client-credentials tokens and the per-realm request-rate window.
Not thread-safe by themselves: the simulator calls them under its lock."""

from __future__ import annotations

import base64
import json
import math
import secrets
import time
from typing import Any

from sandbox.core import Request


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


class Tokens:
    """Opaque-to-the-client JWT-shaped bearer tokens, each bound to one realm, expiring after
    settings["token_ttl_s"]. Expired tokens are remembered (so their requests still count against
    their realm's rate) until the realm's tokens are dropped."""

    def __init__(self, settings: dict[str, Any]):
        self.settings = settings
        self.by_token: dict[str, tuple[str, float]] = {}  # token → (namespace, monotonic expiry)

    def issue(self, namespace: str, client_id: str, issuer: str) -> tuple[str, int]:
        ttl = self.settings["token_ttl_s"]
        now = int(time.time())
        claims = {
            "exp": now + math.ceil(ttl),
            "iat": now,
            "jti": secrets.token_hex(8),
            "iss": issuer,
            "typ": "Bearer",
            "azp": client_id,
            "scope": "openid microprofile-jwt",
        }
        token = f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(claims)}.{secrets.token_urlsafe(32)}"
        self.by_token[token] = (namespace, time.monotonic() + ttl)
        return token, max(1, math.ceil(ttl))

    def namespace(self, token: str | None) -> str | None:
        entry = self.by_token.get(token) if token else None
        return entry[0] if entry else None

    def valid(self, token: str | None) -> bool:
        entry = self.by_token.get(token) if token else None
        return entry is not None and time.monotonic() < entry[1]

    def expire_all(self, namespace: str | None = None) -> int:
        now, count = time.monotonic(), 0
        for token, (ns, expiry) in list(self.by_token.items()):
            if (namespace is None or ns == namespace) and expiry > now:
                self.by_token[token] = (ns, now)
                count += 1
        return count

    def live(self) -> int:
        now = time.monotonic()
        return sum(1 for _, expiry in self.by_token.values() if expiry > now)

    def drop(self, namespace: str) -> None:
        for token in [t for t, (ns, _) in self.by_token.items() if ns == namespace]:
            del self.by_token[token]


class RateWindow:
    """Fixed windows of settings["rate_window_s"] seconds, at most settings["rate_limit"] requests in
    each (0 = no limit). A refused request does not count."""

    def __init__(self, settings: dict[str, Any]):
        self.settings = settings
        self.started = 0.0
        self.count = 0

    def admit(self) -> int | None:
        """None when admitted, else the Retry-After seconds."""
        limit, window = self.settings["rate_limit"], self.settings["rate_window_s"]
        if not limit:
            return None
        now = time.monotonic()
        if now - self.started >= window:
            self.started, self.count = now, 0
        if self.count >= limit:
            return max(1, math.ceil(self.started + window - now))
        self.count += 1
        return None


def bearer(req: Request) -> str | None:
    header = req.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None
