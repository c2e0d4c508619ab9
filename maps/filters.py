"""The maps' filters (key group, grade, case state, funding year), parsed once and applied to
MapPoint rows the same way by the tiles, the region figures and the dashboard."""

import hashlib
from dataclasses import dataclass

from django import forms
from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from housing.models import KeyGroup
from maps.legend import COLOUR_MODES, GRADES
from renovation.models import CaseState

NONE = "none"  # "not appraised" for grades, "no case" for states

GRADE_CHOICES = [(c.key, c.label) for c in GRADES]
STATE_CHOICES = [(NONE, pgettext_lazy("case state filter", "No case")), *CaseState.choices]


@dataclass(frozen=True)
class MapFilters:
    key_group: str = ""  # KeyGroup.code; "" = any
    grades: tuple[str, ...] = ()  # "A".."D", "none"; () = any
    states: tuple[str, ...] = ()  # CaseState values, "none"; () = any
    year: int | None = None  # funding year of the latest case
    region: str = ""  # only under this region code (the map's current region); "" = all

    def apply(self, qs: QuerySet) -> QuerySet:
        """Filter MapPoint rows."""
        return qs.filter(self.q())

    def q(self) -> Q:
        """The filters on MapPoint rows."""
        return self._q(Q(key_group__code=self.key_group))

    def cell_q(self) -> Q:
        """The same filters on MapCell rows (key group by id, 0 = none; year 0 = no case)."""
        ids = KeyGroup.objects.filter(code=self.key_group).values("id")
        return self._q(Q(key_group_ref__in=ids))

    def _q(self, key_group: Q) -> Q:
        """Both tables name grade, state, year and village code alike; only the key group
        differs (a foreign key on MapPoint, a plain id on MapCell)."""
        q = Q(region_code__startswith=self.region) if self.region else Q()
        if self.key_group:
            q &= key_group
        if self.grades:
            q &= Q(grade__in=["" if g == NONE else g for g in self.grades])
        if self.states:
            q &= Q(case_state__in=["" if s == NONE else s for s in self.states])
        if self.year is not None:
            q &= Q(funding_year=self.year)
        return q

    def query_items(self) -> list[tuple[str, str]]:
        """The filters as GET parameters (MapFilterForm's names), for links that keep them."""
        items: list[tuple[str, str]] = []
        if self.key_group:
            items.append(("key_group", self.key_group))
        items += [("grade", g) for g in self.grades]
        items += [("state", s) for s in self.states]
        if self.year is not None:
            items.append(("year", str(self.year)))
        if self.region:
            items.append(("region", self.region))
        return items

    @property
    def active(self) -> bool:
        return bool(
            self.key_group or self.grades or self.states or self.year is not None or self.region
        )

    def digest(self) -> str:
        text = "|".join(
            [
                self.key_group,
                ",".join(sorted(self.grades)),
                ",".join(sorted(self.states)),
                str(self.year),
                self.region,
            ]
        )
        return hashlib.sha1(text.encode()).hexdigest()[:12]


class MapFilterForm(forms.Form):
    """GET parameters of the overview page and the dashboard (the page's region is in its
    path); the tiles take one more, TileFilterForm's region."""

    key_group = forms.ModelChoiceField(
        label=_("Key group"),
        queryset=KeyGroup.objects.all(),
        to_field_name="code",
        required=False,
        empty_label=_("Any"),
    )
    grade = forms.MultipleChoiceField(
        label=_("Grade"), choices=GRADE_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )
    state = forms.MultipleChoiceField(label=_("Case state"), choices=STATE_CHOICES, required=False)
    year = forms.IntegerField(
        label=_("Funding year"), required=False, min_value=1990, max_value=2100
    )
    colour = forms.ChoiceField(
        label=_("Colour points by"), choices=COLOUR_MODES, required=False, initial="grade"
    )

    def filters(self) -> MapFilters:
        """The filters of a valid form."""
        data = self.cleaned_data
        group = data.get("key_group")
        return MapFilters(
            key_group=group.code if group else "",
            grades=tuple(sorted(data.get("grade") or ())),
            states=tuple(sorted(data.get("state") or ())),
            year=data.get("year"),
            region=data.get("region") or "",
        )

    def colour_mode(self) -> str:
        return self.cleaned_data.get("colour") or "grade"

    def error_text(self) -> str:
        """Every error, as 'field: message' lines, for a 400 response."""
        lines = []
        for name, errors in self.errors.items():
            label = self.fields[name].label if name in self.fields else name
            lines.extend(f"{label}: {e}" for e in errors)
        return "\n".join(lines)


KEY_GROUP_CODES_KEY = "anju:maps:key-group-codes"
KEY_GROUP_CODES_SECONDS = 60


class KeyGroupCodeField(forms.ModelChoiceField):
    """A key group by code, known from the cache when it can be: a tile asks the database for
    it only when the code is not among the cached ones (a group added since is found there,
    an unknown code is still an error). A group deleted since passes for a minute, and its
    tiles are empty: the tile's SQL itself looks the code up."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        codes = cache.get(KEY_GROUP_CODES_KEY)
        if codes is None:
            codes = frozenset(KeyGroup.objects.values_list("code", flat=True))
            cache.set(KEY_GROUP_CODES_KEY, codes, KEY_GROUP_CODES_SECONDS)
        if str(value) in codes:
            return KeyGroup(code=str(value))  # only its code is read (filters())
        return super().to_python(value)


class TileFilterForm(MapFilterForm):
    """A tile's parameters: the page's filters, and the region whose houses it shows."""

    key_group = KeyGroupCodeField(
        label=_("Key group"),
        queryset=KeyGroup.objects.all(),
        to_field_name="code",
        required=False,
        empty_label=_("Any"),
    )

    region = forms.RegexField(
        label=_("Region code"),
        regex=r"^[0-9]{2,12}$",
        required=False,
        error_messages={"invalid": _("A region code has 2 to 12 digits.")},
    )


class _SharedFields(dict):
    """A form's field declarations that each instance uses as they are, not deep-copied."""

    def __deepcopy__(self, memo):
        return self


# A tile form is only ever parsed (never rendered, its fields never changed per request), and
# a map view asks for dozens of tiles: deep-copying its six fields and their widgets for each
# was a third of a tile request's Python time. Its instances share the class's fields.
TileFilterForm.base_fields = _SharedFields(TileFilterForm.base_fields)
