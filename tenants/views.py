from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from connectors.selectors import connection_list
from tenants.decorators import tenant_required
from tenants.forms import EmailAuthenticationForm, SignupForm
from tenants.selectors import api_token_get, flow_summary_list
from tenants.services import api_token_rotate, tenant_signup


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
    """Whether the user has a token (masked); POST creates or rotates it and shows the new key once.

    The token acts as its user: same tenant, same role (viewers get read-only API access)."""
    new_key = None
    if request.method == "POST":
        new_key = api_token_rotate(user=request.user).key
        messages.success(request, "New API token created. Copy it now: it will not be shown again.")
    token = api_token_get(user=request.user)
    return render(request, "tenants/api_token.html", {"token": token, "new_key": new_key})
