"""The portal's connection form: common fields plus the chosen system's fields from SYSTEM_FIELDS.

Secret inputs are never filled from the stored value; on edit a blank secret keeps the stored one.
Validation beyond the input types is the services' job (their ValidationError lands on the fields)."""

from __future__ import annotations

from django import forms

from connectors.base import SystemField
from connectors.models import Connection
from connectors.services import DEFAULT_BASE_URLS, SYSTEM_FIELDS

PREFIX_OPTION = "opt_"
PREFIX_SECRET = "secret_"


def _form_field(field: SystemField, *, editing: bool) -> forms.Field:
    help_text = field.help
    if field.secret:
        if editing:
            help_text = (help_text + " " if help_text else "") + "Leave empty to keep the stored value."
        return forms.CharField(
            label=field.label, required=False, help_text=help_text, strip=True,
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        )
    if field.choices:
        return forms.ChoiceField(label=field.label, choices=field.choices, required=False, help_text=help_text)
    if field.integer:
        return forms.IntegerField(label=field.label, min_value=1, required=False, help_text=help_text)
    return forms.CharField(label=field.label, required=False, help_text=help_text,
                           widget=forms.TextInput(attrs={"autocomplete": "off"}))


class ConnectionForm(forms.Form):
    # Presence checks are the service's, so one submit reports every missing value at once.
    name = forms.CharField(max_length=120, required=False, widget=forms.TextInput(attrs={"aria-required": "true"}),
                           help_text="A name you will recognise, e.g. “Sage 300 – UK”.")
    base_url = forms.CharField(label="Base URL", max_length=500, required=False,
                               widget=forms.URLInput(attrs={"placeholder": "https://erp.example.com"}))
    tls_ca_bundle = forms.CharField(
        label="CA bundle (PEM)", required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Only for a server with a self-signed or private certificate authority.")
    tls_pinned_sha256 = forms.CharField(
        label="Pinned certificate SHA-256", max_length=95, required=False,
        help_text="Alternative to a CA bundle: the server certificate's SHA-256 fingerprint.")

    def __init__(self, *args, system: str, connection: Connection | None = None, **kwargs):
        self.system = system
        self.connection = connection
        if connection is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": connection.name, "base_url": connection.base_url,
                "tls_ca_bundle": connection.tls_ca_bundle, "tls_pinned_sha256": connection.tls_pinned_sha256,
                **{PREFIX_OPTION + k: v for k, v in (connection.options or {}).items()},
            }
        elif connection is None:
            kwargs.setdefault("initial", {}).setdefault("base_url", DEFAULT_BASE_URLS.get(system, ""))
        super().__init__(*args, **kwargs)
        self.system_fields = SYSTEM_FIELDS[system]
        for field in self.system_fields:
            prefix = PREFIX_SECRET if field.secret else PREFIX_OPTION
            self.fields[prefix + field.key] = _form_field(field, editing=connection is not None)
        if connection is not None:
            stored = connection.credentials_masked
            for field in self.system_fields:
                if field.secret and stored.get(field.key):
                    self.fields[PREFIX_SECRET + field.key].widget.attrs["placeholder"] = (
                        f"stored: {stored[field.key]}")

    def system_bound_fields(self) -> list:
        return [self[(PREFIX_SECRET if f.secret else PREFIX_OPTION) + f.key] for f in self.system_fields]

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "base_url": data["base_url"],
            "tls_ca_bundle": data["tls_ca_bundle"],
            "tls_pinned_sha256": data["tls_pinned_sha256"],
            "options": {f.key: data[PREFIX_OPTION + f.key] for f in self.system_fields if not f.secret},
            "credentials": {f.key: data[PREFIX_SECRET + f.key] for f in self.system_fields if f.secret},
        }

    def add_service_errors(self, exc) -> None:
        """Put a services ValidationError on the matching inputs (unknown keys → form-level)."""
        secret_keys = {f.key for f in self.system_fields if f.secret}
        for key, messages in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
            name = key
            if key in secret_keys:
                name = PREFIX_SECRET + key
            elif PREFIX_OPTION + key in self.fields:
                name = PREFIX_OPTION + key
            if name not in self.fields:
                name = None
            for message in messages:
                self.add_error(name, message)
