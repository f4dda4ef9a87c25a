"""Writes for connections: create, update (credentials write-only), delete, ping, pause.

What each system asks for is its package's CONNECTION_FIELDS, gathered from the registry into
SYSTEM_FIELDS: the portal form, the API and these services all read it, so a key name is decided
once. Secrets go to the encrypted `credentials`, everything else to `options`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from connectors.base import ConnectorError, PingResult, SystemField
from connectors.http import ca_bundle_context, url_check
from connectors.models import GENERATED_CREDENTIALS, Connection, mask_secret
from connectors.registry import SYSTEMS, connection_fields, connector_class, connector_for, package_attr
from connectors.signals import connection_tested
from tenants.models import Tenant

logger = logging.getLogger(__name__)

# Derived from the registry: each system's package says what its connections ask for.
SYSTEM_FIELDS: dict[str, tuple[SystemField, ...]] = {s.key: connection_fields(s.key) for s in SYSTEMS}
INTERNAL_OPTIONS: dict[str, tuple[str, ...]] = {
    s.key: tuple(package_attr(s.key, "INTERNAL_OPTIONS", ())) for s in SYSTEMS}
LEARNED_OPTIONS: dict[str, tuple[str, ...]] = {
    s.key: tuple(package_attr(s.key, "LEARNED_OPTIONS", ())) for s in SYSTEMS}
DEFAULT_BASE_URLS: dict[str, str] = {
    s.key: package_attr(s.key, "DEFAULT_BASE_URL") for s in SYSTEMS if package_attr(s.key, "DEFAULT_BASE_URL")}
EDIT_FIELDS = ("name", "base_url", "tls_ca_bundle", "tls_pinned_sha256")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


def system_fields(*, system: str) -> tuple[SystemField, ...]:
    try:
        return SYSTEM_FIELDS[system]
    except KeyError:
        raise ValidationError({"system": f"Unknown system {system!r}."}) from None


def _active_fields(system: str, options: dict[str, Any]) -> list[SystemField]:
    auth = options.get("auth", "")
    return [f for f in system_fields(system=system) if not f.auth or f.auth == auth]


def _base_url_clean(base_url: str) -> str:
    base_url = (base_url or "").strip()
    if not base_url:
        raise ValidationError({"base_url": "Enter the server's base URL."})
    try:
        url_check(base_url)
    except ConnectorError as exc:
        raise ValidationError({"base_url": exc.message}) from None
    return base_url.rstrip("/")


def _tls_clean(ca_bundle: str, pinned: str) -> tuple[str, str]:
    ca_bundle = (ca_bundle or "").strip()
    pinned = (pinned or "").strip()
    errors: dict[str, str] = {}
    if ca_bundle and "-----BEGIN CERTIFICATE-----" not in ca_bundle:
        errors["tls_ca_bundle"] = "Paste PEM certificates (-----BEGIN CERTIFICATE----- ...)."
    elif ca_bundle:
        try:
            ca_bundle_context(ca_bundle)  # the same loading every client does, so a bad paste fails here
        except ConnectorError as exc:
            errors["tls_ca_bundle"] = exc.message
    if pinned:
        pinned = pinned.replace(":", "").replace(" ", "").lower()
        if not _FINGERPRINT.match(pinned):
            errors["tls_pinned_sha256"] = "A SHA-256 fingerprint is 64 hex digits (colons allowed)."
        else:
            pinned = ":".join(pinned[i:i + 2] for i in range(0, 64, 2)).upper()
    if ca_bundle and pinned and not errors:
        errors["tls_pinned_sha256"] = "Use either a CA bundle or a pinned fingerprint, not both."
    if errors:
        raise ValidationError(errors)
    return ca_bundle, pinned


def _options_unknown(system: str, given: dict[str, Any], stored: dict[str, Any]) -> None:
    """Refuse keys that are not this system's settings (nothing is saved then)."""
    settable = [f.key for f in system_fields(system=system) if not f.secret]
    internal = INTERNAL_OPTIONS.get(system, ())
    unknown = sorted(key for key in given if key not in settable and key not in internal)
    locked = sorted(key for key in given if key in internal and given[key] != stored.get(key))
    messages = []
    if unknown:
        messages.append(f"Unknown option{'s' if len(unknown) > 1 else ''} for {Connection.System(system).label}: "
                        f"{', '.join(unknown)}. Known options: {', '.join(settable)}.")
    if locked:
        messages.append(f"{', '.join(locked)} {'is' if len(locked) == 1 else 'are'} set by ml-connector itself "
                        "and cannot be changed.")
    if messages:
        raise ValidationError({"options": messages})


