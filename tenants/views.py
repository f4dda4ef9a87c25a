from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from connectors.selectors import connection_list
from tenants.decorators import tenant_required
from tenants.forms import EmailAuthenticationForm, SignupForm
from tenants.selectors import api_token_list, flow_summary_list
from tenants.services import api_token_create, api_token_revoke, tenant_signup


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated and request.tenant is not None:
        return redirect("dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            membership = tenant_signup(
                company_name=form.cleaned_data["company_name"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome! {membership.tenant.name} is ready. Add your first connection.")
            return redirect("dashboard")
    return render(request, "tenants/signup.html", {"form": form})


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


@tenant_required
def dashboard(request):
    connections = list(connection_list(tenant=request.tenant))
    flows = list(flow_summary_list(tenant=request.tenant))
    return render(request, "tenants/dashboard.html", {
        "connections": connections,
        "flows": flows,
        "has_erp": any(c.system != "pipedrive" for c in connections),
        "has_pipedrive": any(c.system == "pipedrive" for c in connections),
    })


@tenant_required
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


@tenant_required
@require_POST
def api_token_revoke_view(request, id):
    if api_token_revoke(user=request.user, token_id=id):
        messages.success(request, "Token revoked: it stopped working at once.")
    else:
        messages.error(request, "No such token (already revoked?).")
    return redirect("api_token")
