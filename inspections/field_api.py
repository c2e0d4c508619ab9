"""The field page's offline data (/api/field/...): the villages to choose from, a village's
bundle of households to keep on the phone, and one household's context for the form.

Thin views: a selector of inspections.offline (scoped; 404 out of the user's regions), a
serializer, an answer. The bundle holds names of people: no shared cache may keep it.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from api.schema import NOT_FOUND
from housing.bounds import ID_MAX
from inspections.offline import field_household_context, field_village_bundle, field_village_list
from inspections.offline_serializers import (
    FieldVillageSerializer,
    HouseholdContextSerializer,
    VillageBundleSerializer,
)

PRIVATE = {"Cache-Control": "private, no-cache"}

VILLAGE_CODE = OpenApiParameter(
    "code",
    str,
    OpenApiParameter.PATH,
    pattern=r"^\d{12}$",
    description=_("The village's 12-digit code."),
)
HOUSEHOLD_ID = OpenApiParameter(
    "id",
    {"type": "integer", "minimum": 1, "maximum": ID_MAX},
    OpenApiParameter.PATH,
    description=_("The household's id."),
)


class FieldVillageListView(APIView):
    @extend_schema(
        summary=_("Villages to keep offline"),
        description=_(
            "The villages in your regions, by code, with their township and how many "
            "households each has: what the field page offers to download."
        ),
        responses={200: FieldVillageSerializer(many=True)},
    )
    def get(self, request):
        villages = field_village_list(user=request.user)
        return Response(FieldVillageSerializer(villages, many=True).data, headers=PRIVATE)


class FieldVillageBundleView(APIView):
    @extend_schema(
        summary=_("A village's households, to keep offline"),
        description=_(
            "Every household of the village with its current house's grade and the day it "
            "was given, the last visit, and the latest processed photo of each stage and "
            "angle (its thumbnail's URL). Coordinates WGS84."
        ),
        parameters=[VILLAGE_CODE],
        responses={200: VillageBundleSerializer, 404: NOT_FOUND},
    )
    def get(self, request, code):
        bundle = field_village_bundle(user=request.user, code=code)
        return Response(VillageBundleSerializer(bundle).data, headers=PRIVATE)


class FieldHouseholdContextView(APIView):
    @extend_schema(
        summary=_("A household's context for the field form"),
        description=_(
            "The household as a village bundle gives it: grade, the day it was given, the "
            "last visit and the latest photo of each stage and angle."
        ),
        parameters=[HOUSEHOLD_ID],
        responses={200: HouseholdContextSerializer, 404: NOT_FOUND},
    )
    def get(self, request, pk):
        context = field_household_context(user=request.user, pk=pk)
        return Response(HouseholdContextSerializer(context).data, headers=PRIVATE)