def _options_clean(system: str, options: dict[str, Any], stored: dict[str, Any] | None = None) -> dict[str, Any]:
    """This system's settings only, trimmed and validated; the internal keys ml-connector wrote
    itself are kept from `stored` (see INTERNAL_OPTIONS), anything else stored is dropped."""
    stored = stored or {}
    spec = {f.key: f for f in system_fields(system=system) if not f.secret}
    cleaned = {key: value for key, value in (options or {}).items() if key in spec}
    errors: dict[str, str] = {}
    for key, field in spec.items():
        value = cleaned.get(key, "")
        if isinstance(value, str):
            value = value.strip()
        if field.integer and value not in ("", None):
            try:
                value = int(value)
                if value < 1:
                    raise ValueError
            except (TypeError, ValueError):
                errors[key] = f"{field.label}: enter a whole number of at least 1."
                continue
        if field.choices and value not in ("", None) and value not in dict(field.choices):
            errors[key] = f"{field.label}: choose one of {', '.join(dict(field.choices))}."
            continue
        cleaned[key] = value
    for field in _active_fields(system, cleaned):
        if not field.secret and field.required and cleaned.get(field.key) in ("", None):
            errors.setdefault(field.key, f"{field.label} is required.")
    for field in spec.values():
        if field.auth and field.auth != cleaned.get("auth"):
            cleaned.pop(field.key, None)
    if errors:
        raise ValidationError(errors)
    for key in INTERNAL_OPTIONS.get(system, ()):
        if key in stored:
            cleaned[key] = stored[key]
    return cleaned


def _credentials_merge(system: str, options: dict[str, Any], stored: dict[str, Any],
                       given: dict[str, Any] | None) -> dict[str, Any]:
    """Blank or missing secrets keep the stored value; secrets of another auth method are dropped."""
    merged = dict(stored or {})
    for key, value in (given or {}).items():
        if value not in ("", None) and key not in GENERATED_CREDENTIALS:
            merged[key] = value.strip() if isinstance(value, str) else value
    active = {f.key: f for f in _active_fields(system, options) if f.secret}
    spec_secret_keys = {f.key for f in system_fields(system=system) if f.secret}
    # Secrets the service writes itself (OAuth access/refresh tokens) are kept as they are.
    merged = {k: v for k, v in merged.items() if k in active or k not in spec_secret_keys}
    errors = {key: f"{f.label} is required." for key, f in active.items() if f.required and not merged.get(key)}
    if errors:
        raise ValidationError(errors)
    return merged


@transaction.atomic
def connection_create(*, tenant: Tenant, system: str, name: str, base_url: str = "",
                      credentials: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
                      tls_ca_bundle: str = "", tls_pinned_sha256: str = "") -> Connection:
    """Validate and store a new connection (status 'new' until its first test).

    Raises ValidationError with a message per field (`name`, `base_url`, an option or secret key, ...)."""
    system_fields(system=system)
    errors: dict[str, list] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ["Give the connection a name."]
    base_url = _collecting(errors, _base_url_clean, base_url or DEFAULT_BASE_URLS.get(system, ""))
    tls = _collecting(errors, _tls_clean, tls_ca_bundle, tls_pinned_sha256)
    requested_options = options or {}
    _collecting(errors, _options_unknown, system, requested_options, {})
    options = _collecting(errors, _options_clean, system, requested_options)
    credentials = _collecting(errors, _credentials_merge, system, options or requested_options, {}, credentials)
    if errors:
        raise ValidationError(errors)
    ca_bundle, pinned = tls
    return Connection.objects.create(
        tenant=tenant, system=system, name=name, base_url=base_url, credentials=credentials,
        options=options, tls_ca_bundle=ca_bundle, tls_pinned_sha256=pinned,
    )


