"""Photo evidence services: receive an upload, then process it in the background.

``photo_upload`` runs in the request: it checks the file (size, format by content, the
header's pixel count and decoded-memory budget; decodability too when no broker is set)
before anything is stored, stores the original bytes under a fresh UUID key through Django's
storage API, writes the row and queues ``photo_process`` (inspections/processing.py) after
commit, through the Celery task. Both are idempotent.

Every acknowledged photo finishes: a failed queueing is logged and left to the sweep
(inspections.tasks.requeue_pending_photos, run by Celery beat or photos_requeue), the task retries
faults, and a replay of a photo still pending queues it again. A file written for an upload
that then fails is deleted.
"""

import hashlib
import logging

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from inspections import imaging
from inspections.errors import IdempotencyConflict, InspectionError, InspectionRefused
from inspections.models import Photo, PhotoStatus
from inspections.permissions import can_upload_photo
from inspections.processing import delete_files
from inspections.tasks import photo_process as photo_process_task
from inspections.tasks import queue_photo_processing

logger = logging.getLogger(__name__)

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


class PhotoStorageUnavailable(InspectionError):
    """The original could not be written (storage full, read-only or unreachable). Nothing
    was kept; the client sends the photo again later."""

    status = 503
    default_message = _(
        "The photo could not be stored: the server's file storage is full or unavailable. "
        "Nothing was kept; send the photo again later."
    )


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
        _requeue_if_pending(existing)
        return existing, False

    try:
        # With a broker the request checks only what the header tells (cheap); the worker
        # decodes, and a damaged image ends there as a failed photo with the reason.
        checked = imaging.check_image(data, decode=photo_process_task.app.conf.task_always_eager)
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
    # The storage key is the photo's fresh UUID (upload_to): never an existing name, so
    # whatever is at it after a failure (a partial write included) is this upload's.
    storage = photo.original.storage
    name = photo._meta.get_field("original").generate_filename(photo, str(photo.key))
    try:
        photo.original.save(str(photo.key), ContentFile(data), save=False)
    except OSError as error:
        delete_files(storage, [name])
        logger.error("photo %s: the original could not be stored: %s", client_uuid, error)
        raise PhotoStorageUnavailable() from error
    except BaseException:
        delete_files(storage, [name])
        raise
    try:
        with transaction.atomic():
            # No check-then-insert: the unique client_uuid decides between concurrent repeats.
            photo.save(force_insert=True)
    except IntegrityError:
        delete_files(storage, [photo.original.name])
        logger.info("photo %s: a concurrent repeat lost the insert race", client_uuid)
        existing = _replay(client_uuid=client_uuid, digest=digest)
        if existing is None:
            raise
        _requeue_if_pending(existing)
        return existing, False
    except BaseException:
        delete_files(storage, [photo.original.name])
        raise
    # Registered outside the block above: with no outer transaction it runs at once. It never
    # raises (a photo it cannot queue is left to the sweep): the row and file are committed.
    transaction.on_commit(lambda: queue_photo_processing(photo.pk))
    return photo, True


def _requeue_if_pending(photo: Photo) -> None:
    """A replay of a photo still pending: its task may be lost, so queue it again (a
    duplicate costs the worker one status check)."""
    if photo.status == PhotoStatus.PENDING:
        transaction.on_commit(lambda: queue_photo_processing(photo.pk))
