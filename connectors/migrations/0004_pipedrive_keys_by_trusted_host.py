"""Pipedrive limiter and field-cache keys: `company:<id>` only for Pipedrive's own hosts (issue 8 §3).

Rows written under the old keys may have been planted by a tenant claiming another tenant's company
id, so they are dropped, all of them (both tables are caches: budgets come back from Pipedrive's
headers on the next call, field definitions with one list call per entity). A stored company id
cannot be told apart from one a tenant typed in through the API, so Pipedrive connections forget it;
the next *Test connection* against api.pipedrive.com learns it again.
"""

from django.db import migrations


def forward(apps, schema_editor):
    apps.get_model("connectors", "PipedriveFieldCache").objects.all().delete()
    apps.get_model("connectors", "PipedriveBudget").objects.all().delete()
    Connection = apps.get_model("connectors", "Connection")
    for connection in Connection.objects.filter(system="pipedrive").only("id", "options").iterator():
        options = dict(connection.options or {})
        if options.pop("company_id", None) is not None:
            Connection.objects.filter(pk=connection.pk).update(options=options)


class Migration(migrations.Migration):
    dependencies = [("connectors", "0003_connection_ping_requested_at")]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
