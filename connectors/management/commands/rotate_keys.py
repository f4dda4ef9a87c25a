"""`manage.py rotate_keys [--check] [--batch-size N]`: every encrypted value under the first FERNET_KEYS key.

Rotation: prepend a new key to FERNET_KEYS on every process (web, workers) and restart them, run
this, then drop the old key. Safe while workers run; run it again at any time (idempotent).
`--check` rewrites nothing and exits with status 1 while values under older keys remain."""

from django.core.management.base import BaseCommand, CommandError

from connectors.services import secrets_rotate


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the first FERNET_KEYS key (--check: only count)."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true",
                            help="Only report how many values are not under the first key (exit 1 if any).")
        parser.add_argument("--batch-size", type=int, default=500, help="Rows per transaction (default 500).")

    def handle(self, *args, check: bool, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")

        def progress(label, done, total, stale, rewritten):
            verb = "under older keys" if check else "re-encrypted"
            self.stdout.write(f"{label}: {done}/{total} rows checked, {rewritten if not check else stale} {verb}")

        results = secrets_rotate(batch_size=batch_size, check=check, progress=progress)
        stale = sum(r["stale"] - r["rewritten"] for r in results.values())
        unreadable = sum(r["unreadable"] for r in results.values())
        for label, r in results.items():
            if check:
                self.stdout.write(f"{label}: {r['stale']} of {r['rows']} rows not under the first key")
            else:
                self.stdout.write(f"{label}: {r['rewritten']} of {r['rows']} rows re-encrypted under the first key")
        if unreadable:
            raise CommandError(f"{unreadable} row(s) cannot be decrypted with any key in FERNET_KEYS "
                               "(nor SECRET_KEY + the old scheme); they were left as they are.")
        if check and stale:
            raise CommandError(f"{stale} row(s) are still under older keys: run `manage.py rotate_keys`.",
                               returncode=1)
        self.stdout.write(self.style.SUCCESS("Every encrypted value is under the first key."))
