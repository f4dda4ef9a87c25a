"""One error body for every API error: `{"detail": "<plain words>", "code": "<machine code>",
"fields": {"<field>": ["<message>", ...]}}` (`fields` is empty unless input was invalid)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, serializers, status
from rest_framework.views import exception_handler


class Conflict(exceptions.APIException):
    """The request is well formed but clashes with the current state (a run in progress, the last owner)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "This conflicts with the current state."
    default_code = "conflict"


class ErrorBody(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, in plain words.")
    code = serializers.CharField(
        help_text="invalid, not_authenticated, authentication_failed, permission_denied, "
        "not_found, method_not_allowed, conflict, throttled, ..."
    )
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per invalid input field; empty otherwise.",
    )


def _messages(value) -> list[str]:
    if isinstance(value, dict):
        return [f"{k}: {m}" for k, v in value.items() for m in _messages(v)]
    if isinstance(value, list):
        return [m for v in value for m in _messages(v)]
    return [str(value)]


def _validation_body(detail) -> dict:
    if isinstance(detail, dict):
        general = _messages(detail.get("detail", [])) + _messages(detail.get("non_field_errors", []))
        fields = {k: _messages(v) for k, v in detail.items() if k not in ("detail", "non_field_errors")}
    else:
        general, fields = _messages(detail), {}
    if not general:
        general = [f"Some fields are not valid: {', '.join(sorted(fields))}."]
    return {"detail": " ".join(general), "code": "invalid", "fields": fields}


def error_body(exc: exceptions.APIException) -> dict:
    if isinstance(exc, exceptions.ValidationError):
        return _validation_body(exc.detail)
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    return {"detail": " ".join(_messages(exc.detail)), "code": code, "fields": {}}


def api_exception_handler(exc, context):
    """DRF's handler (status, headers such as WWW-Authenticate and Retry-After), then our body."""
    if isinstance(exc, DjangoValidationError):  # a service's refusal that a view did not translate
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's 500 handling, never a traceback in the body
    if isinstance(exc, exceptions.APIException):
        response.data = error_body(exc)
    else:  # Http404 and PermissionDenied that DRF translated itself
        response.data = {
            "detail": str(response.data.get("detail", "")),
            "code": "not_found" if response.status_code == 404 else "permission_denied",
            "fields": {},
        }
    return response
