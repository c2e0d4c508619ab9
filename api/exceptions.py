"""One exception handler for every API: domain errors become answers.

The services raise domain errors (inspections.errors.InspectionError and its subclasses,
renovation.errors.CaseError, inspections.photos.PhotoRejected); each knows the HTTP status
it means and the body that says what was wrong and where. Views do not catch them: this
handler answers for all, and everything else goes to DRF's own handler.

What neither knows (an unhandled exception: a bug, a lost database) DRF re-raises. It is
not caught here: Django logs it with its traceback and answers through handler500
(portal.errors.server_error), which answers JSON {"detail": ...} with status 500 under /api/.
So do a 404 or 403 raised outside DRF under /api/ and a URL there that matches no endpoint.
"""

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from inspections.errors import InspectionError


def exception_handler(exc, context):
    if isinstance(exc, InspectionError):
        set_rollback()
        return Response(exc.response_body(), status=exc.status)
    return drf_exception_handler(exc, context)
