from django.core.management.base import BaseCommand, CommandError

from syncs.models import SyncRecord, SyncRun
from syncs.services import FlowBusy, records_replay


class Command(BaseCommand):
    help = "Replay failed records: one record, all failures of a run, or a filter."

    def add_arguments(self, parser):
        parser.add_argument("--record", type=int, help="SyncRecord id")
        parser.add_argument("--run", type=int, help="Replay every failed record of this run")
        parser.add_argument("--flow", type=int, help="Replay the outstanding failures of this flow")
        parser.add_argument("--error-kind", choices=["permanent", "transient", "auth"])
        parser.add_argument("--external-id", help="Only this source record")

    def handle(self, *args, record=None, run=None, flow=None, error_kind=None, external_id=None, **options):
        if not (record or run or flow):
            raise CommandError("Give --record, --run or --flow.")
        rows = SyncRecord.objects.filter(outcome=SyncRecord.Outcome.FAILED)
        if record:
            rows = rows.filter(pk=record)
        if run:
            if not SyncRun.objects.filter(pk=run).exists():
                raise CommandError(f"No run with id {run}.")
            rows = rows.filter(run_id=run)
        if flow:
            from syncs.models import Flow
            from syncs.selectors import record_failures_outstanding

            rows = record_failures_outstanding(flow=Flow.objects.get(pk=flow))
        if error_kind:
            rows = rows.filter(error_kind=error_kind)
        if external_id:
            rows = rows.filter(external_id=external_id)
        rows = list(rows)
        if not rows:
            self.stdout.write("Nothing to replay: no failed records match.")
            return
        try:
            runs = records_replay(records=rows)
        except FlowBusy as exc:
            raise CommandError(str(exc)) from None
        for r in runs:
            self.stdout.write(f"Replay run {r.pk} of {r.flow}: {r.status} — created {r.created}, updated {r.updated}, "
                              f"adopted {r.adopted}, skipped {r.skipped}, failed {r.failed}")
