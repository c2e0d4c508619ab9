"""Every write of the reports app but the job itself (reports.runner): asking for an export,
trying a failed one again, purging old files, and checking whether a file is one that Anju
issued (by its SHA-256 and its event in the audit chain).
"""

import datetime
import logging
import re
import threading
from dataclasses import dataclass

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connections, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from renovation.events import event_hash
from reports.errors import ExportError, ExportForbidden
from reports.kinds import KINDS
from reports.models import Export, ExportStatus
from reports.runner import export_run, export_stalled, file_sha256
from reports.tasks import export_run as export_task

logger = logging.getLogger(__name__)

NUMBER_RE = re.compile(rb"AJ-\d{4}-\d{6,}")


def export_number(export: Export) -> str:
    return f"AJ-{export.created_at.year}-{export.pk:06d}"


@transaction.atomic
def export_request(*, user, kind: str, format: str, params: dict, base_url: str = "") -> Export:
    """Record an export and queue its job after commit. `params` come validated and scoped
    by reports.forms.ExportForm; the builder checks scope again when it runs."""
    spec = KINDS.get(kind)
    if spec is None:
        raise ExportError(_("There is no export of kind “%(kind)s”.") % {"kind": kind})
    if not spec.may(user):
        raise ExportForbidden(_("Your role may not make this export."))
    if format not in spec.formats:
        raise ExportError(
            _("%(kind)s comes as %(formats)s, not “%(format)s”.")
            % {"kind": spec.label, "formats": ", ".join(spec.formats), "format": format}
        )
    export = Export.objects.create(
        user=user,
        kind=kind,
        format=format,
        params={**params, "base_url": base_url or settings.ANJU_PUBLIC_URL},
        language=translation.get_language() or settings.LANGUAGE_CODE,
    )
    export.number = export_number(export)
    export.save(update_fields=["number"])
    transaction.on_commit(lambda: _queue(export.pk))
    return export


def _queue(export_id: int) -> None:
    if settings.ANJU_EXPORT_IN_THREAD:
        # No broker (make run): a thread of this process does the job, so the page answers
        # at once and its progress bar moves, as it would with a worker.
        threading.Thread(
            target=_run_in_thread, args=(export_id,), name=f"export-{export_id}", daemon=True
        ).start()
    else:
        export_task.delay(export_id)


def _run_in_thread(export_id: int) -> None:
    try:
        export_run(export_id=export_id)
    finally:
        connections.close_all()  # this thread's own connections


@transaction.atomic
def export_retry(*, user, export: Export) -> Export:
    """Queue a failed (or stalled) export again, as the same document number."""
    export = Export.objects.select_for_update().get(pk=export.pk)
    if export.user_id != user.pk:
        raise ExportForbidden(_("Only the person who asked for an export may retry it."))
    if not (export.status == ExportStatus.FAILED or export_stalled(export)):
        raise ExportError(_("Only a failed or stalled export can be tried again."))
    export.status = ExportStatus.QUEUED
    export.error = ""
    export.done = 0
    export.save(update_fields=["status", "error", "done"])
    transaction.on_commit(lambda: _queue(export.pk))
    return export


def exports_purge(*, older_than_days: int, now: datetime.datetime | None = None) -> int:
    """Delete the stored files of exports finished more than N days ago. The records stay
    (with their SHA-256 and chain event), so a purged document can still be verified."""
    if older_than_days < 0:
        raise ExportError(_("The age must be zero days or more."))
    cutoff = (now or timezone.now()) - datetime.timedelta(days=older_than_days)
    purged = 0
    for export in Export.objects.filter(
        status=ExportStatus.DONE, finished_at__lt=cutoff
    ).iterator():
        if export.file:
            default_storage.delete(export.file)
        Export.objects.filter(pk=export.pk).update(status=ExportStatus.PURGED, file="")
        purged += 1
    return purged


@dataclass(frozen=True)
class Verification:
    """What a file is: ISSUED (byte for byte a document of record), ALTERED (it claims a
    number of ours but differs from it) or UNKNOWN (nothing Anju issued)."""

    outcome: str  # "issued" | "altered" | "unknown"
    sha256: str
    size: int
    export: Export | None = None
    claimed_number: str = ""
    event_intact: bool | None = None

    @property
    def issued(self) -> bool:
        return self.outcome == "issued"


def document_verify(*, fileobj) -> Verification:
    """Is this file exactly one that Anju issued? Looks it up by SHA-256 and checks its
    event in the hash chain; else looks for a document number inside it."""
    sha256, size = file_sha256(fileobj)
    export = (
        Export.objects.select_related("user", "event")
        .filter(sha256=sha256, status__in=[ExportStatus.DONE, ExportStatus.PURGED])
        .first()
    )
    if export is not None:
        event = export.event
        intact = (
            event is not None
            and event_hash(event) == event.hash
            and event.data.get("sha256") == sha256
            and event.data.get("number") == export.number
        )
        return Verification("issued", sha256, size, export, export.number, intact)
    claimed = _number_inside(fileobj)
    if claimed:
        claimed_export = Export.objects.filter(number=claimed).select_related("user").first()
        if claimed_export is not None:
            return Verification("altered", sha256, size, claimed_export, claimed)
    return Verification("unknown", sha256, size, None, claimed)


def _number_inside(fileobj) -> str:
    """A document number printed in the file (PDF metadata, text), if one can be read."""
    fileobj.seek(0)
    data = fileobj.read(settings.ANJU_VERIFY_SCAN_BYTES)
    match = NUMBER_RE.search(data)
    if match:
        return match.group().decode()
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        fileobj.seek(0)
        meta = PdfReader(fileobj).metadata or {}
        for value in (meta.get("/Keywords"), meta.get("/Subject"), meta.get("/Title")):
            found = NUMBER_RE.search(str(value or "").encode())
            if found:
                return found.group().decode()
    except (PyPdfError, ValueError, KeyError, TypeError, OSError):  # not a PDF, or too damaged
        return ""
    return ""
