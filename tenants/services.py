"""Writes for tenants, members, sign-in throttling and API tokens."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from tenants.models import ApiToken, Membership, Tenant
from tenants.selectors import (
    API_TOKEN_PREFIX,
    LOGIN_FAILURE_WINDOW,
    api_token_hash,
    email_normalize,
    login_failure_key,
)


def tenant_slug_unique(*, name: str) -> str:
    """A slug from the company name, suffixed -2, -3, ... until no tenant has it."""
    base = slugify(name)[:70].strip("-") or "tenant"
    slug, n = base, 1
    while Tenant.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def tenant_create(*, name: str) -> Tenant:
    for _ in range(5):  # another signup may take the same slug between the check and the insert
        try:
            with transaction.atomic():
                return Tenant.objects.create(name=name.strip(), slug=tenant_slug_unique(name=name))
        except IntegrityError:
            continue
    raise ValidationError("Could not create the organisation, please try again.")


def membership_create(*, tenant: Tenant, user, role: str = Membership.Role.VIEWER) -> Membership:
    return Membership.objects.create(tenant=tenant, user=user, role=role)


@transaction.atomic
def tenant_signup(*, company_name: str, email: str, password: str) -> Membership:
    """Create the tenant, its first user (username = lower-cased email) and the owner membership.

    Raises ValidationError({"email": ...}) when a user with that email exists. Password strength is
    the caller's form's job (it needs the validators' messages next to the field)."""
    User = get_user_model()
    email = email_normalize(email)
    if User.objects.filter(username__iexact=email).exists() or User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "An account with this email already exists. Sign in instead."})
    tenant = tenant_create(name=company_name)
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=email, email=email, password=password)
    except IntegrityError:
        raise ValidationError({"email": "An account with this email already exists. Sign in instead."}) from None
    return membership_create(tenant=tenant, user=user, role=Membership.Role.OWNER)


def login_failure_record(*, ip: str, email: str) -> int:
    """Count one failed sign-in for this IP + email; the window starts at the first failure."""
    key = login_failure_key(ip=ip, email=email)
    cache.add(key, 0, timeout=LOGIN_FAILURE_WINDOW)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=LOGIN_FAILURE_WINDOW)
        return 1


def login_failures_clear(*, ip: str, email: str) -> None:
    cache.delete(login_failure_key(ip=ip, email=email))


def api_token_create(*, user, name: str = "") -> ApiToken:
    """A new API token for `user`; its key is on the returned object's `.key`, and nowhere else ever."""
    key = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=(name or "").strip()[:80], prefix=key[:12],
                                    key_hash=api_token_hash(key))
    token.key = key
    return token


def api_token_revoke(*, user, token_id: int) -> bool:
    """Delete one of the user's tokens (it stops working at once); False when it is not theirs."""
    deleted, _ = ApiToken.objects.filter(user=user, pk=token_id).delete()
    return bool(deleted)


def api_tokens_revoke_all(*, user) -> int:
    deleted, _ = ApiToken.objects.filter(user=user).delete()
    return deleted


def api_token_touch(*, token: ApiToken) -> None:
    """Record use, at most once a minute per token (one write per request would be wasteful)."""
    now = timezone.now()
    if token.last_used is None or now - token.last_used > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        token.last_used = now
