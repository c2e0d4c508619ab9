"""The Django admin for the registry: administrators' tool for setting up and correcting data.

Every registry record has a History page (django-simple-history): each create, change and
delete with who made it, when, and what changed.

Geometry fields use OfflineMapWidget (vendored OpenLayers, no remote tiles) instead of
GeoDjango's OSMWidget, which would load from a CDN and openstreetmap.org.
"""

from django import forms
from django.contrib import admin
from django.contrib.gis.admin import GISModelAdmin
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from accounts.admin import AdministratorsOnlyMixin
from housing import idnumbers
from housing.models import (
    FamilyMember,
    House,
    Household,
    IdNumberReveal,
    KeyGroup,
    Region,
)
from housing.services import derive_from_id_number
from housing.widgets import OfflineMapWidget


class OfflineMapAdmin(AdministratorsOnlyMixin, SimpleHistoryAdmin, GISModelAdmin):
    """Geometry fields edited on OfflineMapWidget, with an outline around them for context."""

    gis_widget = OfflineMapWidget

    def map_context(self, obj):
        """(geometry, label) drawn under the field's value; (None, "") for none."""
        return None, ""

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        geometry, label = self.map_context(obj)
        # get_form builds a new form class, with new widgets, on every call: safe to set.
        for field in form.base_fields.values():
            if isinstance(field.widget, OfflineMapWidget):
                field.widget.context_geometry = geometry
                field.widget.context_label = label
        return form


@admin.register(Region)
class RegionAdmin(OfflineMapAdmin):
    list_display = ("code", "name", "level", "parent")
    list_select_related = ("parent",)
    list_filter = ("level",)
    search_fields = ("^code", "name")
    autocomplete_fields = ("parent",)
    ordering = ("code",)

    def get_queryset(self, request):
        # Boundaries can be megabytes each; the list and the autocomplete never show them.
        return super().get_queryset(request).defer("boundary", "parent__boundary")

    def map_context(self, obj):
        if obj is not None and obj.parent_id and obj.parent.boundary:
            return obj.parent.boundary, str(obj.parent)
        return None, ""


@admin.register(KeyGroup)
class KeyGroupAdmin(AdministratorsOnlyMixin, SimpleHistoryAdmin):
    list_display = ("code", "name", "in_2017_list", "in_2021_list", "active", "sort_order")
    list_display_links = ("code",)
    list_editable = ("name", "in_2017_list", "in_2021_list", "active", "sort_order")
    list_filter = ("active", "in_2017_list", "in_2021_list")
    search_fields = ("code", "name")


class HouseInlineForm(forms.ModelForm):
    def _get_validation_exclusions(self):
        # The one-current-house rule is checked across the whole formset (HouseInlineFormSet),
        # where replacing the current house in one save is allowed; checked per form against
        # the database, the old current house would still count and block the swap.
        exclusions = super()._get_validation_exclusions()
        exclusions.add("household")
        return exclusions


class HouseInlineFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        current = [
            form
            for form in self.forms
            if getattr(form, "cleaned_data", None)
            and not form.cleaned_data.get("DELETE")
            and form.cleaned_data.get("is_current")
        ]
        if len(current) > 1:
            raise ValidationError(
                _(
                    "A household has one current house; %(n)d are ticked as current. "
                    "Untick the house that was replaced."
                ),
                code="house_one_current",
                params={"n": len(current)},
            )


class HouseInline(admin.TabularInline):
    model = House
    form = HouseInlineForm
    formset = HouseInlineFormSet
    extra = 0
    fields = (
        "is_current",
        "structure_type",
        "storeys",
        "floor_area",
        "year_built",
        "safety_grade",
        "renovation_status",
    )


class FamilyMemberForm(forms.ModelForm):
    """ID numbers are stored normalised, and sex and birth date are read from them."""

    def clean_id_number(self):
        return idnumbers.normalize(self.cleaned_data.get("id_number", ""))

    def clean(self):
        cleaned = super().clean()
        if "id_number" in cleaned:
            self.instance.sex, self.instance.birth_date = derive_from_id_number(
                cleaned["id_number"]
            )
        return cleaned


