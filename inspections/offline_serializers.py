"""How the field page's offline data looks in the API (inspections.offline builds it).

Read-only. Labels come translated into the request's language, so that a phone shows them
as they were when downloaded, with no catalogue of its own. Thumbnails are linked through
the permission-checked photo view, never a storage URL.
"""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from housing.models import SafetyGrade
from housing.serializers import VillageSerializer
from inspections.models import InspectionKind


class RegionRefSerializer(serializers.Serializer):
    code = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)


class FieldVillageSerializer(serializers.Serializer):
    code = serializers.CharField(read_only=True, help_text=_("The village's 12-digit code."))
    name = serializers.CharField(read_only=True)
    township = RegionRefSerializer(source="parent", read_only=True, allow_null=True)
    households = serializers.IntegerField(
        source="household_count", read_only=True, help_text=_("How many households it has.")
    )


class LastVisitSerializer(serializers.Serializer):
    date = serializers.DateField(read_only=True, help_text=_("The day of the visit, local time."))
    kind = serializers.ChoiceField(choices=InspectionKind.choices, read_only=True)
    kind_label = serializers.CharField(read_only=True)


class SlotPhotoSerializer(serializers.Serializer):
    thumb_url = serializers.SerializerMethodField(
        help_text=_("The thumbnail, through the permission-checked photo view.")
    )
    taken_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text=_("When the camera says it was taken.")
    )
    stage_label = serializers.CharField(read_only=True)
    angle_label = serializers.CharField(read_only=True)

    @extend_schema_field(OpenApiTypes.STR)
    def get_thumb_url(self, photo) -> str:
        return reverse("inspections:photo_file", kwargs={"key": photo.key, "variant": "thumb"})


class HouseholdContextSerializer(serializers.Serializer):
    """One household as the field page keeps it: what to show in a list, and what the form
    shows of the house's past (no personal numbers)."""

    id = serializers.IntegerField(read_only=True)
    archive_no = serializers.CharField(read_only=True)
    head_name = serializers.CharField(read_only=True)
    village = VillageSerializer(read_only=True)
    grade = serializers.ChoiceField(
        choices=[c for c, _label in SafetyGrade.choices if c],
        read_only=True,
        allow_null=True,
        help_text=_("The current house's safety grade; null when not appraised."),
    )
    lon = serializers.FloatField(read_only=True, allow_null=True, help_text=_("WGS84."))
    lat = serializers.FloatField(read_only=True, allow_null=True, help_text=_("WGS84."))
    graded_on = serializers.DateField(
        read_only=True,
        allow_null=True,
        help_text=_("The day of the appraisal that gave the grade; null when none did."),
    )
    last_visit = LastVisitSerializer(
        read_only=True, allow_null=True, help_text=_("The last visit to the current house.")
    )
    photos = serializers.DictField(
        child=SlotPhotoSerializer(),
        read_only=True,
        help_text=_(
            "Keyed “stage/angle”: the latest processed photo of each slot of the current house."
        ),
    )


class VillageBundleSerializer(serializers.Serializer):
    code = serializers.CharField(source="village.code", read_only=True)
    name = serializers.CharField(source="village.name", read_only=True)
    township = RegionRefSerializer(source="village.parent", read_only=True, allow_null=True)
    households = HouseholdContextSerializer(many=True, read_only=True)
