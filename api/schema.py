"""OpenAPI pieces every API shares: the error body and the common error responses."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


NOT_FOUND = OpenApiResponse(description=_("Absent, or outside your regions."))
BAD_QUERY = OpenApiResponse(
    description=_("A query parameter is invalid; the body names it and says why.")
)
INVALID = OpenApiResponse(description=_("The body names each invalid field and says why."))
