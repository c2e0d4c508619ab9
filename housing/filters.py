"""Query parameters of the registry API: parsed and checked here, then handed to selectors.

Each bad parameter answers 400 with the parameter as the key and a message that says what
is accepted, so a client can fix its request without reading the code.
"""

import math

from django.contrib.gis.geos import Polygon
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework_gis.filters import InBBoxFilter

from housing import idnumbers
from housing.bounds import IdField
from housing.models import CODE_LENGTHS, KeyGroup, Region, RegionLevel, RenovationStatus
from housing.selectors import HouseholdFilters

GRADE_NONE = "none"


class QueryChoiceField(serializers.ChoiceField):
    """A choice whose error names the parameter and lists what it accepts.

    Blank means "any", as a form with an unselected <select> sends it.
    """

    default_error_messages = {
        "invalid_choice": _("Unknown %(parameter)s “%(value)s”; use one of: %(choices)s."),
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if data == "" and self.allow_blank:
            return ""
        try:
            return self.choice_strings_to_values[str(data)]
        except KeyError:
            raise serializers.ValidationError(
                self.error_messages["invalid_choice"]
                % {
                    "parameter": self.field_name,
                    "value": data,
                    "choices": ", ".join(self.choice_strings_to_values),
                },
                code="invalid_choice",
            ) from None


def validate_region_code(parameter: str, value: str) -> str:
    """A well-formed code of a region that exists.

    Existence is checked without scoping on purpose: statistical codes are public, and a
    township official may filter by their county (the selector still limits the rows to
    the user's regions), so "not yours" must not read as "does not exist".
    """
    if not value.isdigit() or len(value) not in CODE_LENGTHS.values():
        raise serializers.ValidationError(
            _("%(parameter)s must be a region code of 2, 4, 6, 9 or 12 digits; got “%(value)s”.")
            % {"parameter": parameter, "value": value},
            code="region_code",
        )
    if not Region.objects.filter(code=value).exists():
        raise serializers.ValidationError(
            _("%(parameter)s: no region has the code %(value)s.")
            % {"parameter": parameter, "value": value},
            code="region_unknown",
        )
    return value


class HouseholdQuery(serializers.Serializer):
    """Filters of GET /api/households/."""

    q = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text=_(
            "Head's name (contains), archive number (starts with), or, for administrators "
            "only, an 18-character ID number of the head or a member (exact)."
        ),
    )
    region = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text=_("A region code: households in that region and everything under it."),
    )
    grade = QueryChoiceField(
        choices=[
            ("A", "A"),
            ("B", "B"),
            ("C", "C"),
            ("D", "D"),
            (GRADE_NONE, _("Not yet appraised")),
        ],
        required=False,
        help_text=_("Safety grade of the current house: A, B, C, D, or none (not appraised)."),
    )
    key_group = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text=_("A key group code, or none for households in no key group."),
    )
    renovation_status = QueryChoiceField(
        choices=RenovationStatus.choices,
        required=False,
        help_text=_("Renovation status of the current house."),
    )

    def validate_q(self, value):
        user = getattr(self.context.get("request"), "user", None)
        if idnumbers.id_search_refused(user, value):
            raise serializers.ValidationError(idnumbers.ID_SEARCH_REFUSED, code="id_search")
        return value

    def validate_region(self, value):
        return validate_region_code("region", value) if value else ""

    def validate_key_group(self, value):
        if not value or value == GRADE_NONE:
            return value
        codes = list(KeyGroup.objects.values_list("code", flat=True))
        if value not in codes:
            raise serializers.ValidationError(
                _("Unknown key_group “%(value)s”; use one of: %(choices)s.")
                % {"value": value, "choices": ", ".join([*codes, "none"])},
                code="invalid_choice",
            )
        return value

    def to_filters(self) -> HouseholdFilters:
        data = self.validated_data
        grade = data.get("grade")
        return HouseholdFilters(
            q=data.get("q", "").strip(),
            region=data.get("region", ""),
            # The selector takes "" for "not appraised" and None for "any grade".
            grade=None if not grade else ("" if grade == GRADE_NONE else grade),
            key_group=data.get("key_group", ""),
            renovation_status=data.get("renovation_status", ""),
        )


class MemberQuery(serializers.Serializer):
    """Filters of GET /api/members/."""

    household = IdField(required=False, help_text=_("Only the members of this household (its id)."))


class RegionQuery(serializers.Serializer):
    """Filters and format of GET /api/regions/."""

    level = QueryChoiceField(
        choices=RegionLevel.choices, required=False, help_text=_("Only regions of this level.")
    )
    parent = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text=_("Only the direct children of the region with this code."),
    )
    geometry = serializers.BooleanField(
        required=False,
        default=False,
        help_text=_(
            "1 to get a GeoJSON FeatureCollection (a Feature for one region) with the "
            "boundaries, WGS84 longitude/latitude; otherwise plain JSON without them."
        ),
    )

    def validate_parent(self, value):
        return validate_region_code("parent", value) if value else ""


class RegionFormatQuery(serializers.Serializer):
    """The format switch of GET /api/regions/<code>/."""

    geometry = serializers.BooleanField(
        required=False,
        default=False,
        help_text=_("1 to get a GeoJSON Feature with the boundary (WGS84); otherwise plain JSON."),
    )


class BBoxFilter(InBBoxFilter):
    """rest_framework_gis's bbox filter with a message that says what a good bbox is.

    The stock filter answers "Invalid bbox string" and lets through reversed corners or
    latitudes first, which silently return nothing.
    """

    def get_filter_bbox(self, request):
        raw = request.query_params.get(self.bbox_param, None)
        if not raw:
            return None
        try:
            numbers = [float(part) for part in raw.split(",")]
        except ValueError:
            numbers = []
        ok = len(numbers) == 4 and all(math.isfinite(n) for n in numbers)
        if ok:
            min_lon, min_lat, max_lon, max_lat = numbers
            ok = -180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90
        if not ok:
            raise serializers.ValidationError(
                {
                    self.bbox_param: [
                        _(
                            "%(parameter)s must be four numbers "
                            "min_lon,min_lat,max_lon,max_lat in WGS84 degrees, with "
                            "min < max, longitudes within -180..180 and latitudes within "
                            "-90..90; got “%(value)s”."
                        )
                        % {"parameter": self.bbox_param, "value": raw}
                    ]
                },
                code="bbox",
            )
        bbox = Polygon.from_bbox(numbers)
        bbox.srid = 4326
        return bbox

    def get_schema_operation_parameters(self, view):
        [parameter] = super().get_schema_operation_parameters(view)
        parameter["description"] = str(
            _(
                "Only households whose location is inside this box: "
                "min_lon,min_lat,max_lon,max_lat in WGS84 degrees."
            )
        )
        parameter["schema"]["example"] = [107.8, 27.1, 108.1, 27.4]
        return [parameter]
