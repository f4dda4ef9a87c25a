"""Model fields whose values are stored encrypted (connectors/crypto.py holds the keys).

`rotate_keys` finds every field with `encrypted = True` on any model and rewrites its values."""

from __future__ import annotations

from typing import Any

from django.db import models

from connectors.crypto import decrypt_tree, encrypt_tree, keyring, stored_json


class EncryptedJSONField(models.JSONField):
    """A JSON object whose leaf values are Fernet tokens; the keys of the object stay readable.

    The column holds the same JSON the previous library (django-fernet-encrypted-fields) wrote, so
    no schema change. Leaves come back as strings. A value no key can read raises DecryptionFailed
    (loudly: a missing key must not look like empty credentials that the next save would keep)."""

    encrypted = True

    def get_prep_value(self, value: Any) -> Any:
        if value is None or hasattr(value, "resolve_expression"):
            return super().get_prep_value(value)
        return super().get_prep_value(encrypt_tree(value, keyring()))

    def from_db_value(self, value: Any, expression, connection) -> Any:
        value = super().from_db_value(value, expression, connection)
        return decrypt_tree(value, keyring())

    # -- rotation (connectors.crypto.rotate_field) --
    @staticmethod
    def stored_tree(stored: str) -> Any:
        return stored_json(stored)

    @staticmethod
    def from_plain(plain: Any) -> Any:
        return plain  # update() encrypts it through get_prep_value, under the first key
