from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from rest_framework.authtoken.models import Token

        # DRF's Token.__str__ is the key itself; admin delete confirmations and logs print str(obj).
        Token.__str__ = lambda token: f"API token of user {token.user_id}"
