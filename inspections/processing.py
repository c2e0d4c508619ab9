"""Processing an uploaded photo, in a Celery task (inspections.tasks): EXIF, orientation,
the published copies, the pHash and the evidence flags. Idempotent.
"""

import logging

from django.conf import settings
from django.contrib.gis.geos import Point
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from housing.history import CHANGED, history_snapshot
from inspections import evidence, imaging
from inspections.models import Photo, PhotoStatus

logger = logging.getLogger(__name__)

# Flag code for a photo whose processing failed; the detail says why.
PROCESSING_FAILED = "processing_failed"


def _failed(photo: Photo, reason) -> Photo:
    detail = str(_("The photo could not be processed: %(reason)s") % {"reason": reason})
    updated = Photo.objects.filter(pk=photo.pk, status=PhotoStatus.PENDING).update(
        status=PhotoStatus.FAILED, flags=[{"code": PROCESSING_FAILED, "detail": detail}]
    )
    if updated:
        history_snapshot(Photo, [photo.pk], history_type=CHANGED, reason="photo_process")
    photo.refresh_from_db()
    return photo


def photo_process(*, photo_id) -> Photo:
    """EXIF, orientation, published copies, pHash and evidence flags for one photo.

    Idempotent: a photo already processed is returned as it is. The image work runs outside
    any transaction; the results are written under a row lock, and if another run finished
    first, this run's files are deleted. A bad image ends as status "failed" with the reason
    in its flags; it never raises.
    """
    # Failure reasons and flags are stored text: written in the site's language, whatever
    # language the request that queued the task (eager mode) had.
    with translation.override(settings.LANGUAGE_CODE):
        return _process(photo_id)


def _process(photo_id) -> Photo:
    photo = Photo.objects.select_related("inspection__house__household").get(pk=photo_id)
    if photo.status != PhotoStatus.PENDING:
        return photo
    try:
        with photo.original.open("rb") as handle:
            data = handle.read()
    except OSError as error:
        logger.warning("photo %s: original unreadable: %s", photo.pk, error)
        return _failed(photo, _("the original file cannot be read."))
    try:
        made = imaging.make_derivatives(data, photo.original_format)
    except imaging.ImageRejected as rejected:
        return _failed(photo, rejected.message)
    except (OSError, SyntaxError, ValueError) as error:
        logger.warning("photo %s: cannot decode: %s", photo.pk, error)
        return _failed(photo, _("the image cannot be decoded (%(error)s).") % {"error": error})

    exif = made.exif
    photo.width, photo.height = made.width, made.height
    photo.taken_at = exif.taken_at
    photo.gps = None
    if exif.latitude is not None:
        photo.gps = Point(exif.longitude, exif.latitude, srid=4326)
    photo.gps_accuracy = exif.accuracy_m if photo.gps else None
    photo.camera_make, photo.camera_model = exif.make, exif.model
    photo.phash = imaging.to_signed64(made.phash)
    (photo.phash_band0, photo.phash_band1, photo.phash_band2, photo.phash_band3) = (
        imaging.hash_bands(made.phash)
    )
    photo.display.save(f"{photo.key}.jpg", ContentFile(made.display), save=False)
    photo.thumbnail.save(f"{photo.key}.jpg", ContentFile(made.thumbnail), save=False)
    storage, saved_files = photo.display.storage, [photo.display.name, photo.thumbnail.name]
    try:
        with transaction.atomic():
            # Lock this photo and the ones it matches (whose flags it adds to) in one
            # statement, in id order: two runs that match each other cannot deadlock.
            ids = [photo.pk, *evidence.matched_photo_ids(photo=photo)]
            locked = Photo.objects.select_for_update().filter(pk__in=ids).order_by("pk")
            current = {row.pk: row for row in locked}[photo.pk]
            if current.status != PhotoStatus.PENDING:
                # Another run got there first; its copies stay, ours go.
                transaction.on_commit(lambda: _delete_files(storage, saved_files))
                return current
            photo.flags = evidence.merge_flags(evidence.flags_for(photo=photo), kept=current.flags)
            evidence.flag_matched_photos(photo=photo)
            photo.status = PhotoStatus.READY
            photo.save()
    except BaseException:
        _delete_files(storage, saved_files)
        raise
    return photo


def _delete_files(storage, names) -> None:
    for name in names:
        storage.delete(name)
