"""What the Pipedrive client's parts share: entity names, time format, scrubbing secrets from text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import requests

SYSTEM = "Pipedrive"

ENTITIES = {"organizations": "organization", "persons": "person", "deals": "deal", "products": "product",
            "activities": "activity"}


def _rfc3339(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "••••")
    return text


def _body(resp: requests.Response) -> dict[str, Any] | None:
    """The JSON object of a response, or None (HTML error pages, empty bodies)."""
    if not resp.content:
        return None
    try:
        body = resp.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else {"data": body}
