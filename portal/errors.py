"""The answers for 400, 403, 404 and 500 raised anywhere (config.urls' handler400 ...).

Under /api/ they answer JSON ({"detail": ...}, like DRF's own errors), so an API client never
has to parse an HTML page: a URL that resolves to no endpoint, a 404 or 403 raised outside
DRF, and any unhandled exception in an API view (DRF's handler answers for the errors it
knows and re-raises the rest, which end here). Elsewhere they answer translated HTML pages.

The 500 page is rendered with no request context: the context processors read the session
and the database, which may be what failed. Only the language is taken from the request.
"""

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.urls import Resolver404
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import requires_csrf_token
from rest_framework import exceptions as drf_exceptions

API_PREFIX = "/api/"


def is_api_request(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _json(detail, status: int) -> JsonResponse:
    return JsonResponse(
        {"detail": str(detail)}, status=status, json_dumps_params={"ensure_ascii": False}
    )


@requires_csrf_token
def bad_request(request, exception):
    if is_api_request(request):
        return _json(_("The request could not be understood (malformed or suspicious)."), 400)
    return render(request, "400.html", status=400)


@requires_csrf_token
def permission_denied(request, exception):
    if is_api_request(request):
        return _json(drf_exceptions.PermissionDenied.default_detail, 403)
    return render(request, "403.html", status=403)


@requires_csrf_token
def page_not_found(request, exception):
    if is_api_request(request):
        if isinstance(exception, Resolver404):
            # Say where: the client most often has a typo or an old path.
            detail = _("There is no API endpoint at %(path)s.") % {"path": request.path}
        else:
            detail = drf_exceptions.NotFound.default_detail
        return _json(detail, 404)
    return render(request, "404.html", {"request_path": request.path}, status=404)


@requires_csrf_token
def server_error(request):
    language = getattr(request, "LANGUAGE_CODE", None) or translation.get_language()
    with translation.override(language):
        if is_api_request(request):
            return _json(drf_exceptions.APIException.default_detail, 500)
        body = loader.get_template("500.html").render({"LANGUAGE_CODE": language})
    return HttpResponse(body, status=500)
