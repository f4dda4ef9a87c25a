"""Input and output shapes. Credentials are write-only; reads show `credentials_masked`."""

from django.core.validators import RegexValidator
from rest_framework import serializers

from connectors.models import Connection


class ConnectionOutput(serializers.ModelSerializer):
    credentials_masked = serializers.DictField(
        child=serializers.CharField(), read_only=True,
        help_text="Stored secret keys with at most their last 4 characters.")

    class Meta:
        model = Connection
        fields = ("id", "uuid", "system", "name", "base_url", "options", "credentials_masked",
                  "tls_ca_bundle", "tls_pinned_sha256", "status", "status_message", "last_ping_at",
                  "last_ping_ok", "last_ping_message", "created", "updated")
        read_only_fields = fields


def name_field(**kwargs) -> serializers.CharField:
    """A name that is not blank; the schema says so too (minLength and a non-space pattern)."""
    return serializers.CharField(max_length=120, min_length=1, trim_whitespace=False,
                                 validators=[RegexValidator(r"\S", "Enter a name.")], **kwargs)


class ConnectionUpdateInput(serializers.Serializer):
    """All optional; omitted values are kept. A blank or omitted secret keeps the stored one."""

    name = name_field(required=False)
    base_url = serializers.CharField(max_length=500, required=False)
    credentials = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=True), required=False, write_only=True,
        help_text="Secrets by key (password, api_token, client_secret, ...). Write-only.")
    options = serializers.DictField(required=False,
                                    help_text="Non-secret settings by key (company, user, plan, seats, ...); only "
                                              "the system's known keys are accepted.")
    tls_ca_bundle = serializers.CharField(required=False, allow_blank=True)
    tls_pinned_sha256 = serializers.CharField(max_length=95, required=False, allow_blank=True)


class ConnectionCreateInput(ConnectionUpdateInput):
    system = serializers.ChoiceField(choices=Connection.System.choices)
    name = name_field()
    base_url = serializers.CharField(max_length=500, required=False, allow_blank=True,
                                     help_text="Optional for Pipedrive (defaults to https://api.pipedrive.com).")


class PingOutput(serializers.Serializer):
    status = serializers.ChoiceField(choices=["pending", "done", "never"], help_text=(
        "pending: a worker is testing (poll status_url); done: ok and message are the latest test's; "
        "never: not tested yet."))
    ok = serializers.BooleanField(allow_null=True)
    message = serializers.CharField(allow_blank=True)
    tested_at = serializers.DateTimeField(allow_null=True)
    status_url = serializers.CharField()
    connection = ConnectionOutput()

    @staticmethod
    def for_connection(connection, *, status_url: str) -> dict:
        status = "pending" if connection.ping_pending else ("done" if connection.last_ping_at else "never")
        done = status == "done"
        return PingOutput({
            "status": status, "ok": connection.last_ping_ok if done else None,
            "message": connection.last_ping_message if done else "", "tested_at": connection.last_ping_at,
            "status_url": status_url, "connection": connection}).data
