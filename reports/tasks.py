"""Celery tasks: thin wrappers that call services (eager in-process when no broker is set)."""

from celery import shared_task

from reports.runner import export_run as run


# acks_late + reject_on_worker_lost: a worker killed mid-export leaves the message to be
# delivered again, and the service starts the job over (it is idempotent).
@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def export_run(export_id: int) -> None:
    run(export_id=export_id)