@transaction.atomic
def connection_update(*, connection: Connection, name: str | None = None, base_url: str | None = None,
                      credentials: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
                      tls_ca_bundle: str | None = None, tls_pinned_sha256: str | None = None) -> Connection:
    """Change what is given; None keeps a value. Credentials are write-only: a blank or missing
    secret keeps the stored one. Changing the URL, TLS or credentials resets the status to 'new'."""
    connection = Connection.objects.select_for_update().get(pk=connection.pk)
    errors: dict[str, list] = {}
    before = (connection.base_url, connection.tls_ca_bundle, connection.tls_pinned_sha256)
    before_auth = (connection.options or {}).get("auth")
    new_options = connection.options
    if name is not None:
        if not name.strip():
            errors["name"] = ["Give the connection a name."]
        connection.name = name.strip()
    if base_url is not None:
        connection.base_url = _collecting(errors, _base_url_clean, base_url) or connection.base_url
    if tls_ca_bundle is not None or tls_pinned_sha256 is not None:
        tls = _collecting(
            errors, _tls_clean,
            connection.tls_ca_bundle if tls_ca_bundle is None else tls_ca_bundle,
            connection.tls_pinned_sha256 if tls_pinned_sha256 is None else tls_pinned_sha256,
        )
        if tls:
            connection.tls_ca_bundle, connection.tls_pinned_sha256 = tls
    requested_options = {**connection.options, **(options or {})}
    if options is not None:
        _collecting(errors, _options_unknown, connection.system, options, connection.options or {})
        new_options = _collecting(errors, _options_clean, connection.system, requested_options,
                                  connection.options or {})
    credentials_before = dict(connection.credentials or {})
    new_credentials = _collecting(errors, _credentials_merge, connection.system, new_options or requested_options,
                                  credentials_before, credentials)
    if errors:
        raise ValidationError(errors)
    connection.options = new_options
    changed_access = before != (connection.base_url, connection.tls_ca_bundle, connection.tls_pinned_sha256)
    if new_credentials != credentials_before:
        connection.credentials = new_credentials
        connection.credentials_version += 1
        changed_access = True
    if changed_access or (connection.options or {}).get("auth") != before_auth:
        # Another server or another account: what the old one told us (its company id) no longer holds.
        learned = LEARNED_OPTIONS.get(connection.system, ())
        connection.options = {k: v for k, v in (connection.options or {}).items() if k not in learned}
    if changed_access and connection.status != Connection.Status.PAUSED:
        connection.status = Connection.Status.NEW
        connection.status_message = ""
    connection.save()
    return connection


def connection_delete(*, connection: Connection) -> None:
    """Refused (ValidationError) while flows still use the connection."""
    try:
        connection.delete()
    except ProtectedError as exc:
        names = sorted({str(obj) for obj in exc.protected_objects})
        raise ValidationError(
            f"This connection is used by flows ({', '.join(names)}). Delete or change those flows first."
        ) from None


