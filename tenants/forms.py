from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm

from tenants.selectors import email_normalize, login_is_locked
from tenants.services import login_failure_record, login_failures_clear


class SignupForm(forms.Form):
    company_name = forms.CharField(label="Company name", max_length=200,
                                   widget=forms.TextInput(attrs={"autocomplete": "organization", "autofocus": True}))
    email = forms.EmailField(label="Work email", max_length=150,
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password1 = forms.CharField(label="Password", strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                                help_text=password_validation.password_validators_help_text_html())
    password2 = forms.CharField(label="Password again", strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean_company_name(self):
        name = self.cleaned_data["company_name"].strip()
        if not name:
            raise forms.ValidationError("Enter your company name.")
        return name

    def clean_email(self):
        # No "already registered" error here: that would tell anyone which addresses have accounts.
        return email_normalize(self.cleaned_data["email"])

    def clean(self):
        cleaned = super().clean()
        password1, password2 = cleaned.get("password1"), cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", "The two passwords do not match.")
        elif password1:
            email = cleaned.get("email") or ""
            # An unsaved user lets the similarity validator compare against the email.
            candidate = get_user_model()(username=email, email=email)
            try:
                password_validation.validate_password(password1, candidate)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


LOCKED_MESSAGE = ("Too many failed sign-in attempts for this email. Wait 15 minutes and try again, "
                  "or reset your password.")


class ThrottledLoginMixin:
    """Locks a username (per client IP) after LOGIN_FAILURE_LIMIT failures in the window, even with the
    right password. Counts live in the cache, shared by every process when REDIS_URL is set. Used by
    the portal's and the admin's sign-in forms, so either page counts against the same lock."""

    def clean(self):
        username = email_normalize(self.cleaned_data.get("username") or "")
        ip = client_ip(self.request)
        if username and login_is_locked(ip=ip, email=username):
            raise forms.ValidationError(LOCKED_MESSAGE, code="locked")
        try:
            cleaned = super().clean()
        except forms.ValidationError as exc:
            if username and getattr(exc, "code", None) == "invalid_login":
                login_failure_record(ip=ip, email=username)
            raise
        if username:
            login_failures_clear(ip=ip, email=username)
        return cleaned


class EmailAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    """Sign in by email (stored lower-cased as the username)."""

    username = forms.EmailField(label="Email", max_length=150,
                                widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}))

    def clean_username(self):
        return email_normalize(self.cleaned_data["username"])

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Enter the email and password of your account. The password is case-sensitive.",
        "locked": LOCKED_MESSAGE,
    }


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The admin's sign-in form with the portal's lock-out (`admin.site.login_form`)."""


def client_ip(request) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy rewrites it.
    return (request.META.get("REMOTE_ADDR") or "unknown") if request is not None else "unknown"
