import sys

from django.core.management.base import BaseCommand, CommandError

from syncs.models import Flow
from syncs.services import flow_run


class Command(BaseCommand):
    help = "Run one flow now (by id), with a progress bar on a terminal."

    def add_arguments(self, parser):
        parser.add_argument("flow", type=int, help="Flow id")

    def handle(self, *args, flow, **options):
        try:
            obj = Flow.objects.select_related("source", "target").get(pk=flow)
        except Flow.DoesNotExist:
            raise CommandError(f"No flow with id {flow}.") from None
        bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(desc=obj.name, unit=" records", file=sys.stderr)

        def progress(read: int, expected: int | None = None) -> None:
            if bar is not None:
                if expected is not None and bar.total != expected:
                    bar.total = expected
                bar.update(read - bar.n)

        first = True
        while True:
            run = flow_run(flow=obj, progress=progress)
            if run is None:
                if first:
                    raise CommandError(f"Flow {flow} is already running in another worker.")
                self.stdout.write("A worker took the flow over; it carries on there.")
                break
            first = False
            self.stdout.write(
                f"Run {run.pk}: {run.status}{' — continues' if run.continues else ''} — read {run.read}, created {run.created}, updated {run.updated}, "
                f"adopted {run.adopted}, unchanged {run.unchanged}, skipped {run.skipped}, failed {run.failed}; "
                f"{run.pipedrive_calls} Pipedrive calls, {run.tokens_spent} tokens"
                + (f"\n{run.error}" if run.error else "")
            )
            if not run.continues:  # a run that used its time slice goes on here, as the dispatcher would
                break
            obj.refresh_from_db()
        if bar is not None:
            bar.close()
        if run is not None and run.status == "failed":
            sys.exit(1)
