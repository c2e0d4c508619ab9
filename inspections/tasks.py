"""Celery tasks: thin wrappers that call services (eager in-process when no broker is set)."""

import datetime
import logging

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.utils import timezone

from inspections import processing
from inspections.models import Photo, PhotoStatus

logger = logging.getLogger(__name__)

# A fault (database or storage unreachable, full, read-only) is retried with exponential
# back-off and full jitter (a burst of photos that failed together does not come back
# together): at most 2, 4, 8, ... 120 s, 8 times, about 6 minutes in all. A photo still
# pending after that is queued again by the sweep (photos_requeue).
RETRY_BACKOFF_S = 2
RETRY_BACKOFF_MAX_S = 120
MAX_RETRIES = 8


@shared_task(
    bind=True,
    ignore_result=True,
    # Acknowledged only once done: a worker killed mid-task leaves the message to be
    # delivered again (after the broker's visibility timeout) instead of losing it.
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
)
def photo_process(self, photo_id: int) -> None:
    """Process one uploaded photo; safe to run again (the service is idempotent).

    A bad image ends as a failed photo inside the service; a fault raises and is retried.
    """
    try:
        processing.photo_process(photo_id=photo_id)
    except Photo.DoesNotExist:
        logger.warning("photo %s: no longer exists, nothing to process", photo_id)
    except processing.FAULTS as fault:
        if self.request.is_eager:
            # No broker to come back through: the photo stays pending for photos_requeue.
            raise
        countdown = get_exponential_backoff_interval(
            factor=RETRY_BACKOFF_S,
            retries=self.request.retries,
            maximum=RETRY_BACKOFF_MAX_S,
            full_jitter=True,
        )
        logger.warning(
            "photo %s: processing hit a fault (%s: %s); retry %s of %s in %s s",
            photo_id,
            type(fault).__name__,
            fault,
            self.request.retries + 1,
            MAX_RETRIES,
            countdown,
        )
        raise self.retry(exc=fault, countdown=countdown) from fault


def queue_photo_processing(photo_id: int) -> bool:
    """Queue one photo's processing; False (logged) if it could not be queued.

    Never raises: the photo is committed and acknowledged whatever happens here, and a photo
    left pending is queued again by the sweep. With a broker that is down the publish gives
    up within about a second (a short retry policy: the request must stay quick). Without a
    broker the task runs here, eagerly; a fault in it leaves the photo pending too.
    """
    try:
        photo_process.apply_async(
            (photo_id,),
            retry=True,
            retry_policy={
                "max_retries": 2,
                "interval_start": 0,
                "interval_step": 0.3,
                "interval_max": 0.3,
            },
        )
    except Exception:  # a broker down, a fault in eager processing: the sweep comes back
        logger.exception("photo %s: could not be queued for processing; left pending", photo_id)
        return False
    return True


# The sweep lives with the tasks, not in the services: the upload service queues through
# this module, so the sweep's task could not import it back without a cycle.
def requeue_pending_photos(*, older_than_s: int | None = None, limit: int = 1000) -> list[int]:
    """Queue again the photos pending for longer than ``older_than_s`` (default:
    ANJU_PHOTO_REQUEUE_AFTER_S), oldest first, at most ``limit``; returns their ids.

    Run once per ANJU_PHOTO_REQUEUE_AFTER_S (beat, or cron with photos_requeue), a photo gets
    at most one new task in that time, and a stray duplicate costs one status check.
    """
    if older_than_s is None:
        older_than_s = settings.ANJU_PHOTO_REQUEUE_AFTER_S
    cutoff = timezone.now() - datetime.timedelta(seconds=older_than_s)
    ids = list(
        Photo.objects.filter(status=PhotoStatus.PENDING, created_at__lte=cutoff)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    for photo_id in ids:
        queue_photo_processing(photo_id)
    if ids:
        logger.info("photos_requeue: %s pending photo(s) queued again", len(ids))
    return ids


@shared_task(ignore_result=True)
def photos_requeue() -> None:
    """The periodic sweep (CELERY_BEAT_SCHEDULE): queue again the photos left pending."""
    requeue_pending_photos()
