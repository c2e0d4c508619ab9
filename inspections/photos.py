"""Photo evidence services: receive an upload, then process it in the background.

``photo_upload`` runs in the request: it checks the file (size, format by content, bombs,
decodability) before anything is stored, stores the original bytes under a fresh UUID key
through Django's storage API, writes the row and queues ``photo_process`` after commit.
``photo_process`` runs in a Celery task: EXIF, orientation, the published copies, the pHash
and the evidence flags. Both are idempotent.
"""

import hashlib
import logging

from django.conf import settings
from django.contrib.gis.geos import Point
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from housing.history import CHANGED, history_snapshot
from inspections import evidence, imaging
from inspections.errors import IdempotencyConflict, InspectionError, InspectionRefused
from inspections.models import Photo, PhotoStatus
from inspections.permissions import can_upload_photo

logger = logging.getLogger(__name__)

# Flag code for a photo whose processing failed; the detail says why.
PROCESSING_FAILED = "processing_failed"

_READ_CHUNK = 1024 * 1024


class PhotoRejected(InspectionError):
    """The uploaded file is refused. Nothing has been stored.

    ``code``: too_large, unsupported_format, corrupt, decompression_bomb, empty.
    ``status``: the HTTP status a view answers with; the API names the "file" field.
    """

    STATUS = {"too_large": 413, "unsupported_format": 415}

    def __init__(self, code: str, message):
        self.code = code
        super().__init__(message)
        self.status = self.STATUS.get(code, 400)

    def response_body(self) -> dict:
        return {"file": [str(self.message)]}


def _too_large(size: int | None = None) -> PhotoRejected:
    limit = settings.ANJU_PHOTO_MAX_BYTES
    limit_mb = f"{limit / (1024 * 1024):g}"
    if size is None:
        message = _("The file is larger than the limit of %(limit_mb)s MB (%(limit)s bytes).")
    else:
        message = _(
            "The file is %(size)s bytes, larger than the limit of %(limit_mb)s MB "
            "(%(limit)s bytes)."
        )
    return PhotoRejected(
        "too_large",
        message % {"size": f"{size or 0:,}", "limit_mb": limit_mb, "limit": f"{limit:,}"},
    )


def _read_limited(file) -> bytes:
    """The file's bytes, refusing before reading when its declared size is over the limit."""
    limit = settings.ANJU_PHOTO_MAX_BYTES
    size = getattr(file, "size", None)
    if size is not None and size > limit:
        raise _too_large(size)
    if hasattr(file, "seek"):
        file.seek(0)
    chunks, total = [], 0
    # Read at most one byte past the limit: a stream without a size cannot make us hold more.
    while total <= limit:
        chunk = file.read(min(_READ_CHUNK, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        raise _too_large()
    return b"".join(chunks)


def photo_payload_digest(*, inspection, stage: str, angle: str, sha256: str) -> str:
    """What makes two uploads under one client UUID the same record."""
    text = "\n".join([str(inspection.client_uuid), stage, angle, sha256])
    return hashlib.sha256(text.encode()).hexdigest()


def _replay(*, client_uuid, digest: str) -> Photo | None:
    """The photo already stored under this client UUID, if the same content; else a conflict."""
    existing = Photo.objects.filter(client_uuid=client_uuid).first()
    if existing is None:
        return None
    if existing.payload_digest != digest:
        raise IdempotencyConflict(
            _(
                "Photo %(uuid)s was already received with different content (another file, "
                "inspection, stage or angle); give a new client UUID for a new photo."
            )
            % {"uuid": client_uuid}
        )
    return existing


def photo_upload(*, user, inspection, client_uuid, stage, angle, file) -> tuple[Photo, bool]:
    """Receive one photo for an inspection. Returns (photo, created).

    A replay of the same upload (same client UUID and content) returns the stored photo and
    stores nothing; the same client UUID with other content raises IdempotencyConflict; a
    refused file raises PhotoRejected and leaves nothing stored.
    """
    if not can_upload_photo(user, inspection):
        raise InspectionRefused(_("Only the inspector who made this visit may add its photos."))
    data = _read_limited(file)
    sha256 = hashlib.sha256(data).hexdigest()
    digest = photo_payload_digest(inspection=inspection, stage=stage, angle=angle, sha256=sha256)
    existing = _replay(client_uuid=client_uuid, digest=digest)
    if existing is not None:
        return existing, False

    try:
        checked = imaging.check_image(data)
    except imaging.ImageRejected as rejected:
        raise PhotoRejected(rejected.code, rejected.message) from rejected

    photo = Photo(
        client_uuid=client_uuid,
        inspection=inspection,
        stage=stage,
        angle=angle,
        uploaded_by=user,
        original_format=checked.format,
        width=checked.width,
        height=checked.height,
        byte_size=len(data),
        sha256=sha256,
        payload_digest=digest,
        status=PhotoStatus.PENDING,
    )
    # Validate the row (stage, angle, ...) before the file goes to storage.
    photo.full_clean(exclude=["original"], validate_unique=False)
    # The storage key is the photo's fresh UUID (upload_to): never an existing name.
    photo.original.save(str(photo.key), ContentFile(data), save=False)
    try:
        with transaction.atomic():
            # No check-then-insert: the unique client_uuid decides between concurrent repeats.
            photo.save(force_insert=True)
    except IntegrityError:
        photo.original.storage.delete(photo.original.name)
        logger.info("photo %s: a concurrent repeat lost the insert race", client_uuid)
        existing = _replay(client_uuid=client_uuid, digest=digest)
        if existing is None:
            raise
        return existing, False
    except BaseException:
        photo.original.storage.delete(photo.original.name)
        raise
    # Registered outside the block above: with no outer transaction it runs at once, and an
    # error in it must not be taken for a failed insert (the row and its file are committed).
    transaction.on_commit(lambda: _queue_processing(photo.pk))
    return photo, True


def _queue_processing(photo_id: int) -> None:
    from inspections.tasks import photo_process

    photo_process.delay(photo_id)


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
