"""A password change revokes the user's API tokens, wherever it happens (portal change or reset, the
admin, `manage.py changepassword`): a leaked token must not outlive the credentials that issued it."""

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="tenants.api_tokens_revoke_on_password")
def api_tokens_revoke_on_password_change(sender, instance, created, **kwargs):
    # `_password` holds the new raw password from set_password() until save() has run Django's own
    # password_changed hooks; a hash upgrade at sign-in clears it first, so it revokes nothing.
    if not created and getattr(instance, "_password", None) is not None:
        from tenants.services import api_tokens_revoke_all

        api_tokens_revoke_all(user=instance)
