"""Celery tasks: thin wrappers that call services (eager in-process when no broker is set)."""

from celery import shared_task

from inspections.processing import photo_process as process


@shared_task(ignore_result=True)
def photo_process(photo_id: int) -> None:
    """Process one uploaded photo; safe to run again (the service is idempotent)."""
    process(photo_id=photo_id)
