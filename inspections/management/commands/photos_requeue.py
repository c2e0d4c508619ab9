"""python manage.py photos_requeue: queue again the photos left pending (lost tasks, faults).

For hosts without Celery beat (which runs the same sweep on its own): run it from cron once
per ANJU_PHOTO_REQUEUE_AFTER_S. Without a broker the photos are processed right here.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from inspections.models import Photo, PhotoStatus
from inspections.tasks import photo_process, requeue_pending_photos


class Command(BaseCommand):
    help = (
        "Queue processing again for every photo still pending longer than "
        "ANJU_PHOTO_REQUEUE_AFTER_S seconds (or --older-than), oldest first. Without a "
        "broker the photos are processed at once. Exits with status 1 if a photo processed "
        "here is still pending (a fault remains)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=None,
            metavar="SECONDS",
            help="Only photos pending longer than this (default: ANJU_PHOTO_REQUEUE_AFTER_S).",
        )
        parser.add_argument(
            "--limit", type=int, default=1000, help="At most this many photos (default 1000)."
        )

    def handle(self, *args, older_than, limit, **options):
        if older_than is not None and older_than < 0:
            raise CommandError(_("--older-than must be 0 or more seconds."))
        if limit < 1:
            raise CommandError(_("--limit must be 1 or more."))
        ids = requeue_pending_photos(older_than_s=older_than, limit=limit)
        if not photo_process.app.conf.task_always_eager:
            self.stdout.write(
                ngettext(
                    "%(count)d pending photo queued again.",
                    "%(count)d pending photos queued again.",
                    len(ids),
                )
                % {"count": len(ids)}
            )
            return
        # Eager: the photos were processed in this process; say how they ended.
        ended = dict.fromkeys(PhotoStatus.values, 0)
        for status in Photo.objects.filter(pk__in=ids).values_list("status", flat=True):
            ended[status] += 1
        self.stdout.write(
            ngettext(
                "%(count)d pending photo processed: %(ready)d ready, %(failed)d failed, "
                "%(pending)d still pending.",
                "%(count)d pending photos processed: %(ready)d ready, %(failed)d failed, "
                "%(pending)d still pending.",
                len(ids),
            )
            % {
                "count": len(ids),
                "ready": ended[PhotoStatus.READY],
                "failed": ended[PhotoStatus.FAILED],
                "pending": ended[PhotoStatus.PENDING],
            }
        )
        if ended[PhotoStatus.PENDING]:
            raise CommandError(
                _("Some photos are still pending: a fault remains (see the log); run again later.")
            )
