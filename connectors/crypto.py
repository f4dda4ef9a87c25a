"""Encryption of stored secrets with FERNET_KEYS, independent of SECRET_KEY.

FERNET_KEYS is a comma list: the first key encrypts, every key decrypts (MultiFernet), so a new key
is prepended, `manage.py rotate_keys` rewrites every value under it, and then the old key can go. An
entry is a Fernet key (`Fernet.generate_key()`: 32 bytes, urlsafe base64) or any other string of 32+
characters, stretched with HKDF-SHA256. SECRET_KEY plays no part: changing it leaves secrets readable.

Values written before (django-fernet-encrypted-fields) were encrypted under PBKDF2(SECRET_KEY or a
SECRET_KEY_FALLBACKS entry, salt = a FERNET_KEYS entry). They are still decrypted, as a fallback
derived only when a value needs it, and rotate_keys (or migration 0004) rewrites them.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from django.conf import settings
from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast

HKDF_INFO = b"ml-connector FERNET_KEYS v1"
LEGACY_ITERATIONS = 100_000  # django-fernet-encrypted-fields 0.4


class DecryptionFailed(Exception):
    """A stored value no key in FERNET_KEYS (nor the legacy scheme) can read. Names no secret."""

    def __init__(self) -> None:
        super().__init__("A stored secret cannot be decrypted with FERNET_KEYS: was a key removed before "
                         "`manage.py rotate_keys` rewrote every value under the first key?")


def fernet_key(entry: str) -> bytes:
    """A Fernet key as given, or one derived from any other string (never from SECRET_KEY)."""
    raw = entry.strip().encode()
    if len(raw) == 44:
        try:
            if len(base64.urlsafe_b64decode(raw)) == 32:
                return raw
        except (binascii.Error, ValueError):
            pass
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(raw)
    return base64.urlsafe_b64encode(key)


def _legacy_key(secret_key: str, salt: str) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt.encode(), iterations=LEGACY_ITERATIONS)
    return base64.urlsafe_b64encode(kdf.derive(secret_key.encode()))


class Keyring:
    def __init__(self, entries: list[str], legacy_secrets: list[str]) -> None:
        if not entries:
            raise DecryptionFailed()
        self.primary = Fernet(fernet_key(entries[0]))
        self.current = MultiFernet([Fernet(fernet_key(entry)) for entry in entries])
        self._entries = entries
        self._legacy_secrets = legacy_secrets
        self._legacy: MultiFernet | None = None
        self._lock = threading.Lock()

    def legacy(self) -> MultiFernet:
        with self._lock:  # PBKDF2 costs ~50 ms a key: derived once, and only if an old value shows up
            if self._legacy is None:
                self._legacy = MultiFernet([Fernet(_legacy_key(secret, salt)) for secret in self._legacy_secrets
                                            for salt in self._entries])
            return self._legacy

    def encrypt(self, text: str) -> str:
        return self.primary.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        data = token.encode()
        try:
            return self.current.decrypt(data).decode()
        except InvalidToken:
            pass
        try:
            return self.legacy().decrypt(data).decode()
        except InvalidToken:
            raise DecryptionFailed() from None

    def is_current(self, token: str) -> bool:
        try:
            self.primary.decrypt(token.encode())
        except InvalidToken:
            return False
        return True


_rings: dict[tuple, Keyring] = {}


def keyring() -> Keyring:
    """The keys the settings name now (tests and rotations change them at run time)."""
    entries = [e for e in getattr(settings, "FERNET_KEYS", []) if e and e.strip()]
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    cache_key = (tuple(entries), tuple(secrets))
    ring = _rings.get(cache_key)
    if ring is None:
        ring = _rings[cache_key] = Keyring(entries, secrets)
    return ring


# -- JSON trees: each leaf is a token, keys stay plain (the column format of the old library) ----

def encrypt_tree(value: Any, ring: Keyring) -> Any:
    if isinstance(value, dict):
        return {key: encrypt_tree(item, ring) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encrypt_tree(item, ring) for item in value]
    if value is None:
        return None
    return ring.encrypt(str(value))  # leaves come back as strings, as they always did


def decrypt_tree(value: Any, ring: Keyring) -> Any:
    if isinstance(value, dict):
        return {key: decrypt_tree(item, ring) for key, item in value.items()}
    if isinstance(value, list):
        return [decrypt_tree(item, ring) for item in value]
    if value is None:
        return None
    return ring.decrypt(str(value))


def tree_current(value: Any, ring: Keyring) -> bool:
    if isinstance(value, dict):
        return all(tree_current(item, ring) for item in value.values())
    if isinstance(value, list):
        return all(tree_current(item, ring) for item in value)
    return value is None or ring.is_current(str(value))


# -- rotation ---------------------------------------------------------------------------------

def rotate_field(model, field, *, batch_size: int = 500, check: bool = False,
                 progress: Callable[[int, int, int], None] | None = None) -> dict[str, int]:
    """Rewrite every value of one encrypted field that is not under the first key.

    Batches in pk order, each in its own transaction that locks its rows (`SELECT … FOR UPDATE`,
    waiting for workers that hold one) and reads them inside the lock, so a worker's concurrent
    write is never overwritten with an older value. Idempotent: current values are left alone.
    `check` only counts. Returns {"rows", "stale", "rewritten", "unreadable"}."""
    ring = keyring()
    manager = model._base_manager
    counts = {"rows": 0, "stale": 0, "rewritten": 0, "unreadable": 0}
    last_pk = None
    while True:
        with transaction.atomic():
            queryset = manager.order_by("pk")
            if last_pk is not None:
                queryset = queryset.filter(pk__gt=last_pk)
            if not check:
                queryset = queryset.select_for_update()
            # The stored text as it is (no decryption): is each token under the first key?
            rows = list(queryset.annotate(_stored=Cast(field.attname, TextField()))
                        .values_list("pk", "_stored")[:batch_size])
            for pk, stored in rows:
                counts["rows"] += 1
                if stored is None:
                    continue
                tree = field.stored_tree(stored)
                if tree_current(tree, ring):
                    continue
                counts["stale"] += 1
                try:
                    plain = decrypt_tree(tree, ring)
                except DecryptionFailed:
                    counts["unreadable"] += 1
                    continue
                if not check:
                    manager.filter(pk=pk).update(**{field.attname: field.from_plain(plain)})
                    counts["rewritten"] += 1
        if progress:
            progress(counts["rows"], counts["stale"], counts["rewritten"])
        if len(rows) < batch_size:
            return counts
        last_pk = rows[-1][0]


def stored_json(stored: str) -> Any:
    """A JSON column's text (PostgreSQL jsonb cast to text, SQLite text) as a tree of tokens."""
    try:
        return json.loads(stored)
    except (TypeError, ValueError):
        return stored