def connection_ping(*, connection: Connection) -> PingResult:
    """Test the connection and store the outcome. Never raises; the message is safe to show."""
    status: str | None
    try:
        connector_class(connection.system)
    except (LookupError, ImportError):
        result = PingResult(ok=False, message=f"Testing {connection.get_system_display()} connections is not "
                                              "available yet. Your settings are saved.")
        return _ping_store(connection, result, status=None)  # nothing is known about the server itself
    try:
        url_check(connection.base_url)
        result = connector_for(connection).test_connection()
        status = Connection.Status.OK if result.ok else Connection.Status.FAILING
    except ConnectorError as exc:
        result = PingResult(ok=False, message=exc.message or "The test failed.")
        status = Connection.Status.BROKEN if exc.auth else Connection.Status.FAILING
    except Exception as exc:  # a bug in a client must not reach the page
        # Class name only: an exception's text may quote a URL or header carrying a secret.
        logger.error("ping of connection %s failed unexpectedly: %s", connection.pk, type(exc).__name__)
        result = PingResult(ok=False, message="The test failed unexpectedly. Support has been notified.")
        status = Connection.Status.FAILING
    result = _ping_store(connection, result, status=status)
    connection_tested.send_robust(sender=Connection, connection=connection)
    return result


def connection_ping_queue(*, connection: Connection) -> Connection:
    """Queue a test on a django-q2 worker (`connectors.tasks.connection_ping_task`) and return at once:
    the connection is `ping_pending` until the worker stores the outcome."""
    from django_q.tasks import async_task

    Connection.objects.filter(pk=connection.pk).update(ping_requested_at=timezone.now())
    async_task("connectors.tasks.connection_ping_task", connection.pk, task_name=f"ping-connection-{connection.pk}")
    connection.refresh_from_db()
    return connection


def _ping_store(connection: Connection, result: PingResult, *, status: str | None) -> PingResult:
    result.message = _secrets_redact(str(result.message or ""), connection)
    connection.last_ping_at = timezone.now()
    connection.last_ping_ok = result.ok
    connection.last_ping_message = result.message
    fields = ["last_ping_at", "last_ping_ok", "last_ping_message", "updated"]
    if status and connection.status != Connection.Status.PAUSED:
        connection.status = status
        connection.status_message = "" if result.ok else result.message
        fields += ["status", "status_message"]
    connection.save(update_fields=fields)
    return result


def connection_pause(*, connection: Connection, reason: str = "Paused by support.") -> Connection:
    connection.status = Connection.Status.PAUSED
    connection.status_message = reason
    connection.save(update_fields=["status", "status_message", "updated"])
    return connection


def connection_resume(*, connection: Connection) -> Connection:
    """Un-pause; the status is unknown again until the next test."""
    if connection.status == Connection.Status.PAUSED:
        connection.status = Connection.Status.NEW
        connection.status_message = ""
        connection.save(update_fields=["status", "status_message", "updated"])
    return connection


def _secrets_redact(message: str, connection: Connection) -> str:
    for value in (connection.credentials or {}).values():
        if isinstance(value, str) and len(value) >= 4 and value in message:
            message = message.replace(value, mask_secret(value))
    return message


def _collecting(errors: dict[str, list], clean, *args):
    """Run one cleaning step; on ValidationError add its messages to `errors` and return None."""
    try:
        return clean(*args)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            for key, items in exc.message_dict.items():
                errors.setdefault(key, []).extend(items)
        else:
            errors.setdefault("__all__", []).extend(exc.messages)
        return None


def encrypted_fields_all() -> list[tuple[type, Any]]:
    """(model, field) for every field on any installed model that stores its values encrypted."""
    from django.apps import apps

    return [(model, field) for model in apps.get_models() for field in model._meta.concrete_fields
            if getattr(field, "encrypted", False)]


def secrets_rotate(*, batch_size: int = 500, check: bool = False, progress=None) -> dict[str, dict[str, int]]:
    """Re-encrypt every encrypted value under the first FERNET_KEYS key (or, with `check`, only
    count those that are not). Safe while workers run; see crypto.rotate_field.
    Returns {"app.Model.field": {"rows", "stale", "rewritten", "unreadable"}}."""
    from connectors.crypto import rotate_field

    results = {}
    for model, field in encrypted_fields_all():
        label = f"{model._meta.label}.{field.name}"
        total = model._base_manager.count()
        report = (lambda done, stale, rewritten, label=label, total=total:
                  progress(label, done, total, stale, rewritten)) if progress else None
        results[label] = rotate_field(model, field, batch_size=batch_size, check=check, progress=report)
    return results
