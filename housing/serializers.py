"""How the registry looks in the API. Read-only for now: these serialize, they never save.

ID numbers are masked unless the serializer context says the user may see them in full
(`full_id_numbers`, set by the view from `can_see_full_id_numbers`); a serializer used
without that context masks, so forgetting it cannot leak. Birth dates follow the same
context: beside a masked number only the birth year is given (housing.idnumbers says why).
"""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from housing import idnumbers
from housing.models import FamilyMember, House, Household, Region


class IdNumberField(serializers.CharField):
    """A national ID number, masked (520399***********X) unless the context allows it."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        kwargs.setdefault(
            "help_text",
            _(
                "Masked to the area code (first 6 characters) and the check character (the "
                "last) unless you may see it in full."
            ),
        )
        super().__init__(**kwargs)

    def to_representation(self, value):
        value = super().to_representation(value)
        if self.context.get("full_id_numbers", False):
            return value
        return idnumbers.mask(value)


class VillageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Region
        fields = ["code", "name"]


class CurrentHouseSerializer(serializers.ModelSerializer):
    # A number in JSON, not DRF's default decimal-as-string.
    floor_area = serializers.DecimalField(
        max_digits=7, decimal_places=2, coerce_to_string=False, allow_null=True, read_only=True
    )

    class Meta:
        model = House
        fields = [
            "structure_type",
            "storeys",
            "floor_area",
            "year_built",
            "safety_grade",
            "renovation_status",
        ]


class BirthDateField(serializers.DateField):
    """The full birth date where the ID number is shown in full; null beside a masked one,
    whose hidden digits it would give back (birth_year is there for everyone)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault(
            "help_text",
            _("The birth date, only where the ID number is shown in full; null otherwise."),
        )
        super().__init__(**kwargs)

    def to_representation(self, value):
        if not self.context.get("full_id_numbers", False):
            return None
        return super().to_representation(value)


class FamilyMemberSerializer(serializers.ModelSerializer):
    id_number = IdNumberField()
    birth_date = BirthDateField()
    birth_year = serializers.SerializerMethodField(
        help_text=_("The year of birth (from the ID number), or null when unknown.")
    )

    class Meta:
        model = FamilyMember
        fields = [
            "id",
            "household",
            "name",
            "relation",
            "id_number",
            "sex",
            "birth_date",
            "birth_year",
            "disability_level",
            "phone",
        ]
        read_only_fields = fields

    def get_birth_year(self, member) -> int | None:
        return member.birth_date.year if member.birth_date else None


class HouseholdSerializer(GeoFeatureModelSerializer):
    """A household as a GeoJSON Feature; geometry is its location, WGS84 [lon, lat]."""

    village = VillageSerializer(read_only=True)
    head_id_number = IdNumberField()
    key_group = serializers.SlugRelatedField(
        slug_field="code",
        read_only=True,
        allow_null=True,
        help_text=_("Code of the key group, or null when in none."),
    )
    current_house = serializers.SerializerMethodField(
        help_text=_("The house the household lives in, or null when none is recorded.")
    )
    url = serializers.SerializerMethodField(help_text=_("The household's file page."))

    class Meta:
        model = Household
        geo_field = "location"
        id_field = "id"
        fields = [
            "id",
            "archive_no",
            "village",
            "head_name",
            "head_id_number",
            "phone",
            "address",
            "location",
            "location_source",
            "key_group",
            "poverty_relocation",
            "current_house",
            "url",
        ]
        read_only_fields = fields

    @extend_schema_field(CurrentHouseSerializer(allow_null=True))
    def get_current_house(self, household):
        house = household.current_house
        return None if house is None else CurrentHouseSerializer(house, context=self.context).data

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, household):
        path = reverse("portal:household_detail", kwargs={"pk": household.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class HouseholdDetailSerializer(HouseholdSerializer):
    """One household as a GeoJSON Feature, with its family members."""

    members = FamilyMemberSerializer(many=True, read_only=True)

    class Meta(HouseholdSerializer.Meta):
        fields = [*HouseholdSerializer.Meta.fields, "members"]
        read_only_fields = fields


class NearbyQuery(serializers.Serializer):
    """Query of GET /api/households/nearby/: where the phone is, and how many to return."""

    MAX_LIMIT = 50

    lon = serializers.FloatField(
        min_value=-180, max_value=180, help_text=_("Longitude, WGS84 degrees (-180..180).")
    )
    lat = serializers.FloatField(
        min_value=-90, max_value=90, help_text=_("Latitude, WGS84 degrees (-90..90).")
    )
    limit = serializers.IntegerField(
        required=False,
        default=10,
        min_value=1,
        max_value=MAX_LIMIT,
        help_text=_("How many households, 1 to 50; 10 by default."),
    )


class NearbyHouseholdSerializer(serializers.ModelSerializer):
    """A household near a point, for the field page's "near me" (no personal numbers)."""

    village = VillageSerializer(read_only=True)
    grade = serializers.CharField(
        read_only=True,
        allow_blank=True,
        help_text=_("Safety grade of the current house; empty when not appraised or no house."),
    )
    distance_m = serializers.SerializerMethodField(help_text=_("Metres from the given point."))

    class Meta:
        model = Household
        fields = ["id", "archive_no", "head_name", "village", "grade", "distance_m"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.DOUBLE)
    def get_distance_m(self, household):
        return round(household.distance.m, 1)

    def to_representation(self, household):
        data = super().to_representation(household)
        data["grade"] = household.grade or ""
        return data


class RegionSerializer(serializers.ModelSerializer):
    parent = serializers.SlugRelatedField(
        slug_field="code",
        read_only=True,
        allow_null=True,
        help_text=_("Code of the region above, or null."),
    )

    class Meta:
        model = Region
        fields = ["code", "name", "level", "parent"]
        read_only_fields = fields


class RegionFeatureSerializer(GeoFeatureModelSerializer):
    """A region as a GeoJSON Feature; geometry is its boundary (WGS84), id its code."""

    # The Feature's id is the code, as everywhere else regions are named by code; the code
    # stays in the properties too so both formats have the same properties.
    id = serializers.CharField(source="code", read_only=True)
    parent = serializers.SlugRelatedField(
        slug_field="code",
        read_only=True,
        allow_null=True,
        help_text=_("Code of the region above, or null."),
    )

    class Meta:
        model = Region
        geo_field = "boundary"
        id_field = "id"
        fields = ["id", "code", "name", "level", "parent", "boundary"]
        read_only_fields = fields


class _PageLinks(serializers.Serializer):
    count = serializers.IntegerField(help_text=_("Rows in all pages."))
    next = serializers.URLField(allow_null=True, help_text=_("The next page, or null."))
    previous = serializers.URLField(allow_null=True, help_text=_("The previous page, or null."))


class RegionPageSerializer(_PageLinks):
    """A page of regions as plain JSON (schema only)."""

    results = RegionSerializer(many=True)


class RegionFeaturePageSerializer(_PageLinks):
    """A page of regions as a GeoJSON FeatureCollection, with ?geometry=1 (schema only)."""

    type = serializers.ChoiceField(choices=[("FeatureCollection", "FeatureCollection")])
    # A ListField, not many=True: that would nest a whole FeatureCollection in the schema.
    features = serializers.ListField(child=RegionFeatureSerializer())


class RevealedMemberSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    id_number = serializers.CharField()


class IdNumbersRevealSerializer(serializers.Serializer):
    """The unmasked ID numbers of one household (each reveal is logged)."""

    household = serializers.IntegerField(help_text=_("The household's id."))
    head_id_number = serializers.CharField()
    members = RevealedMemberSerializer(many=True)
