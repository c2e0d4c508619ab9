"""One exception handler for every API: domain errors become answers.

The services raise domain errors (inspections.errors.InspectionError and its subclasses,
renovation.errors.CaseError, inspections.photos.PhotoRejected); each knows the HTTP status
it means and the body that says what was wrong and where. Views do not catch them: this
handler answers for all, and everything else goes to DRF's own handler.
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
