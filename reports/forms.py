"""Validation of what an export is asked for with. Forms here never save anything.

The region and household must be in the user's regions (an out-of-scope one is a field
error, as on the list pages); a list page's filters are checked with that page's own form.
"""

from django import forms
from django.http import Http404, QueryDict
from django.utils.translation import gettext_lazy as _

from housing.bounds import ID_MAX
from housing.forms import RegionFilterMixin
from housing.selectors import household_get
from renovation.models import FUNDING_YEAR_MAX, FUNDING_YEAR_MIN
from reports.kinds import CRS_CHOICES, FORMATS, KINDS, kinds_for
from reports.scope import filters_problem, list_filters_form

# Paging and sorting of the page the user was on: not filters of what to export.
NOT_FILTERS = {"page", "csrfmiddlewaretoken", "after", "before", "sort"}


class ExportForm(RegionFilterMixin, forms.Form):
    kind = forms.ChoiceField(label=_("Export"))
    format = forms.ChoiceField(
        label=_("Format"), choices=[(f.code, f.label) for f in FORMATS.values()]
    )
    region = forms.CharField(label=_("Region"), required=False, max_length=12)
    funding_year = forms.IntegerField(
        label=_("Funding year"),
        required=False,
        min_value=FUNDING_YEAR_MIN,
        max_value=FUNDING_YEAR_MAX,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "placeholder": _("Any year")}),
    )
    household = forms.IntegerField(
        label=_("Household"),
        required=False,
        min_value=1,
        max_value=ID_MAX,
        widget=forms.HiddenInput,
    )
    crs = forms.TypedChoiceField(
        label=_("Coordinate system"), coerce=int, choices=CRS_CHOICES, initial=4326, required=False
    )
    filters = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.setup_region_field(user)
        self.fields["kind"].choices = [(k.code, k.label) for k in kinds_for(user)]

    def clean_household(self):
        pk = self.cleaned_data.get("household")
        if pk is None:
            return None
        try:
            household_get(user=self.user, pk=pk)
        except Http404:
            raise forms.ValidationError(
                _("There is no household %(id)s among your regions."), params={"id": pk}
            ) from None
        return pk

    def clean(self):
        data = super().clean()
        spec = KINDS.get(data.get("kind"))
        if spec is None:
            return data
        fmt = data.get("format")
        if fmt and fmt not in spec.formats:
            self.add_error(
                "format",
                _("%(kind)s comes as %(formats)s.")
                % {
                    "kind": spec.label,
                    "formats": ", ".join(str(FORMATS[f].label) for f in spec.formats),
                },
            )
        for name in spec.required:
            if data.get(name) in (None, ""):
                self.add_error(name, _("%(kind)s needs this.") % {"kind": spec.label})
        if "filters" in spec.params:
            data["filters"] = self._list_filters(spec, data.get("filters") or "")
        return data

    def _list_filters(self, spec, query: str) -> dict:
        """The list page's query string, checked with that page's form for this user."""
        query_dict = QueryDict(query)
        form = list_filters_form(spec.code, query_dict, self.user)
        if query_dict and not form.is_valid():
            self.add_error(None, filters_problem(form))
        return {k: query_dict.getlist(k) for k in query_dict if k not in NOT_FILTERS}

    def params(self) -> dict:
        """The parameters the kind reads, from valid data (call after is_valid())."""
        data = self.cleaned_data
        spec = KINDS[data["kind"]]
        params = {}
        for name in spec.params:
            value = data.get(name)
            if name == "crs":
                value = value or 4326
            if value not in (None, "", {}):
                params[name] = value
        return params
