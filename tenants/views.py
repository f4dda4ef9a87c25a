from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import urlsafe_base64_decode
from django.views.decorators.http import require_http_methods, require_POST

from tenants.decorators import tenant_self_service
from tenants.forms import EmailAuthenticationForm, SignupForm
from tenants.selectors import api_token_list, membership_for_user
from tenants.services import (
    api_token_create,
    api_token_revoke,
    signup_activate,
    signup_activation_tokens,
    signup_register,
)


@require_http_methods(["GET", "POST"])
def signup(request):
    """Whether the email is new or taken, a valid form ends on the same "check your email" page: the
    email itself carries the activation link (new) or a sign-in notice (taken)."""
    if request.user.is_authenticated and request.tenant is not None:
        return redirect("dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        signup_register(company_name=form.cleaned_data["company_name"], email=form.cleaned_data["email"],
                        password=form.cleaned_data["password1"], base_url=request.build_absolute_uri("/"))
        return redirect("signup_sent")
    return render(request, "tenants/signup.html", {"form": form})


def signup_sent(request):
    return render(request, "tenants/signup_sent.html")


@require_http_methods(["GET", "POST"])
def signup_activate_view(request, uidb64, token):
    """GET asks (mail scanners follow links), POST activates and signs in."""
    try:
        user = get_user_model().objects.get(pk=urlsafe_base64_decode(uidb64).decode())
    except (ValueError, TypeError, OverflowError, get_user_model().DoesNotExist):
        user = None
    valid = user is not None and signup_activation_tokens.check_token(user, token)
    if request.method == "POST" and valid:
        signup_activate(user=user)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        membership = membership_for_user(user=user)
        name = membership.tenant.name if membership else "Your organisation"
        messages.success(request, f"Welcome! {name} is ready. Set up your first sync: choose your ERP.")
        return redirect("wizard_start")  # a new organisation starts in the set-up wizard
    return render(request, "tenants/signup_activate.html",
                  {"valid": valid, "email": user.email if valid else ""}, status=200 if valid else 400)


class LoginView(auth_views.LoginView):
    form_class = EmailAuthenticationForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error("__all__", "locked"):
            response.status_code = 429
        return response


def home(request):
    return redirect("dashboard" if request.user.is_authenticated else "login")


@tenant_self_service  # a member's own tokens: a viewer's token is read-only like its owner
@require_http_methods(["GET", "POST"])
def api_token(request):
    """The user's API tokens (prefix, created, last used). POST creates one and shows its key once.

    A token acts as its user: same tenant, same role (viewers get read-only API access)."""
    new_token = None
    if request.method == "POST":
        new_token = api_token_create(user=request.user, name=request.POST.get("name", ""))
        messages.success(request, "New API token created. Copy it now: it will not be shown again.")
    return render(request, "tenants/api_token.html", {
        "tokens": api_token_list(user=request.user), "new_key": new_token.key if new_token else None,
    })


@tenant_self_service
@require_POST
def api_token_revoke_view(request, id):
    if not api_token_revoke(user=request.user, token_id=id):
        raise Http404("No such token (already revoked?).")  # someone else's token: as if it did not exist
    messages.success(request, "Token revoked: it stopped working at once.")
    return redirect("api_token")
