"""Photo files, served only after a permission check (uploads are never served from MEDIA_ROOT).

Thin: find the photo through the scoped selector, check who may see which copy, stream it
from Django's storage (or, on S3, send the browser to a short-lived presigned URL).
"""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_safe
from storages.backends.s3 import S3Storage

from inspections.models import PhotoStatus
from inspections.permissions import can_view_photo, can_view_photo_original
from inspections.selectors import photo_list

DERIVATIVES = {"display": "display", "thumb": "thumbnail"}
ORIGINAL = "original"
# A key's files are never overwritten, so a browser may keep a derivative for a day; the
# cache stays private because who may see a photo depends on who asks.
DERIVATIVE_MAX_AGE = 24 * 60 * 60
# How long a presigned S3 URL stays valid: enough to load the page's images, not to share.
PRESIGNED_SECONDS = 5 * 60
# Content types of the formats the pipeline accepts (Pillow's format names).
ORIGINAL_TYPES = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
    "HEIF": ("image/heif", "heic"),
    "HEIC": ("image/heic", "heic"),
    "AVIF": ("image/avif", "avif"),
}


def _presigns(storage) -> bool:
    """Whether the file's own storage gives presigned URLs (S3 with querystring auth): then
    S3 serves the file. Asked of the storage, not of the settings: an S3 storage without
    querystring auth would hand out plain URLs to private files, and any other storage is
    streamed from here."""
    return isinstance(storage, S3Storage) and bool(storage.querystring_auth)


@require_safe
@login_required
def photo_file(request, key, variant):
    """One copy of a photo: `display` or `thumb` for anyone who sees the household, the
    `original` (with its EXIF and GPS) for administrators only.

    Out of the user's regions: 404. A derivative not made yet (processing pending or
    failed): 404 too, as for any file that does not exist; the page shows the status.
    """
    if variant not in DERIVATIVES and variant != ORIGINAL:
        raise Http404("No such photo variant.")
    photo = photo_list(user=request.user).filter(key=key).first()
    if photo is None or not can_view_photo(request.user, photo):
        raise Http404("No such photo.")
    if variant == ORIGINAL:
        if not can_view_photo_original(request.user, photo):
            raise PermissionDenied
        file = photo.original
        content_type, extension = ORIGINAL_TYPES.get(
            (photo.original_format or "").upper(), ("application/octet-stream", "bin")
        )
        filename = f"{photo.key}.{extension}"
    else:
        file = getattr(photo, DERIVATIVES[variant])
        if photo.status != PhotoStatus.READY or not file:
            raise Http404("This photo has not been processed yet.")
        content_type, filename = "image/jpeg", f"{photo.key}-{variant}.jpg"
    as_attachment = variant == ORIGINAL

    # Thumbnails (a few kB) are streamed from here even on S3: the field page fetches them
    # into IndexedDB for offline villages, which a redirect to another origin would break
    # (CSP connect-src, CORS), and a streamed copy is cached by the browser for a day where
    # a presigned redirect is not cached at all.
    if _presigns(file.storage) and variant != "thumb":
        url = file.storage.url(
            file.name,
            parameters={
                "ResponseContentType": content_type,
                "ResponseContentDisposition": content_disposition_header(as_attachment, filename),
            },
            expire=PRESIGNED_SECONDS,
        )
        response = HttpResponseRedirect(url)
        # The redirect carries a signature: never cache it longer than it lives.
        patch_cache_control(response, private=True, no_store=True)
        return response

    # The key never names other content, so it makes a strong validator.
    etag = f'"{photo.key.hex}-{variant}"'
    not_modified = get_conditional_response(request, etag=etag)
    if not_modified is not None:
        _protect(not_modified, variant, etag)
        return not_modified
    try:
        handle = file.storage.open(file.name, "rb")
    except FileNotFoundError as missing:
        raise Http404("The photo's file is missing from storage.") from missing
    response = FileResponse(
        handle, as_attachment=as_attachment, filename=filename, content_type=content_type
    )
    _protect(response, variant, etag)
    return response


def _protect(response, variant: str, etag: str) -> None:
    response["ETag"] = etag
    response["X-Content-Type-Options"] = "nosniff"
    if variant == ORIGINAL:
        # The original carries the exact GPS position and camera: keep it out of every cache.
        patch_cache_control(response, private=True, no_store=True, max_age=0)
    else:
        patch_cache_control(response, private=True, max_age=DERIVATIVE_MAX_AGE)
