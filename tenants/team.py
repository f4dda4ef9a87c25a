"""Writes for the team: invitations by email, roles, removal. Owners and admins manage the team;
only owners grant, change or remove the owner role, and a tenant always keeps one owner."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from tenants.models import Invite, Membership, Tenant
from tenants.selectors import api_token_hash, email_normalize

INVITE_TTL = timedelta(days=7)
ROLES = {r.value for r in Membership.Role}


class TeamConflict(Exception):
    """The change would break a team rule (the last owner); the API answers 409."""


def _require_manager(actor: Membership, *, tenant: Tenant, role: str | None = None) -> None:
    if actor is None or actor.tenant_id != tenant.pk or not actor.can_edit:
        raise PermissionDenied("Only owners and admins can manage the team.")
    if role == Membership.Role.OWNER and actor.role != Membership.Role.OWNER:
        raise PermissionDenied("Only owners can grant or change the owner role.")


def _role_clean(role: str) -> str:
    if role not in ROLES:
        raise ValidationError({"role": f"Choose one of: {', '.join(sorted(ROLES))}."})
    return role


def _invite_mail(invite: Invite, token: str, base_url: str) -> None:
    context = {
        "invite": invite,
        "tenant": invite.tenant.name,
        "role": invite.get_role_display(),
        "inviter": (invite.invited_by.email if invite.invited_by else "") or "A colleague",
        "link": base_url.rstrip("/") + reverse("invite_accept", kwargs={"token": token}),
        "expires": invite.expires_at,
    }
    subject, _, body = render_to_string("tenants/email/invite.txt", context).partition("\n\n")
    send_mail(subject.strip(), body.lstrip(), None, [invite.email])


def _token_new() -> str:
    return "inv_" + secrets.token_urlsafe(32)


@transaction.atomic
def invite_create(*, tenant: Tenant, email: str, role: str, actor: Membership, base_url: str) -> Invite:
    """Invite `email` with `role` and send the link; an earlier open invite of that address is replaced."""
    role = _role_clean(role)
    _require_manager(actor, tenant=tenant, role=role)
    email = email_normalize(email)
    if not email or "@" not in email:
        raise ValidationError({"email": "Enter a valid email address."})
    if (
        Membership.objects.filter(tenant=tenant, user__email__iexact=email).exists()
        or Membership.objects.filter(tenant=tenant, user__username__iexact=email).exists()
    ):
        raise ValidationError({"email": "This person is already a member."})
    now = timezone.now()
    Invite.objects.filter(
        tenant=tenant, email=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now)
    token = _token_new()
    invite = Invite.objects.create(
        tenant=tenant,
        email=email,
        role=role,
        token_hash=api_token_hash(token),
        invited_by=actor.user,
        expires_at=now + INVITE_TTL,
        sent_at=now,
    )
    _invite_mail(invite, token, base_url)  # inside the transaction: no mail, no invite
    return invite


@transaction.atomic
def invite_resend(*, invite: Invite, actor: Membership, base_url: str) -> Invite:
    """A fresh link and expiry for a pending or expired invite (the old link stops working)."""
    _require_manager(actor, tenant=invite.tenant, role=invite.role)
    if invite.accepted_at or invite.revoked_at:
        raise TeamConflict(f"This invite was already {'accepted' if invite.accepted_at else 'revoked'}.")
    token = _token_new()
    now = timezone.now()
    invite.token_hash, invite.expires_at, invite.sent_at = api_token_hash(token), now + INVITE_TTL, now
    invite.save(update_fields=["token_hash", "expires_at", "sent_at"])
    _invite_mail(invite, token, base_url)  # inside the transaction: no mail, no invite
    return invite


def invite_revoke(*, invite: Invite, actor: Membership) -> Invite:
    _require_manager(actor, tenant=invite.tenant, role=invite.role)
    if invite.accepted_at:
        raise TeamConflict("This invite was already accepted; remove the member instead.")
    if invite.revoked_at is None:
        invite.revoked_at = timezone.now()
        invite.save(update_fields=["revoked_at"])
    return invite


def invite_find(*, token: str) -> Invite | None:
    if not token:
        return None
    return (
        Invite.objects.select_related("tenant", "invited_by").filter(token_hash=api_token_hash(token)).first()
    )


@transaction.atomic
def invite_accept(*, invite: Invite, user=None, password: str = "") -> Membership:
    """Join the tenant: as the signed-in `user` (whose email must be the invited one), or as a new
    account with `password` (the emailed link proves the address, so it is active at once)."""
    invite = Invite.objects.select_for_update().select_related("tenant").get(pk=invite.pk)
    if not invite.is_open(timezone.now()):
        raise ValidationError(f"This invitation is {invite.state(timezone.now())}. Ask for a new one.")
    User = get_user_model()
    if user is not None and user.is_authenticated:
        if email_normalize(user.email or user.username) != invite.email:
            raise ValidationError(f"This invitation is for {invite.email}; sign in with that account.")
    else:
        existing = (
            User.objects.filter(username__iexact=invite.email).first()
            or User.objects.filter(email__iexact=invite.email).first()
        )
        if existing is not None:
            raise ValidationError(
                "An account with this email exists: sign in first, then open the link again."
            )
        if not password:
            raise ValidationError({"password": "Choose a password."})
        user = User.objects.create_user(username=invite.email, email=invite.email, password=password)
    membership, _ = Membership.objects.get_or_create(
        tenant=invite.tenant, user=user, defaults={"role": invite.role}
    )
    invite.accepted_at = timezone.now()
    invite.save(update_fields=["accepted_at"])
    return membership


def _owners_locked(tenant: Tenant) -> list[int]:
    # Locks the owners' rows so two concurrent demotions cannot both see "another owner is left".
    return list(
        Membership.objects.select_for_update()
        .filter(tenant=tenant, role=Membership.Role.OWNER)
        .values_list("pk", flat=True)
    )


@transaction.atomic
def membership_role_change(*, membership: Membership, role: str, actor: Membership) -> Membership:
    role = _role_clean(role)
    touches_owner = Membership.Role.OWNER in (role, membership.role)
    _require_manager(actor, tenant=membership.tenant, role=Membership.Role.OWNER if touches_owner else role)
    if membership.role == Membership.Role.OWNER and role != Membership.Role.OWNER:
        if _owners_locked(membership.tenant) == [membership.pk]:
            raise TeamConflict("The last owner cannot be demoted: make someone else an owner first.")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: Membership) -> None:
    _require_manager(
        actor,
        tenant=membership.tenant,
        role=Membership.Role.OWNER if membership.role == Membership.Role.OWNER else None,
    )
    if membership.role == Membership.Role.OWNER and _owners_locked(membership.tenant) == [membership.pk]:
        raise TeamConflict("The last owner cannot be removed: make someone else an owner first.")
    membership.delete()


def membership_alert_emails_set(*, membership: Membership, enabled: bool) -> Membership:
    """A member's own choice to get (or not) alert emails."""
    membership.alert_emails = bool(enabled)
    membership.save(update_fields=["alert_emails"])
    return membership
