"""Portal team page: members and roles, invitations, and accepting an invitation (public link)."""

from django import forms
from django.contrib import messages
from django.contrib.auth import login, password_validation
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from tenants.decorators import tenant_editor_required, tenant_required
from tenants.models import Membership
from tenants.selectors import invite_list, membership_list
from tenants.team import (
    TeamConflict,
    invite_accept,
    invite_create,
    invite_find,
    invite_resend,
    invite_revoke,
    membership_alert_emails_set,
    membership_remove,
    membership_role_change,
)


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=150)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.VIEWER)


class AcceptForm(forms.Form):
    password1 = forms.CharField(
        label="Choose a password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, email: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean_password1(self):
        password = self.cleaned_data["password1"]
        password_validation.validate_password(password)
        return password


def _base_url(request) -> str:
    return request.build_absolute_uri("/")


def _team_page(request, *, form=None, status=200):
    now = timezone.now()
    invites = [(i, i.state(now)) for i in invite_list(tenant=request.tenant, open_only=True)]
    return render(
        request,
        "tenants/team.html",
        {
            "members": membership_list(tenant=request.tenant),
            "invites": invites,
            "roles": Membership.Role.choices,
            "form": form or InviteForm(),
            "can_manage": request.membership.can_edit,
            "is_owner": request.membership.role == Membership.Role.OWNER,
        },
        status=status,
    )


def _apply(request, change, done: str) -> bool:
    """Run a team change and turn its refusals into messages (the page shows them)."""
    try:
        change()
    except (TeamConflict, PermissionDenied) as exc:
        messages.error(request, str(exc))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, done)
        return True
    return False


@tenant_required
def team_view(request):
    return _team_page(request)


@tenant_editor_required
@require_POST
def invite_create_view(request):
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _team_page(request, form=form, status=400)
    try:
        invite = invite_create(
            tenant=request.tenant,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            actor=request.membership,
            base_url=_base_url(request),
        )
    except PermissionDenied as exc:
        form.add_error("role", str(exc))
        return _team_page(request, form=form, status=403)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return _team_page(request, form=form, status=400)
    messages.success(request, f"Invitation sent to {invite.email}.")
    return redirect("team")


def _invite_get(request, id):
    return get_object_or_404(invite_list(tenant=request.tenant), pk=id)


def _member_get(request, id):
    return get_object_or_404(membership_list(tenant=request.tenant), pk=id)


@tenant_editor_required
@require_POST
def invite_resend_view(request, id):
    invite = _invite_get(request, id)
    _apply(
        request,
        lambda: invite_resend(invite=invite, actor=request.membership, base_url=_base_url(request)),
        f"A new link was sent to {invite.email}.",
    )
    return redirect("team")


@tenant_editor_required
@require_POST
def invite_revoke_view(request, id):
    invite = _invite_get(request, id)
    _apply(
        request,
        lambda: invite_revoke(invite=invite, actor=request.membership),
        f"The invitation of {invite.email} was revoked.",
    )
    return redirect("team")


@tenant_editor_required
@require_POST
def member_role_view(request, id):
    member = _member_get(request, id)
    _apply(
        request,
        lambda: membership_role_change(
            membership=member, role=request.POST.get("role", ""), actor=request.membership
        ),
        f"{member.user.email or member.user.username} is now {request.POST.get('role', '')}.",
    )
    return redirect("team")


@tenant_editor_required
@require_POST
def member_remove_view(request, id):
    member = _member_get(request, id)
    removed = _apply(
        request,
        lambda: membership_remove(membership=member, actor=request.membership),
        f"{member.user.email or member.user.username} was removed from the team.",
    )
    if removed and member.user_id == request.user.pk:
        return redirect("home")
    return redirect("team")


@tenant_required  # only owners and admins get alert emails, so only they have a choice to make
@require_POST
def alert_emails_view(request):
    membership_alert_emails_set(membership=request.membership, enabled=request.POST.get("enabled") == "1")
    messages.success(request, "Alert emails on." if request.membership.alert_emails else "Alert emails off.")
    return redirect("team")


@require_http_methods(["GET", "POST"])
def invite_accept_view(request, token):
    """GET shows the invitation (mail scanners follow links); POST joins, signed in or with a new password."""
    invite = invite_find(token=token)
    now = timezone.now()
    if invite is None or not invite.is_open(now):
        state = invite.state(now) if invite else "unknown"
        return render(request, "tenants/invite_accept.html", {"invite": None, "state": state}, status=404)
    signed_in = request.user.is_authenticated
    form = AcceptForm(
        request.POST if request.method == "POST" and not signed_in else None, email=invite.email
    )
    error = ""
    if request.method == "POST" and (signed_in or form.is_valid()):
        try:
            membership = invite_accept(
                invite=invite,
                user=request.user if signed_in else None,
                password="" if signed_in else form.cleaned_data["password1"],
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            if not signed_in:
                login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to {membership.tenant.name}.")
            return redirect("dashboard")
    return render(
        request,
        "tenants/invite_accept.html",
        {"invite": invite, "form": form, "signed_in": signed_in, "error": error},
        status=400 if error or form.errors else 200,
    )
