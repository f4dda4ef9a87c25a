"""Credentials encrypted with FERNET_KEYS alone (connectors/crypto.py), no longer derived from SECRET_KEY.

The column keeps its format (JSON whose leaves are Fernet tokens), so the field change needs no SQL.
Every existing value, written under PBKDF2(SECRET_KEY, salt = a FERNET_KEYS entry) by
django-fernet-encrypted-fields, is decrypted with that scheme and re-encrypted under the first
FERNET_KEYS key. Run it with the SECRET_KEY those values were written with (or that key in
SECRET_KEY_FALLBACKS); a value that cannot be read stops the migration.
"""

from django.db import migrations

import connectors.fields


def reencrypt(apps, schema_editor):
    from connectors.crypto import rotate_field

    Connection = apps.get_model("connectors", "Connection")
    counts = rotate_field(Connection, Connection._meta.get_field("credentials"))
    if counts["unreadable"]:
        raise RuntimeError(
            f"{counts['unreadable']} stored credential(s) cannot be decrypted with SECRET_KEY, "
            "SECRET_KEY_FALLBACKS and FERNET_KEYS as configured; set the keys they were written with.")


class Migration(migrations.Migration):
    dependencies = [("connectors", "0004_pipedrive_keys_by_trusted_host")]

    operations = [
        migrations.AlterField(
            model_name="connection",
            name="credentials",
            field=connectors.fields.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.RunPython(reencrypt, migrations.RunPython.noop),
    ]
