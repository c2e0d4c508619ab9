"""Validation of the registry pages' input. Forms here never save anything."""

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.permissions import can_see_full_id_numbers
from accounts.scoping import code_visible
from housing import idnumbers
from housing.models import KeyGroup, Region, RegionLevel, RenovationStatus, SafetyGrade
from housing.selectors import HouseholdFilters, region_list

# Above this many regions (an administrator over a whole province) a select is unusable,
# and the region filter becomes a box for a region code.
MAX_REGION_CHOICES = 400
NOT_APPRAISED = "none"
NO_KEY_GROUP = "none"
# Levels offered in the region select: filtering a list by a whole province or city is
# the same as not filtering for the people who use this page.
SELECT_LEVELS = [RegionLevel.COUNTY, RegionLevel.TOWNSHIP, RegionLevel.VILLAGE]
_INDENT = {RegionLevel.COUNTY: 0, RegionLevel.TOWNSHIP: 1, RegionLevel.VILLAGE: 2}


class RegionFilterMixin:
    """A `region` filter limited to the user's regions: a select while it stays usable,
    else a box for a region code; an unknown or out-of-scope code is a field error."""

    def setup_region_field(self, user) -> None:
        self.user = user
        regions = list(
            region_list(user=user)
            .filter(level__in=SELECT_LEVELS)
            .only("code", "name", "level")[: MAX_REGION_CHOICES + 1]
        )
        if len(regions) <= MAX_REGION_CHOICES:
            self.fields["region"].widget = forms.Select(
                choices=[
                    ("", _("All my regions")),
                    *(
                        (r.code, "\u2003" * _INDENT.get(r.level, 0) + f"{r.name} ({r.code})")
                        for r in regions
                    ),
                ]
            )
        else:
            self.fields["region"].widget = forms.TextInput(
                attrs={"inputmode": "numeric", "placeholder": _("Region code")}
            )

    def clean_region(self):
        code = self.cleaned_data["region"].strip()
        if not code:
            return ""
        if not code.isdigit():
            raise forms.ValidationError(
                _("A region code has digits only; “%(code)s” does not."), params={"code": code}
            )
        if not code_visible(self.user, code) or not Region.objects.filter(code=code).exists():
            raise forms.ValidationError(
                _("There is no region %(code)s among your regions."), params={"code": code}
            )
        return code


class HouseholdFilterForm(RegionFilterMixin, forms.Form):
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=50,
        help_text=_("Name (contains), ID number (all 18 characters) or archive number (start)."),
    )
    region = forms.CharField(label=_("Region"), required=False, max_length=12)
    grade = forms.ChoiceField(label=_("Safety grade"), required=False)
    key_group = forms.ChoiceField(label=_("Key group"), required=False)
    renovation_status = forms.ChoiceField(
        label=_("Renovation status"),
        required=False,
        choices=[("", _("Any status")), *RenovationStatus.choices],
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.setup_region_field(user)
        if not can_see_full_id_numbers(user):
            self.fields["q"].help_text = _("Name (contains) or archive number (start).")
        self.fields["grade"].choices = [
            ("", _("Any grade")),
            *((g.value, g.label) for g in SafetyGrade if g.value),
            (NOT_APPRAISED, SafetyGrade.NOT_APPRAISED.label),
        ]
        self.fields["key_group"].choices = [
            ("", _("Any key group")),
            *KeyGroup.objects.values_list("code", "name"),
            (NO_KEY_GROUP, _("In no key group")),
        ]

    def clean_q(self):
        term = self.cleaned_data["q"]
        if idnumbers.id_search_refused(self.user, term):
            raise forms.ValidationError(idnumbers.ID_SEARCH_REFUSED, code="id_search")
        return term

    def filters(self) -> HouseholdFilters:
        """The selector's filters from valid data (call after is_valid())."""
        data = self.cleaned_data
        grade = data.get("grade") or ""
        return HouseholdFilters(
            q=data.get("q", "").strip(),
            region=data.get("region", ""),
            grade=None if not grade else ("" if grade == NOT_APPRAISED else grade),
            key_group=data.get("key_group", ""),
            renovation_status=data.get("renovation_status", ""),
        )
