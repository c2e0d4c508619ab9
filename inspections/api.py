"""The inspections API: visits with their appraisals, photo uploads, photos and their flags.

Thin views: parse, authorize, call one service or selector, answer. A phone's offline queue
replays records until it gets an answer, so both writes are idempotent by client UUID: the
first time 201, a repeat of the same record 200 with the same body, the same UUID with
other content 409. Out of the user's regions is 404; a role that may not write is 403.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from api.schema import BAD_QUERY, INVALID, NOT_FOUND, ErrorDetailSerializer
from inspections.models import Inspection, Photo, PhotoAngle, PhotoStage
from inspections.permissions import can_upload_photo
from inspections.photos import photo_upload
from inspections.selectors import (
    inspection_get_by_client_uuid,
    inspection_list,
    photo_list,
    photo_slot_list,
    required_slots,
)
from inspections.serializers import (
    HouseholdQuery,
    InspectionInputSerializer,
    InspectionSerializer,
    PhotoInputSerializer,
    PhotoSerializer,
    PhotoSlotsSerializer,
)
from inspections.services import inspection_submit

UUID_REGEX = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
CONFLICT = OpenApiResponse(
    ErrorDetailSerializer,
    description=_("This client UUID was already used for different content."),
)
REFUSED = OpenApiResponse(ErrorDetailSerializer, description=_("Your role may not do this."))


def _query(request) -> dict:
    query = HouseholdQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


@extend_schema_view(
    list=extend_schema(
        summary=_("Inspections"),
        description=_("The visits in your regions, newest first; ?household= for one household."),
        parameters=[HouseholdQuery],
        responses={200: InspectionSerializer(many=True), 400: BAD_QUERY},
    ),
    retrieve=extend_schema(
        summary=_("One inspection, by its client UUID"),
        responses={200: InspectionSerializer, 404: NOT_FOUND},
    ),
    create=extend_schema(
        summary=_("Record an inspection"),
        description=_(
            "One visit to a household's current house, with its appraisal for a safety "
            "appraisal. Idempotent by client_uuid: 201 the first time, 200 with the same body "
            "for a repeat of the same record, 409 for the same UUID with different content. "
            "Times are ISO 8601 with a UTC offset; locations WGS84."
        ),
        request=InspectionInputSerializer,
        responses={
            201: InspectionSerializer,
            200: InspectionSerializer,
            400: INVALID,
            403: REFUSED,
            404: NOT_FOUND,
            409: CONFLICT,
        },
    ),
)
class InspectionViewSet(viewsets.GenericViewSet):
    queryset = Inspection.objects.none()  # for the router and the schema; rows from selectors
    serializer_class = InspectionSerializer
    lookup_field = "client_uuid"
    lookup_value_regex = UUID_REGEX

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["required_slots"] = required_slots()
        return context

    def _body(self, inspection) -> dict:
        return InspectionSerializer(inspection, context=self.get_serializer_context()).data

    def list(self, request):
        query = _query(request)
        rows = inspection_list(user=request.user, household_id=query.get("household"))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, client_uuid=None):
        inspection = inspection_get_by_client_uuid(user=request.user, client_uuid=client_uuid)
        return Response(self._body(inspection))

    def create(self, request):
        data = InspectionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        record = data.validated_data
        location = record["location"]
        appraisal = record["appraisal"]
        inspection, created = inspection_submit(
            user=request.user,
            client_uuid=record["client_uuid"],
            household=record["household"],
            kind=record["kind"],
            started_at=record["started_at"],
            ended_at=record["ended_at"],
            location=None if location is None else (location["lon"], location["lat"]),
            accuracy=None if location is None else location.get("accuracy"),
            notes=record["notes"],
            appraisal=None if appraisal is None else dict(appraisal),
        )
        inspection = inspection_get_by_client_uuid(
            user=request.user, client_uuid=inspection.client_uuid
        )
        return Response(
            self._body(inspection),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        methods=["GET"],
        summary=_("An inspection's photos"),
        request=None,
        responses={200: PhotoSerializer(many=True), 404: NOT_FOUND},
    )
    @extend_schema(
        methods=["POST"],
        summary=_("Upload a photo to an inspection"),
        description=_(
            "Multipart: client_uuid, stage, angle, file. Only the visit's inspector may add "
            "photos. JPEG, PNG, WebP or HEIC/HEIF, judged by content. Idempotent by "
            "client_uuid: 201 the first time, 200 with the same body for the same photo, 409 "
            "for the same UUID with another file or slot. A rejected file answers 400, 413 "
            "or 415 with the reason under “file”, and nothing is stored (503 when the "
            "storage cannot take it). Evidence flags never block an upload: they appear on "
            "the photo once it is processed."
        ),
        request={"multipart/form-data": PhotoInputSerializer},
        responses={
            201: PhotoSerializer,
            200: PhotoSerializer,
            400: INVALID,
            403: REFUSED,
            404: NOT_FOUND,
            409: CONFLICT,
            413: OpenApiResponse(description=_("The file is too large.")),
            415: OpenApiResponse(description=_("The file is not an accepted image format.")),
            503: OpenApiResponse(
                ErrorDetailSerializer,
                description=_(
                    "The file storage is full or unavailable: nothing was kept; send the photo "
                    "again later."
                ),
            ),
        },
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def photos(self, request, client_uuid=None):
        inspection = inspection_get_by_client_uuid(user=request.user, client_uuid=client_uuid)
        if request.method == "GET":
            rows = photo_list(user=request.user, inspection=inspection)
            return Response(PhotoSerializer(rows, many=True, context={"request": request}).data)

        if not can_upload_photo(request.user, inspection):
            raise PermissionDenied(_("Only the inspector who made this visit may add its photos."))
        data = PhotoInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data
        photo, created = photo_upload(
            user=request.user,
            inspection=inspection,
            client_uuid=upload["client_uuid"],
            stage=upload["stage"],
            angle=upload["angle"],
            file=upload["file"],
        )
        photo = photo_list(user=request.user, inspection=inspection).get(pk=photo.pk)
        return Response(
            PhotoSerializer(photo, context={"request": request}).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


@extend_schema_view(
    list=extend_schema(
        summary=_("Photos with their evidence flags"),
        description=_("The photos in your regions, newest first; ?household= for one household."),
        parameters=[HouseholdQuery],
        responses={200: PhotoSerializer(many=True), 400: BAD_QUERY},
    ),
)
class PhotoViewSet(viewsets.GenericViewSet):
    queryset = Photo.objects.none()  # for the router and the schema
    serializer_class = PhotoSerializer

    def list(self, request):
        query = _query(request)
        rows = photo_list(user=request.user, household_id=query.get("household"))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class PhotoSlotsView(APIView):
    @extend_schema(
        summary=_("Required photo slots"),
        description=_(
            "For each inspection kind, the stage × angle photos a visit must bring back "
            "(configuration, edited in the admin)."
        ),
        responses={200: PhotoSlotsSerializer},
    )
    def get(self, request):
        slots = photo_slot_list(user=request.user)
        body = {
            kind: [
                {
                    "stage": stage,
                    "angle": angle,
                    "stage_label": str(PhotoStage(stage).label),
                    "angle_label": str(PhotoAngle(angle).label),
                }
                for stage, angle in pairs
            ]
            for kind, pairs in slots.items()
        }
        return Response(body)
