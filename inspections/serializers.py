"""How inspections and photos look in the API. Validation of input only: they never save.

Input serializers check types and choices and say which field is wrong; the rules of the
domain (times, which kinds take an appraisal, overrides) live in inspections.services,
which answers with errors in the same {"field": ["message"]} shape.
"""

from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from housing.bounds import IdField, validate_past_time
from housing.models import SafetyGrade
from inspections.evidence import flag_detail
from inspections.models import (
    MEMBERS,
    Appraisal,
    Inspection,
    InspectionKind,
    MemberRating,
    Photo,
    PhotoAngle,
    PhotoFlag,
    PhotoStage,
    SiteHazard,
)
from inspections.permissions import can_view_photo_original
from inspections.processing import PROCESSING_FAILED
from inspections.selectors import missing_slots_of

GRADE_CHOICES = [(grade.value, grade.label) for grade in SafetyGrade if grade.value]


class ChoiceSetField(serializers.ChoiceField):
    """A choice field whose choice set is one named enum in the OpenAPI schema.

    drf-spectacular names an enum after the field, so the six member ratings would become
    six enums of the same set (a warning, and --fail-on-warn fails); this names the set once.
    """

    def __init__(self, *, enum_name: str, **kwargs):
        self.enum_name = enum_name
        super().__init__(**kwargs)


class ChoiceSetFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "inspections.serializers.ChoiceSetField"
    match_subclasses = True

    def get_name(self):
        return self.target.enum_name

    def map_serializer_field(self, auto_schema, direction):
        choices = {k: v for k, v in self.target.choices.items() if k not in ("", None)}
        return {
            "type": "string",
            "enum": list(choices),
            "description": "\n".join(f"* `{k}` - {v}" for k, v in choices.items()),
        }


def rating_field(label=None, **kwargs):
    return ChoiceSetField(
        enum_name="MemberRatingEnum", choices=MemberRating.choices, label=label, **kwargs
    )


def grade_field(**kwargs):
    return ChoiceSetField(enum_name="AppraisalGradeEnum", choices=GRADE_CHOICES, **kwargs)


def _absolute(context, path: str) -> str:
    request = context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