class FamilyMemberInline(admin.TabularInline):
    model = FamilyMember
    form = FamilyMemberForm
    extra = 0
    fields = ("name", "relation", "id_number", "sex", "birth_date", "disability_level", "phone")
    readonly_fields = ("sex", "birth_date")


class HouseholdForm(forms.ModelForm):
    def clean_head_id_number(self):
        return idnumbers.normalize(self.cleaned_data.get("head_id_number", ""))


@admin.register(Household)
class HouseholdAdmin(OfflineMapAdmin):
    form = HouseholdForm
    list_display = (
        "archive_no",
        "head_name",
        "village",
        "key_group",
        "poverty_relocation",
        "location_source",
    )
    list_select_related = ("village", "key_group")
    list_filter = ("key_group", "poverty_relocation", "location_source")
    # An ID number is matched exactly, for the head or any member: see get_search_results.
    search_fields = ("^archive_no", "head_name")
    search_help_text = _(
        "Archive number (beginning), head's name (part), or an ID number (exact, head or member)."
    )
    autocomplete_fields = ("village",)
    readonly_fields = ("created_at", "updated_at")
    inlines = (HouseInline, FamilyMemberInline)
    fieldsets = (
        (None, {"fields": ("archive_no", "village", "head_name", "head_id_number")}),
        (_("Contact"), {"fields": ("phone", "address")}),
        (_("Location"), {"fields": ("location", "location_source")}),
        (_("Support"), {"fields": ("key_group", "poverty_relocation")}),
        (_("Notes"), {"fields": ("notes", "created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).defer("village__boundary")

    def get_search_results(self, request, queryset, search_term):
        if idnumbers.looks_like_id_number(search_term):
            number = idnumbers.normalize(search_term)
            members = FamilyMember.objects.filter(id_number=number).values("household")
            return queryset.filter(Q(head_id_number=number) | Q(pk__in=members)), False
        return super().get_search_results(request, queryset, search_term)

    def map_context(self, obj):
        if obj is not None and obj.village.boundary:
            return obj.village.boundary, str(obj.village)
        return None, ""


@admin.register(House)
class HouseAdmin(AdministratorsOnlyMixin, SimpleHistoryAdmin):
    list_display = (
        "household",
        "is_current",
        "structure_type",
        "storeys",
        "floor_area",
        "year_built",
        "safety_grade",
        "renovation_status",
    )
    list_select_related = ("household",)
    list_filter = ("safety_grade", "renovation_status", "is_current", "structure_type")
    search_fields = ("^household__archive_no", "household__head_name")
    autocomplete_fields = ("household",)


@admin.register(FamilyMember)
class FamilyMemberAdmin(AdministratorsOnlyMixin, SimpleHistoryAdmin):
    form = FamilyMemberForm
    list_display = ("name", "household", "relation", "id_number", "sex", "birth_date")
    list_select_related = ("household",)
    list_filter = ("relation", "sex", "disability_level")
    search_fields = ("name", "=id_number", "^household__archive_no")
    autocomplete_fields = ("household",)
    readonly_fields = ("sex", "birth_date")
    fields = (
        "household",
        "name",
        "relation",
        "id_number",
        "sex",
        "birth_date",
        "disability_level",
        "phone",
    )


@admin.register(IdNumberReveal)
class IdNumberRevealAdmin(AdministratorsOnlyMixin, admin.ModelAdmin):
    """An audit log: read it here, never write or erase it.

    With no delete permission here, the admin also refuses to delete a household that has
    reveals (its delete page lists them as objects the user may not delete).
    """

    list_display = ("revealed_at", "user", "household", "via")
    list_select_related = ("user", "household")
    list_filter = ("via",)
    search_fields = ("^household__archive_no", "user__username")
    date_hierarchy = "revealed_at"
    fields = ("revealed_at", "user", "household", "via")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
