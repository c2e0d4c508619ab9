"""The registry's read-only REST API: households (GeoJSON), family members, regions.

Thin views: parse the query, call a selector (which applies region scoping and raises 404
out of scope), serialize. Coordinates are WGS84 (EPSG:4326), longitude first.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from accounts.permissions import can_reveal_id_numbers, can_see_full_id_numbers
from api.pagination import FeaturePagination, Pagination
from api.schema import BAD_QUERY, NOT_FOUND
from housing.filters import BBoxFilter, HouseholdQuery, MemberQuery, RegionFormatQuery, RegionQuery
from housing.models import FamilyMember, Household, Region
from housing.selectors import (
    family_member_list,
    household_get,
    household_list,
    household_nearby,
    region_get,
    region_list,
)
from housing.serializers import (
    FamilyMemberSerializer,
    HouseholdDetailSerializer,
    HouseholdSerializer,
    IdNumbersRevealSerializer,
    NearbyHouseholdSerializer,
    NearbyQuery,
    RegionFeaturePageSerializer,
    RegionFeatureSerializer,
    RegionPageSerializer,
    RegionSerializer,
)
from housing.services import id_numbers_reveal


class RegistryAPIMixin:
    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["full_id_numbers"] = can_see_full_id_numbers(self.request.user)
        return context


def _validated(query_class, request):
    query = query_class(data=request.query_params, context={"request": request})
    query.is_valid(raise_exception=True)
    return query


HOUSEHOLD_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


@extend_schema_view(
    list=extend_schema(
        summary=_("Households as GeoJSON"),
        description=_(
            "The households in your regions as a GeoJSON FeatureCollection, one page at a "
            "time. Coordinates are WGS84 (EPSG:4326) [longitude, latitude]."
        ),
        parameters=[HouseholdQuery],
        responses={200: HouseholdSerializer(many=True), 400: BAD_QUERY},
    ),
    retrieve=extend_schema(
        summary=_("One household as GeoJSON"),
        description=_(
            "One household as a GeoJSON Feature with its family members. Coordinates are "
            "WGS84 (EPSG:4326) [longitude, latitude]."
        ),
        parameters=[HOUSEHOLD_ID],
        responses={200: HouseholdDetailSerializer, 404: NOT_FOUND},
    ),
)
class HouseholdViewSet(RegistryAPIMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Household.objects.none()  # for the router and the schema; rows come from selectors
    serializer_class = HouseholdSerializer
    pagination_class = FeaturePagination
    filter_backends = [BBoxFilter]
    bbox_filter_field = "location"
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        query = _validated(HouseholdQuery, self.request)
        return household_list(user=self.request.user, filters=query.to_filters())

    def get_object(self):
        household = household_get(user=self.request.user, pk=int(self.kwargs["pk"]))
        self.check_object_permissions(self.request, household)
        return household

    def get_serializer_class(self):
        if self.action == "retrieve":
            return HouseholdDetailSerializer
        return HouseholdSerializer

    @extend_schema(
        summary=_("A household's family members"),
        parameters=[HOUSEHOLD_ID],
        responses={200: FamilyMemberSerializer(many=True), 404: NOT_FOUND},
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def members(self, request, pk=None):
        household = self.get_object()
        members = family_member_list(user=request.user, household_id=household.pk)
        serializer = FamilyMemberSerializer(
            members, many=True, context=self.get_serializer_context()
        )
        return Response(serializer.data)

    @extend_schema(
        summary=_("Households near a point"),
        description=_(
            "The households in your regions nearest to lon/lat (WGS84), nearest first, with "
            "their distance in metres; households without a location are left out."
        ),
        parameters=[NearbyQuery],
        responses={200: NearbyHouseholdSerializer(many=True), 400: BAD_QUERY},
    )
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def nearby(self, request):
        query = _validated(NearbyQuery, request).validated_data
        rows = household_nearby(
            user=request.user, lon=query["lon"], lat=query["lat"], limit=query["limit"]
        )
        return Response(NearbyHouseholdSerializer(rows, many=True).data)

    @extend_schema(
        summary=_("Reveal a household's ID numbers"),
        description=_(
            "The unmasked ID numbers of the head and the members. Only county officials, "
            "for households in their regions; every reveal is logged."
        ),
        parameters=[HOUSEHOLD_ID],
        request=None,
        responses={
            200: IdNumbersRevealSerializer,
            403: OpenApiResponse(description=_("You may not reveal ID numbers.")),
            404: NOT_FOUND,
        },
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="reveal-ids",
        url_name="reveal-ids",
        pagination_class=None,
        filter_backends=[],
    )
    def reveal_ids(self, request, pk=None):
        household = self.get_object()
        if not can_reveal_id_numbers(request.user, household):
            raise PermissionDenied(
                _("Only county officials may reveal ID numbers, for households in their regions.")
            )
        numbers = id_numbers_reveal(user=request.user, household=household, via="api")
        data = {
            "household": household.pk,
            "head_id_number": numbers["head"],
            "members": [
                {"id": m.pk, "name": m.name, "id_number": numbers[f"member:{m.pk}"]}
                for m in household.members.all()
            ],
        }
        # Unmasked personal data: no browser or proxy may keep a copy.
        return Response(IdNumbersRevealSerializer(data).data, headers={"Cache-Control": "no-store"})


@extend_schema_view(
    list=extend_schema(
        summary=_("Family members"),
        parameters=[MemberQuery],
        responses={200: FamilyMemberSerializer(many=True), 400: BAD_QUERY},
    ),
)
class FamilyMemberViewSet(RegistryAPIMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = FamilyMember.objects.none()  # for the router and the schema
    serializer_class = FamilyMemberSerializer

    def get_queryset(self):
        query = _validated(MemberQuery, self.request)
        return family_member_list(
            user=self.request.user, household_id=query.validated_data.get("household")
        )


_REGION_FORMATS = _(
    "Plain JSON without boundaries by default; with geometry=1 GeoJSON with the boundaries, "
    "WGS84 (EPSG:4326) [longitude, latitude]."
)


@extend_schema_view(
    list=extend_schema(
        summary=_("Regions"),
        description=_REGION_FORMATS,
        parameters=[RegionQuery],
        responses={
            200: PolymorphicProxySerializer(
                component_name="RegionsPage",
                serializers=[RegionPageSerializer, RegionFeaturePageSerializer],
                resource_type_field_name=None,
                many=False,
            ),
            400: BAD_QUERY,
        },
    ),
    retrieve=extend_schema(
        summary=_("One region, by code"),
        description=_REGION_FORMATS,
        parameters=[RegionFormatQuery],
        responses={
            200: PolymorphicProxySerializer(
                component_name="RegionOrFeature",
                serializers=[RegionSerializer, RegionFeatureSerializer],
                resource_type_field_name=None,
            ),
            404: NOT_FOUND,
        },
    ),
)
class RegionViewSet(RegistryAPIMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Region.objects.none()  # for the router and the schema
    lookup_field = "code"
    lookup_value_regex = r"\d{2,12}"

    def query(self) -> dict:
        """The validated query parameters, parsed once per request (parent costs a query)."""
        if getattr(self, "_query", None) is None:
            query_class = RegionQuery if self.action == "list" else RegionFormatQuery
            self._query = _validated(query_class, self.request).validated_data
        return self._query

    def with_geometry(self) -> bool:
        return self.query()["geometry"]

    @property
    def pagination_class(self):
        return FeaturePagination if self.with_geometry() else Pagination

    def get_serializer_class(self):
        return RegionFeatureSerializer if self.with_geometry() else RegionSerializer

    def get_queryset(self):
        data = self.query()
        qs = region_list(user=self.request.user).select_related("parent")
        if data.get("level"):
            qs = qs.filter(level=data["level"])
        if data.get("parent"):
            qs = qs.filter(parent__code=data["parent"])
        if not self.with_geometry():
            # Boundaries are most of a region's bytes; leave them in the database.
            qs = qs.defer("boundary")
        return qs.order_by("code")

    def get_object(self):
        region = region_get(user=self.request.user, code=self.kwargs["code"])
        self.check_object_permissions(self.request, region)
        return region
