"""Writes for tenants, members, sign-in throttling and API tokens."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
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
def tenant_signup(*, company_name: str, email: str, password: str, active: bool = True) -> Membership:
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
            user = User.objects.create_user(username=email, email=email, password=password, is_active=active)
    except IntegrityError:
        raise ValidationError({"email": "An account with this email already exists. Sign in instead."}) from None
    return membership_create(tenant=tenant, user=user, role=Membership.Role.OWNER)


class SignupActivationTokens(PasswordResetTokenGenerator):
    """One-use activation links: the hash covers is_active, so a link dies once the account is active."""

    key_salt = "tenants.signup-activation"

    def _make_hash_value(self, user, timestamp):
        return f"{super()._make_hash_value(user, timestamp)}{user.is_active}"


signup_activation_tokens = SignupActivationTokens()


def signup_register(*, company_name: str, email: str, password: str, base_url: str) -> Membership | None:
    """Public sign-up that never tells whether the email is taken: both outcomes end with one email.

    A new address gets an inactive account (tenant, user, owner membership) and an activation link;
    an address with an account gets a notice (or, when that account was never activated, a fresh
    link). Returns the new membership, or None when the address was taken."""
    User = get_user_model()
    email = email_normalize(email)
    existing = User.objects.filter(username__iexact=email).first() or User.objects.filter(email__iexact=email).first()
    if existing is None:
        try:
            membership = tenant_signup(company_name=company_name, email=email, password=password, active=False)
        except ValidationError:  # another sign-up took the address meanwhile
            existing = User.objects.filter(username__iexact=email).first()
        else:
            _signup_mail(membership.user, "tenants/email/signup_activate.txt", base_url)
            return membership
    make_password(password)  # the same hashing work as a new account, so timing does not tell either
    if existing is not None:
        never_activated = not existing.is_active and existing.last_login is None
        _signup_mail(existing, "tenants/email/signup_activate.txt" if never_activated
                     else "tenants/email/signup_exists.txt", base_url)
    return None


def signup_activate(*, user) -> None:
    user.is_active = True
    user.save(update_fields=["is_active"])


def _signup_mail(user, template: str, base_url: str) -> None:
    context = {
        "email": user.email or user.username,
        "base_url": base_url.rstrip("/"),
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": signup_activation_tokens.make_token(user),
    }
    subject, _, body = render_to_string(template, context).partition("\n\n")
    send_mail(subject.strip(), body.lstrip(), None, [context["email"]])


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
