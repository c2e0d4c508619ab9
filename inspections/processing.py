"""Processing an uploaded photo, in a Celery task (inspections.tasks): EXIF, orientation,
the published copies, the pHash and the evidence flags. Idempotent.
"""

import logging
import struct

from django.conf import settings
from django.contrib.gis.geos import Point
from django.core.files.base import ContentFile
from django.db import InterfaceError, OperationalError, transaction
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
    any transaction; the copies are written and the results saved under a row lock, so only
    one run writes them. A bad image (or an original gone from storage) ends as status
    "failed" with the reason in its flags. A fault (the database or the storage unreachable,
    full or read-only) raises one of FAULTS, the photo stays pending and no file this run
    wrote is left behind: the task retries it.
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
    except FileNotFoundError as error:
        # Not a passing fault: the original is gone, no retry brings it back.
        logger.warning("photo %s: original missing: %s", photo.pk, error)
        return _failed(photo, _("the original file cannot be read."))
    # Any other OSError (storage unreachable, I/O error) is a fault: raised, retried.
    try:
        made = imaging.make_derivatives(data, photo.original_format)
    except imaging.ImageRejected as rejected:
        return _failed(photo, rejected.message)
    except Exception as error:
        # Decoding bytes held in memory: whatever the decoder raises is the image's fault,
        # not the storage's, and a retry would fail the same way. The usual errors of a
        # damaged file are logged in a line; anything else with its traceback.
        logger.warning(
            "photo %s: cannot decode: %s",
            photo.pk,
            error,
            exc_info=not isinstance(error, _DAMAGED_IMAGE),
        )
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
    (photo.phash_band0, photo.phash_band1, photo.phash_band2) = imaging.hash_bands(made.phash)
    storage = photo.display.storage
    copies = [
        (photo.display, _file_name(photo, "display"), made.display),
        (photo.thumbnail, _file_name(photo, "thumbnail"), made.thumbnail),
    ]
    # Names this run may have written (a partial file where a write failed included).
    ours = [name for _field, name, _data in copies]
    try:
        with transaction.atomic():
            # Lock this photo and the ones it matches (whose flags it adds to) in one
            # statement, in id order: two runs that match each other cannot deadlock.
            ids = [photo.pk, *evidence.matched_photo_ids(photo=photo)]
            locked = Photo.objects.select_for_update().filter(pk__in=ids).order_by("pk")
            current = {row.pk: row for row in locked}[photo.pk]
            if current.status != PhotoStatus.PENDING:
                # Another run got there first; its copies stay, this run wrote none.
                ours = []
                return current
            # Under the lock, with the photo still pending, nothing committed names these
            # files: whatever is there was left by a run killed before its commit.
            delete_files(storage, ours, strict=True)
            for field, name, content in copies:
                field.save(name.rsplit("/", 1)[-1], ContentFile(content), save=False)
                if field.name not in ours:
                    ours.append(field.name)
            photo.flags = evidence.merge_flags(evidence.flags_for(photo=photo), kept=current.flags)
            evidence.flag_matched_photos(photo=photo)
            photo.status = PhotoStatus.READY
            photo.save()
    except BaseException:
        delete_files(storage, ours)
        raise
    return photo


# What decoders raise for a damaged or truncated file.
_DAMAGED_IMAGE = (OSError, SyntaxError, ValueError, struct.error, EOFError)

# What a retry may cure: the database or the storage unreachable, full or read-only. A bad
# image never raises these out of photo_process (it ends as a failed photo).
FAULTS = (OperationalError, InterfaceError, OSError)


def _file_name(photo: Photo, field_name: str) -> str:
    """The storage name a published copy of this photo is written under (from its key)."""
    field = photo._meta.get_field(field_name)
    return field.generate_filename(photo, f"{photo.key}.jpg")


def delete_files(storage, names, *, strict: bool = False) -> None:
    """Delete these files if present (the upload's and processing's clean-up). ``strict``: an
    error raises (a fault); otherwise it is logged, so that cleaning up after a fault does
    not hide the fault itself."""
    for name in names:
        try:
            storage.delete(name)
        except OSError as error:
            if strict:
                raise
            logger.warning(
                "could not delete %s after a failed photo upload or run: %s", name, error
            )
