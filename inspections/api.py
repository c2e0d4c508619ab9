"""The inspections API: visits with their appraisals, photo uploads, photos and their flags.

Thin views: parse, authorize, call one service or selector, answer. A phone's offline queue
replays records until it gets an answer, so both writes are idempotent by client UUID: the
first time 201, a repeat of the same record 200 with the same body, the same UUID with
other content 409. Out of the user's regions is 404; a role that may not write is 403.

The field page says whose records it sends (the X-Anju-Field-User header, the user id it
was opened for): a session that is another user's is refused with 409 before anything is
looked up or stored, so that a phone whose login changed behind the page's back never
files one inspector's records under another. Other clients need not send the header.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from api.schema import BAD_QUERY, INVALID, NOT_FOUND, ErrorDetailSerializer
from inspections.errors import InspectionError
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
UPLOAD_CONFLICT = OpenApiResponse(
    ErrorDetailSerializer,
    description=_(
        "This client UUID was already used for different content; or, with the code "
        "field_user_mismatch, X-Anju-Field-User names another user than the one logged in."
    ),
)
REFUSED = OpenApiResponse(ErrorDetailSerializer, description=_("Your role may not do this."))
FIELD_USER_HEADER = "X-Anju-Field-User"
FIELD_USER = OpenApiParameter(
    FIELD_USER_HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description=_(
        "The id of the user whose records these are (the field page sends it): another "
        "user logged in is refused with 409 and nothing is stored."
    ),
)


class FieldUserMismatch(InspectionError):
    """The field page sends one user's records while another user is logged in."""

    status = 409
    code = "field_user_mismatch"
    default_message = _(
        "This page was opened for another user than the one logged in now: nothing was "
        "stored. Open the field page again; each user's records stay on the phone and are "
        "sent when that user is logged in."
    )

    def response_body(self) -> dict:
        return {"detail": str(self.message), "code": self.code}


def _check_field_user(request) -> None:
    """Refuse a field page's request made with another user's session (absent: accepted)."""
    claimed = request.headers.get(FIELD_USER_HEADER)
    if claimed is not None and claimed.strip() != str(request.user.pk):
        raise FieldUserMismatch()


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
        parameters=[FIELD_USER],
        responses={
            201: InspectionSerializer,
            200: InspectionSerializer,
            400: INVALID,
            403: REFUSED,
            404: NOT_FOUND,
            409: UPLOAD_CONFLICT,
        },
    ),
)
class InspectionViewSet(viewsets.GenericViewSet):
    queryset = Inspection.objects.none()  # for the router and the schema; rows from selectors
    serializer_class = InspectionSerializer
    lookup_field = "client_uuid"
    lookup_value_regex = UUID_REGEX

    def initial(self, request, *args, **kwargs):
        # After authentication and the permission checks: an anonymous request is refused
        # as before (401/403, "log in again"), not as another user's.
        super().initial(request, *args, **kwargs)
        _check_field_user(request)

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
        parameters=[FIELD_USER],
        responses={
            201: PhotoSerializer,
            200: PhotoSerializer,
            400: INVALID,
            403: REFUSED,
            404: NOT_FOUND,
            409: UPLOAD_CONFLICT,
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
