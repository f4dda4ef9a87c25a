"""Pipedrive's error envelopes (wire doc §1.3, §7) as an exception the handlers raise."""

from __future__ import annotations

from typing import Any

ERROR_INFO = "Please check developers.pipedrive.com"


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(body.get("error"))
        self.status = status
        self.body = body


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    return {"success": False, "error": message, **extra, "error_info": ERROR_INFO, "data": None,
            "additional_data": None}


def not_found(message: str) -> ApiError:
    return ApiError(404, error_body(message))


def invalid(message: str) -> ApiError:
    """A v2 schema validation failure, e.g. `Validation failed: limit: ...`."""
    return ApiError(400, error_body(f"Validation failed: {message}", code="ERR_SCHEMA_VALIDATION_FAILED"))


def bad_request(message: str) -> ApiError:
    return ApiError(400, error_body(message))


def not_allowed(param: str) -> ApiError:
    return invalid(f"{param}: Parameter '{param}' is not allowed for this request")


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def wrong_type(where: str, expected: str, value: Any) -> ApiError:
    return invalid(f"{where}: Expected {expected}, received {json_type(value)}")
