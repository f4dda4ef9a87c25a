"""Writes for tenants, members, sign-in throttling and API tokens."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify
from rest_framework.authtoken.models import Token

from tenants.models import Membership, Tenant
from tenants.selectors import LOGIN_FAILURE_WINDOW, email_normalize, login_failure_key


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


@transaction.atomic
def api_token_rotate(*, user) -> Token:
    """Replace the user's API token (the old one stops working at once) and return the new one."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)


def api_token_revoke(*, user) -> None:
    Token.objects.filter(user=user).delete()
