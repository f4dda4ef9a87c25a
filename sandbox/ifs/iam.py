"""IFS IAM (Keycloak): the client-credentials token endpoint (documented in app.py)."""

from __future__ import annotations

import base64
import re
import secrets
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote

from sandbox.core import Request, Response, json_response
from sandbox.ifs.errors import keycloak_error

if TYPE_CHECKING:
    from sandbox.ifs.app import IfsSimulator

AUTH_PREFIX = "/auth/realms/"
TOKEN_PATH = re.compile(r"^/auth/realms/([^/]+)/protocol/openid-connect/token/?$")
REFRESH_EXPIRES_S = 1800


def token(sim: IfsSimulator, req: Request) -> Response:
    match = TOKEN_PATH.match(req.path)
    if not match:
        return keycloak_error(404, "Unable to find matching target resource method")
    namespace = unquote(match.group(1))
    if req.method != "POST":
        return keycloak_error(405, "HTTP 405 Method Not Allowed")
    with sim.lock:
        env = sim.environments.get(namespace)
        if env is None:
            return keycloak_error(404, "Realm does not exist")
        stats = sim.env_stats(namespace)
        form = {
            k: v[-1] for k, v in parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True).items()
        }
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = req.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(basic[6:].strip()).decode().partition(":")
            except ValueError:
                client_id = secret = None
        # Keycloak's order: a missing grant type, then client authentication, then the grant type itself
        if not form.get("grant_type"):
            stats["token_failures"] += 1
            return keycloak_error(400, "invalid_request", "Missing form parameter: grant_type")
        if client_id != env.client_id or secret != env.client_secret:
            stats["token_failures"] += 1
            return keycloak_error(401, "invalid_client", "Invalid client or Invalid client credentials")
        if form["grant_type"] != "client_credentials":
            stats["token_failures"] += 1
            return keycloak_error(400, "unsupported_grant_type", "Unsupported grant_type")
        root = f"http://{req.headers.get('host', '127.0.0.1')}"
        token, expires = sim.tokens.issue(namespace, env.client_id, f"{root}{AUTH_PREFIX}{namespace}")
        stats["tokens_issued"] += 1
    return json_response(
        {
            "access_token": token,
            "expires_in": expires,
            "refresh_expires_in": REFRESH_EXPIRES_S,
            "refresh_token": secrets.token_urlsafe(48),
            "token_type": "Bearer",
            "id_token": secrets.token_urlsafe(48),
            "not-before-policy": 0,
            "session_state": secrets.token_hex(16),
            "scope": form.get("scope") or "openid microprofile-jwt",
        },
        200,
        {"Cache-Control": "no-store"},
    )
