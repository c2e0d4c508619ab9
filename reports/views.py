"""The reports pages: my exports (with live progress), asking for an export, downloading a
finished one, retrying a failed one, and verifying a file against what Anju issued.

Thin: parse, authorize, call one service or selector, answer.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from storages.backends.s3 import S3Storage

from reports.errors import ExportError
from reports.forms import ExportForm
from reports.kinds import KINDS
from reports.models import ExportStatus
from reports.permissions import can_export, can_verify_documents
from reports.runner import export_stalled
from reports.selectors import RECENT, export_by_number, export_get, export_list
from reports.services import document_verify, export_request, export_retry

# How long a presigned S3 URL for a download stays valid: enough to start a large file.
PRESIGNED_SECONDS = 5 * 60


def _presigns(storage) -> bool:
    """Whether the storage gives presigned URLs (S3 with querystring auth): then S3 serves
    the file (as inspections.views does for photos); any other storage is streamed here."""
    return isinstance(storage, S3Storage) and bool(storage.querystring_auth)


def _row(export) -> dict:
    """What the page and its progress poll show of one export."""
    percent = None
    if export.status == ExportStatus.DONE:
        percent = 100
    elif export.total:
        percent = min(100, int(100 * export.done / export.total))
    return {
        "id": export.pk,
        "number": export.number,
        "kind": export.kind_label,
        "format": export.format_label,
        "status": export.status,
        "status_label": str(ExportStatus(export.status).label),
        "stalled": export_stalled(export),
        "done": export.done,
        "total": export.total,
        "unit": export.unit,
        "percent": percent,
        "size": export.size,
        "error": export.error,
        "created_at": export.created_at.isoformat(),
        "download_url": reverse("reports:export_download", args=[export.pk])
        if export.status == ExportStatus.DONE
        else "",
    }


def _list_context(request, form=None) -> dict:
    exports = list(export_list(user=request.user)[:RECENT])
    for export in exports:
        export.row = _row(export)
    return {
        "form": form or ExportForm(user=request.user),
        "exports": exports,
        "strings": {
            "stalled": _("stalled"),
            "download": _("Download"),
            "retry": _("Reload the page to try it again."),
        },
        "kinds": [
            {"code": k.code, "formats": list(k.formats), "params": list(k.params)}
            for k in KINDS.values()
            if k.may(request.user)
        ],
    }


@require_GET
@login_required
def export_list_view(request):
    if not can_export(request.user):
        raise PermissionDenied
    return render(request, "reports/exports.html", _list_context(request))


@require_POST
@login_required
def export_create_view(request):
    if not can_export(request.user):
        raise PermissionDenied
    form = ExportForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            export = export_request(
                user=request.user,
                kind=form.cleaned_data["kind"],
                format=form.cleaned_data["format"],
                params=form.params(),
                base_url=request.build_absolute_uri("/"),
            )
        except ExportError as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request,
                _(
                    "Export %(number)s is on its way: it appears below and can be downloaded "
                    "when it is done."
                )
                % {"number": export.number},
            )
            return HttpResponseRedirect(reverse("reports:export_list") + f"#export-{export.pk}")
    return render(request, "reports/exports.html", _list_context(request, form), status=400)


@require_GET
@login_required
def export_status_view(request):
    """The progress of my recent exports, for the page's poll (JSON)."""
    if not can_export(request.user):
        raise PermissionDenied
    exports = export_list(user=request.user)[:RECENT]
    return JsonResponse({"exports": [_row(e) for e in exports]})


@require_GET
@login_required
def export_download_view(request, pk: int):
    export = export_get(user=request.user, pk=pk)
    if export.status != ExportStatus.DONE or not export.file:
        raise Http404("This export has no file to download.")
    if _presigns(default_storage):
        # S3 sends the file: a county's archive would otherwise be fetched whole into this
        # process before its first byte went out, past any worker timeout.
        if not default_storage.exists(export.file):
            raise Http404("The export's file is gone from storage.")
        url = default_storage.url(
            export.file,
            parameters={
                "ResponseContentType": export.content_type,
                "ResponseContentDisposition": content_disposition_header(True, export.filename),
            },
            expire=PRESIGNED_SECONDS,
        )
        response = HttpResponseRedirect(url)
        # The URL carries a signature: never cache it longer than it lives.
        patch_cache_control(response, private=True, no_store=True)
        response["X-Content-SHA256"] = export.sha256
        return response
    try:
        handle = default_storage.open(export.file, "rb")
    except FileNotFoundError:
        raise Http404("The export's file is gone from storage.") from None
    response = FileResponse(
        handle, as_attachment=True, filename=export.filename, content_type=export.content_type
    )
    response["X-Content-SHA256"] = export.sha256
    return response


@require_POST
@login_required
def export_retry_view(request, pk: int):
    export = export_get(user=request.user, pk=pk)
    try:
        export_retry(user=request.user, export=export)
    except ExportError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request, _("Export %(number)s is queued again.") % {"number": export.number}
        )
    return HttpResponseRedirect(reverse("reports:export_list") + f"#export-{export.pk}")


@require_http_methods(["GET", "POST"])
@login_required
def verify_view(request):
    """Is this file one that Anju issued? Upload it; or follow a page's QR code (?number=)."""
    if not can_verify_documents(request.user):
        raise PermissionDenied
    context = {"result": None, "error": "", "max_mb": settings.ANJU_VERIFY_MAX_BYTES // 2**20}
    number = request.GET.get("number", "").strip()[:20]
    if number:
        context["number"] = number
        context["numbered"] = export_by_number(number=number)
    status = 200
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            context["error"] = _("Choose the file to check.")
            status = 400
        elif upload.size > settings.ANJU_VERIFY_MAX_BYTES:
            context["error"] = _("The file is larger than %(mb)s MB: no document of ours is.") % {
                "mb": context["max_mb"]
            }
            status = 400
        else:
            context["result"] = document_verify(fileobj=upload)
            context["filename"] = upload.name
    return render(request, "reports/verify.html", context, status=status)
