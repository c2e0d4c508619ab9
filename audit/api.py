"""GET /api/anomalies/: the auditor's worklist as JSON, one page at a time.

Thin: parse the query, check the role, call the selector, serialize. Each page also
carries `counts`, the number of anomalies of every kind under the same region and year,
so a client can show what the other kinds hold while it lists one.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import GenericAPIView

from api.pagination import Pagination
from api.schema import BAD_QUERY
from audit.anomalies import AnomalyKind, anomaly_worklist
from audit.permissions import can_view_worklist
from housing.filters import QueryChoiceField, validate_region_code
from renovation.models import FUNDING_YEAR_MAX, FUNDING_YEAR_MIN

REFUSED = OpenApiResponse(
    description=_("Only auditors, county officials and administrators see the worklist.")
)


class AnomalyQuery(serializers.Serializer):
    """Filters of GET /api/anomalies/."""

    kind = QueryChoiceField(
        choices=AnomalyKind.choices, help_text=_("One kind of anomaly; empty for every kind.")
    )
    region = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=12,
        help_text=_("A region's code: the anomalies under it (e.g. a township's 9 digits)."),
    )
    year = serializers.IntegerField(
        required=False,
        min_value=FUNDING_YEAR_MIN,
        max_value=FUNDING_YEAR_MAX,
        help_text=_("Funding year: the cases funded that year, and their households."),
    )

    def validate_region(self, value):
        return validate_region_code("region", value) if value else ""


class AnomalyHouseholdSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    archive_no = serializers.CharField()
    head_name = serializers.CharField()
    village_code = serializers.CharField(source="village.code")
    village_name = serializers.CharField(source="village.name")


class AnomalySerializer(serializers.Serializer):
    # A string, not an enum: drf-spectacular would name the enum "CodeEnum" after the field,
    # which collides (a schema warning) with any other serializer's "code" choices.
    code = serializers.CharField(help_text=_("The kind, one of the codes of the kind filter."))
    label = serializers.CharField(help_text=_("The kind, in the reader's language."))
    reason = serializers.CharField(help_text=_("What is wrong, with the figures."))
    household = AnomalyHouseholdSerializer()
    case = serializers.IntegerField(
        source="case.pk",
        allow_null=True,
        default=None,
        help_text=_("The case concerned; null for an anomaly of the household's records."),
    )
    url = serializers.CharField(help_text=_("The page to look at: the case, or the household."))


class AnomalyPagination(Pagination):
    """A page of anomalies, with the counts of every kind."""

    page_size = 50

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["counts"] = self.counts
        return response

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["counts"] = {
            "type": "object",
            "description": str(_("How many anomalies of each kind, whatever the kind filter.")),
            "properties": {code: {"type": "integer"} for code in AnomalyKind.values},
        }
        paginated["required"] = [*paginated.get("required", []), "counts"]
        return paginated


class AnomalyListView(GenericAPIView):
    serializer_class = AnomalySerializer
    pagination_class = AnomalyPagination

    @extend_schema(
        summary=_("The auditor's worklist"),
        description=_(
            "Anomalies in your regions, each with its reason and a link: households in no "
            "key group, houses not C or D at entry, repeat cases, the same person in another "
            "household's case, double benefits, floor areas over the rule, missing and "
            "duplicate ID numbers, photo evidence flags, overdue payments."
        ),
        parameters=[AnomalyQuery],
        responses={200: AnomalySerializer(many=True), 400: BAD_QUERY, 403: REFUSED},
    )
    def get(self, request):
        if not can_view_worklist(request.user):
            raise PermissionDenied(
                _("Only auditors, county officials and administrators see the worklist.")
            )
        query = AnomalyQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        worklist = anomaly_worklist(
            user=request.user,
            kinds=[params["kind"]] if params.get("kind") else None,
            region=params.get("region") or None,
            year=params.get("year"),
        )
        self.paginator.counts = worklist.counts
        page = self.paginate_queryset(worklist.anomalies)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
