"""django-q2 entry points: thin wrappers over services."""

from __future__ import annotations


def wizard_job_task(job_id: int) -> str:
    from onboarding.models import WizardJob
    from onboarding.services import wizard_job_execute

    job = WizardJob.objects.select_related("flow__source", "flow__target", "tenant").filter(pk=job_id).first()
    if job is None:
        return "gone"
    return wizard_job_execute(job=job).status
