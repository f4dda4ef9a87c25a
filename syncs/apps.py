from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _install_dispatcher(sender, **kwargs):
    from syncs.scheduler import schedule_ensure

    schedule_ensure()


class SyncsConfig(AppConfig):
    name = "syncs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        post_migrate.connect(_install_dispatcher, sender=self)
