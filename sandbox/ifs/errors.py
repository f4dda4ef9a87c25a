"""The IFS simulator's error bodies: OData V4 `{"error": {code, message, details?}}` on the projections,
Keycloak's `{"error", "error_description"}` on the token endpoint."""

from __future__ import annotations

from typing import Any

from sandbox.core import Response, json_response


def error(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    details: list[dict[str, str]] | None = None,
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return json_response({"error": body}, status, {"OData-Version": "4.0", **(headers or {})})


def keycloak_error(status: int, code: str, description: str | None = None) -> Response:
    body = {"error": code}
    if description:
        body["error_description"] = description
    return json_response(body, status, {"Cache-Control": "no-store"})