# --- input ------------------------------------------------------------------------------


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date and time that must carry its UTC offset.

    A phone's local time without an offset is ambiguous (which zone was the phone in?), so
    it is refused rather than guessed.
    """

    default_error_messages = {
        "invalid": _("Use ISO 8601 with a UTC offset, e.g. 2026-04-01T09:30:00+08:00."),
        "naive": _("The time needs a UTC offset, e.g. 2026-04-01T09:30:00+08:00."),
    }

    def to_internal_value(self, value):
        if not isinstance(value, str):
            self.fail("invalid")
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is None:
            self.fail("invalid")
        if parsed.tzinfo is None:
            self.fail("naive")
        return parsed


class LocationInputSerializer(serializers.Serializer):
    lon = serializers.FloatField(
        min_value=-180, max_value=180, help_text=_("Longitude, WGS84 degrees.")
    )
    lat = serializers.FloatField(
        min_value=-90, max_value=90, help_text=_("Latitude, WGS84 degrees.")
    )
    accuracy = serializers.FloatField(
        min_value=0,
        required=False,
        allow_null=True,
        help_text=_("The browser's accuracy radius, in metres."),
    )


class AppraisalInputSerializer(serializers.Serializer):
    foundation = rating_field(_("Foundation"))
    load_bearing_walls = rating_field(_("Load-bearing walls"))
    columns_beams = rating_field(_("Columns and beams"))
    roof_structure = rating_field(_("Roof structure"))
    floors_slabs = rating_field(_("Floors and roof slabs"))
    envelope = rating_field(_("Envelope"))
    site_hazards = serializers.ListField(
        child=serializers.ChoiceField(choices=SiteHazard.choices),
        required=False,
        default=list,
        help_text=_("Codes of the hazards found at the site; empty when none."),
    )
    grade = grade_field(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text=_("Only to override the derived grade; then override_reason is required."),
    )
    override_reason = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, trim_whitespace=True
    )


class InspectionInputSerializer(serializers.Serializer):
    """POST /api/inspections/: one visit, with its appraisal for an appraisal visit."""

    client_uuid = serializers.UUIDField(
        help_text=_("Made by the phone; send the same one again when replaying this record.")
    )
    household = IdField(help_text=_("The household's id."))
    kind = serializers.ChoiceField(choices=InspectionKind.choices)
    # From 1900 to now (plus ANJU_CLOCK_SKEW_MIN): a year-1 time overflowed the services'
    # date arithmetic, and a visit cannot have happened in the future.
    started_at = AwareDateTimeField(validators=[validate_past_time])
    ended_at = AwareDateTimeField(validators=[validate_past_time])
    location = LocationInputSerializer(
        required=False,
        allow_null=True,
        default=None,
        help_text=_("Where the phone was when the record was made, if the browser told."),
    )
    notes = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=5000, trim_whitespace=True
    )
    appraisal = AppraisalInputSerializer(
        required=False,
        allow_null=True,
        default=None,
        help_text=_(
            "Required for a safety appraisal, allowed for a completion check, refused for "
            "works progress."
        ),
    )


class PhotoInputSerializer(serializers.Serializer):
    """POST /api/inspections/<client_uuid>/photos/ (multipart)."""

    client_uuid = serializers.UUIDField(
        help_text=_("Made by the phone; send the same one again when replaying this photo.")
    )
    stage = serializers.ChoiceField(choices=PhotoStage.choices)
    angle = serializers.ChoiceField(choices=PhotoAngle.choices)
    # Empty and bad files are judged by the photo service, which says why in one place.
    file = serializers.FileField(
        allow_empty_file=True,
        help_text=_("JPEG, PNG, WebP or HEIC/HEIF, judged by content; at most 25 MB."),
    )


class HouseholdQuery(serializers.Serializer):
    household = IdField(required=False, help_text=_("Only this household's records (its id)."))


# --- output -----------------------------------------------------------------------------


FLAG_LABELS = {
    **dict(PhotoFlag.choices),
    PROCESSING_FAILED: _("The photo could not be processed"),
}


class FlagSerializer(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField(help_text=_("What the flag means, in words."))
    detail = serializers.CharField(help_text=_("The particulars: a distance, a time, a photo."))


class PhotoSerializer(serializers.ModelSerializer):
    inspection = serializers.UUIDField(
        source="inspection.client_uuid", read_only=True, help_text=_("The visit's client UUID.")
    )
    gps = serializers.SerializerMethodField(
        help_text=_("Where the photo says it was taken, [longitude, latitude] WGS84, or null.")
    )
    camera = serializers.SerializerMethodField(help_text=_("Make and model, or null."))
    flags = serializers.SerializerMethodField()
    display_url = serializers.SerializerMethodField(
        help_text=_("The display copy (~1600 px, no EXIF), or null while processing.")
    )
    thumbnail_url = serializers.SerializerMethodField(
        help_text=_("The thumbnail (~320 px, no EXIF), or null while processing.")
    )
    original_url = serializers.SerializerMethodField(
        help_text=_("The file as uploaded, with its EXIF: administrators only, else null.")
    )

    class Meta:
        model = Photo
        fields = [
            "id",
            "client_uuid",
            "inspection",
            "stage",
            "angle",
            "status",
            "taken_at",
            "gps",
            "gps_accuracy",
            "camera",
            "flags",
            "display_url",
            "thumbnail_url",
            "original_url",
            "byte_size",
            "sha256",
        ]
        read_only_fields = fields

    @extend_schema_field(
        serializers.ListField(
            child=serializers.FloatField(), min_length=2, max_length=2, allow_null=True
        )
    )
    def get_gps(self, photo):
        return None if photo.gps is None else [photo.gps.x, photo.gps.y]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_camera(self, photo):
        return " ".join(part for part in (photo.camera_make, photo.camera_model) if part) or None

    @extend_schema_field(FlagSerializer(many=True))
    def get_flags(self, photo):
        result = []
        for flag in photo.flags or []:
            code = flag.get("code", "")
            label = FLAG_LABELS.get(code, code)
            result.append({"code": code, "label": str(label), "detail": flag_detail(flag)})
        return result

    def _file_url(self, photo, variant):
        path = reverse("inspections:photo_file", kwargs={"key": photo.key, "variant": variant})
        return _absolute(self.context, path)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_display_url(self, photo):
        return self._file_url(photo, "display") if photo.display else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_thumbnail_url(self, photo):
        return self._file_url(photo, "thumb") if photo.thumbnail else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_original_url(self, photo):
        request = self.context.get("request")
        if request is None or not can_view_photo_original(request.user, photo):
            return None
        return self._file_url(photo, "original")


class AppraisalSerializer(serializers.ModelSerializer):
    rule = serializers.CharField(
        source="rule_version", read_only=True, help_text=_("The rule that derived the grade.")
    )
    site_hazards = serializers.ListField(
        child=serializers.ChoiceField(choices=SiteHazard.choices), read_only=True
    )
    foundation = rating_field(read_only=True)
    load_bearing_walls = rating_field(read_only=True)
    columns_beams = rating_field(read_only=True)
    roof_structure = rating_field(read_only=True)
    floors_slabs = rating_field(read_only=True)
    envelope = rating_field(read_only=True)
    derived_grade = grade_field(read_only=True, help_text=_("What the rule gives."))
    grade = grade_field(read_only=True, help_text=_("The grade given (derived or overridden)."))

    class Meta:
        model = Appraisal
        fields = [
            "site_hazards",
            *[name for name, _label in MEMBERS],
            "derived_grade",
            "grade",
            "override_reason",
            "rule",
        ]
        read_only_fields = fields


class InspectorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField(source="get_full_name")


class SlotSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=PhotoStage.choices)
    angle = serializers.ChoiceField(choices=PhotoAngle.choices)


class LocationSerializer(serializers.Serializer):
    lon = serializers.FloatField()
    lat = serializers.FloatField()
    accuracy = serializers.FloatField(allow_null=True)


class InspectionSerializer(serializers.ModelSerializer):
    """A visit as the API returns it. Needs `required_slots` in the context (selectors)."""

    household = serializers.IntegerField(source="house.household_id", read_only=True)
    inspector = InspectorSerializer(read_only=True)
    location = serializers.SerializerMethodField(
        help_text=_("Where the record was made (WGS84), or null.")
    )
    appraisal = serializers.SerializerMethodField()
    photos = PhotoSerializer(many=True, read_only=True)
    missing_slots = serializers.SerializerMethodField(
        help_text=_("The photo slots this kind of visit requires that it does not have yet.")
    )
    url = serializers.SerializerMethodField(help_text=_("The household's file page."))

    class Meta:
        model = Inspection
        fields = [
            "id",
            "client_uuid",
            "household",
            "house",
            "kind",
            "inspector",
            "started_at",
            "ended_at",
            "location",
            "notes",
            "appraisal",
            "photos",
            "missing_slots",
            "url",
        ]
        read_only_fields = fields

    @extend_schema_field(LocationSerializer(allow_null=True))
    def get_location(self, inspection):
        point = inspection.submitted_location
        if point is None:
            return None
        return {"lon": point.x, "lat": point.y, "accuracy": inspection.submitted_accuracy}

    @extend_schema_field(AppraisalSerializer(allow_null=True))
    def get_appraisal(self, inspection):
        try:
            appraisal = inspection.appraisal
        except Appraisal.DoesNotExist:
            return None
        return AppraisalSerializer(appraisal, context=self.context).data

    @extend_schema_field(SlotSerializer(many=True))
    def get_missing_slots(self, inspection):
        slots = self.context["required_slots"]
        return [
            {"stage": stage, "angle": angle} for stage, angle in missing_slots_of(inspection, slots)
        ]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, inspection):
        path = reverse("portal:household_detail", kwargs={"pk": inspection.house.household_id})
        return _absolute(self.context, path)


class PhotoSlotSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=PhotoStage.choices)
    angle = serializers.ChoiceField(choices=PhotoAngle.choices)
    stage_label = serializers.CharField()
    angle_label = serializers.CharField()


class PhotoSlotsSerializer(serializers.Serializer):
    """The required photo slots of each inspection kind, in the order of the form."""

    appraisal = PhotoSlotSerializer(many=True)
    progress = PhotoSlotSerializer(many=True)
    completion = PhotoSlotSerializer(many=True)
