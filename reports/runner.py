"""Running one export: the job a worker does (reports.tasks.export_run calls it).

The builder writes a temporary file while reporting progress; the file is stored under
exports/ in the configured storage; then, in one transaction, the export is marked done and
a "document issued" event (its number, SHA-256, who, when, parameters and the chain head it
printed) is appended to the audit hash chain. A stored file whose transaction fails is
deleted again, so no orphan is left. Idempotent: a second delivery of a finished export does
nothing; a delivery after a worker died (no progress for ANJU_EXPORT_STALE_S) starts the job
over; a job still running in a live worker is left alone.
"""

import datetime
import hashlib
import logging
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from renovation.events import GENESIS, event_append
from renovation.models import CaseEventKind, ChainHead
from reports.errors import ExportError, ExportForbidden
from reports.jobs import Job, Stamp
from reports.kinds import FORMATS, KINDS
from reports.models import Export, ExportStatus

logger = logging.getLogger(__name__)

HASH_CHUNK = 1024 * 1024


def export_stalled(export: Export, *, now: datetime.datetime | None = None) -> bool:
    """A running export whose worker has not reported progress for a while: it died."""
    if export.status != ExportStatus.RUNNING:
        return False
    seen = export.heartbeat_at or export.started_at or export.created_at
    return (now or timezone.now()) - seen > datetime.timedelta(seconds=settings.ANJU_EXPORT_STALE_S)


def chain_head_now() -> str:
    head = ChainHead.objects.filter(pk=1).values_list("last_hash", flat=True).first()
    return head or GENESIS


def _claim(export_id: int) -> Export | None:
    """Mark the export running for this delivery of the task, or None when there is
    nothing to do: already done, purged, gone, or running in a live worker."""
    with transaction.atomic():
        export = Export.objects.select_for_update().filter(pk=export_id).first()
        if export is None or export.status in (ExportStatus.DONE, ExportStatus.PURGED):
            return None
        if export.status == ExportStatus.RUNNING and not export_stalled(export):
            return None
        now = timezone.now()
        export.status = ExportStatus.RUNNING
        export.attempts += 1
        export.started_at = export.heartbeat_at = now
        export.issued_at = now
        export.done = 0
        export.total = None
        export.error = ""
        export.chain_head = chain_head_now()
        export.save()
        return export


def _fail(export: Export, message: str) -> None:
    Export.objects.filter(pk=export.pk).update(
        status=ExportStatus.FAILED, error=message, finished_at=timezone.now()
    )


def file_sha256(fileobj) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := fileobj.read(HASH_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def export_filename(export: Export) -> str:
    spec = KINDS[export.kind]
    return f"{export.number}-{spec.slug}.{FORMATS[export.format].extension}"


def export_run(*, export_id: int) -> Export | None:
    """Run one export from the start. Idempotent: a second delivery of a finished export
    does nothing; a delivery after a worker died starts it again."""
    export = _claim(export_id)
    if export is None:
        return None
    spec = KINDS[export.kind]
    user = export.user
    base = (export.params.get("base_url") or settings.ANJU_PUBLIC_URL).rstrip("/")
    stamp = Stamp(
        number=export.number,
        issued_at=export.issued_at,
        chain_head=export.chain_head,
        verify_url=f"{base}{reverse('reports:verify')}?number={export.number}",
    )
    tmp_root = settings.ANJU_EXPORT_TMP_DIR or None
    if tmp_root:
        Path(tmp_root).mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"{export.number}-", dir=tmp_root))
    path = workdir / export_filename(export)
    try:
        with translation.override(export.language):
            if not user.is_active or not spec.may(user):
                raise ExportForbidden(_("Your role may no longer make this export."))
            job = Job(
                export=export,
                user=user,
                params=export.params,
                path=path,
                workdir=workdir / "work",
                stamp=stamp,
            )
            job.workdir.mkdir()
            spec.build(job)
            job.flush()
            return _finish(export, job, path)
    except ExportError as error:
        _fail(export, str(error))
    except Exception as error:  # a fault: say what it was on the page, keep the trace in the log
        logger.exception("export %s failed", export.number)
        with translation.override(export.language):
            _fail(
                export,
                _("The export stopped: %(error)s") % {"error": f"{type(error).__name__}: {error}"},
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return None


def _finish(export: Export, job: Job, path: Path) -> Export | None:
    with open(path, "rb") as handle:
        sha256, size = file_sha256(handle)
    key = f"exports/{export.created_at:%Y/%m}/{path.name}"
    with open(path, "rb") as handle:
        content = File(handle, name=path.name)
        # S3 keeps it as the object's Content-Type (else guessed from the name, or none).
        content.content_type = FORMATS[export.format].content_type
        stored = default_storage.save(key, content)
    try:
        with transaction.atomic():
            current = Export.objects.select_for_update().get(pk=export.pk)
            if current.status != ExportStatus.RUNNING or current.attempts != export.attempts:
                # Another delivery took the job over (this worker was thought dead).
                default_storage.delete(stored)
                return None
            event = event_append(
                case=None,
                kind=CaseEventKind.DOCUMENT,
                from_state="",
                to_state="",
                actor=export.user,
                data={
                    "number": export.number,
                    "sha256": sha256,
                    "size": size,
                    "kind": export.kind,
                    "format": export.format,
                    "params": {k: v for k, v in export.params.items() if k != "base_url"},
                    "language": export.language,
                    "issued_at": export.issued_at.isoformat(),
                    "chain_head": export.chain_head,
                },
            )
            current.status = ExportStatus.DONE
            current.file = stored
            current.filename = path.name
            current.content_type = FORMATS[export.format].content_type
            current.size = size
            current.sha256 = sha256
            current.done = job.done
            current.total = current.total if current.total is not None else job.done
            current.event = event
            current.finished_at = timezone.now()
            current.save()
            return current
    except BaseException:
        default_storage.delete(stored)
        raise
