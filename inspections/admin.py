"""The admin for inspections: evidence to read, configuration to edit.

Inspections, appraisals and photos are records of what an inspector found and what the
phone sent; they are written only through the services (which derive grades, keep the
house's grade in step and check the photos), so here they are read-only. The appraisal
rule and the required photo slots are configuration: administrators edit them here.
Photos are previewed through inspections.views.photo_file, never from MEDIA_ROOT.
Every record has a History page (django-simple-history): who changed what, and when.
"""

from django import forms
from django.contrib import admin
from django.db.models import Count
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from accounts.admin import AdministratorsOnlyMixin, ReadOnlyAdminMixin
from inspections.models import (
    MEMBERS,
    Appraisal,
    AppraisalRule,
    Inspection,
    Photo,
    PhotoFlag,
    RequiredPhotoSlot,
)
from inspections.templatetags.evidence import flag_items, photo_url


def _point_text(point, accuracy=None) -> str:
    if point is None:
        return "—"
    if accuracy is None:
        return _("%(lat).6f° N, %(lon).6f° E") % {"lat": point.y, "lon": point.x}
    return _("%(lat).6f° N, %(lon).6f° E (± %(accuracy).0f m)") % {
        "lat": point.y,
        "lon": point.x,
        "accuracy": accuracy,
    }


def _thumbnail(photo, *, link_variant="display"):
    if photo.status != "ready" or not photo.thumbnail:
        return photo.get_status_display()
    return format_html(
        '<a href="{}"><img src="{}" alt="{}" loading="lazy" '
        'style="max-width:120px;max-height:90px"></a>',
        photo_url(photo, link_variant),
        photo_url(photo, "thumb"),
        str(photo),
    )


def _flags_html(photo):
    items = flag_items(photo.flags)
    if not items:
        return "—"
    return format_html(
        "<ul style='margin:0;padding-left:1em'>{}</ul>",
        format_html_join(
            "",
            "<li><strong>{}</strong>{}</li>",
            ((i["label"], f": {i['detail']}" if i["detail"] else "") for i in items),
        ),
    )


# --- inspections and appraisals -----------------------------------------------------------


class AppraisalInline(ReadOnlyAdminMixin, admin.StackedInline):
    model = Appraisal
    can_delete = False
    fields = (
        ("site_hazards",),
        ("foundation", "load_bearing_walls", "columns_beams"),
        ("roof_structure", "floors_slabs", "envelope"),
        ("derived_grade", "grade", "rule_version"),
        "override_reason",
    )
    readonly_fields = (
        "site_hazards",
        "foundation",
        "load_bearing_walls",
        "columns_beams",
        "roof_structure",
        "floors_slabs",
        "envelope",
        "derived_grade",
        "grade",
        "rule_version",
        "override_reason",
    )


class PhotoInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Photo
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("preview", "stage", "angle", "status", "taken_at", "flag_list")
    readonly_fields = fields

    @admin.display(description=_("photo"))
    def preview(self, obj):
        return _thumbnail(obj)

    @admin.display(description=_("evidence flags"))
    def flag_list(self, obj):
        return _flags_html(obj)


@admin.register(Inspection)
class InspectionAdmin(AdministratorsOnlyMixin, ReadOnlyAdminMixin, SimpleHistoryAdmin):
    list_display = (
        "started_at",
        "kind",
        "household",
        "inspector",
        "grade",
        "photo_count",
    )
    list_select_related = ("house__household", "inspector", "appraisal")
    list_filter = ("kind", "appraisal__grade")
    search_fields = ("^house__household__archive_no", "house__household__head_name", "=client_uuid")
    date_hierarchy = "started_at"
    fields = (
        "client_uuid",
        "house",
        "inspector",
        "kind",
        ("started_at", "ended_at"),
        "submitted_from",
        "notes",
        "created_at",
    )
    readonly_fields = (*fields[:4], "started_at", "ended_at", *fields[5:])
    inlines = (AppraisalInline, PhotoInline)

    def get_queryset(self, request):
        # No select_related here: the change list applies list_select_related only to a
        # queryset that has none yet.
        return super().get_queryset(request).annotate(photos_n=Count("photos"))

    @admin.display(description=_("household"), ordering="house__household__archive_no")
    def household(self, obj):
        return obj.house.household

    @admin.display(description=_("grade"), ordering="appraisal__grade")
    def grade(self, obj):
        appraisal = getattr(obj, "appraisal", None)
        return appraisal.grade if appraisal else "—"

    @admin.display(description=_("photos"), ordering="photos_n")
    def photo_count(self, obj):
        return obj.photos_n

    @admin.display(description=_("submitted from"))
    def submitted_from(self, obj):
        return _point_text(obj.submitted_location, obj.submitted_accuracy)


@admin.register(Appraisal)
class AppraisalAdmin(AdministratorsOnlyMixin, ReadOnlyAdminMixin, SimpleHistoryAdmin):
    list_display = ("inspection", "derived_grade", "grade", "overridden", "rule_version")
    list_select_related = ("inspection__house__household",)
    list_filter = ("grade", "derived_grade", "rule_version")
    search_fields = ("^inspection__house__household__archive_no",)
    fields = (
        "inspection",
        "site_hazards",
        *(name for name, _label in MEMBERS),
        "derived_grade",
        "grade",
        "override_reason",
        "rule_version",
    )
    readonly_fields = fields

    @admin.display(description=_("overridden"), boolean=True)
    def overridden(self, obj):
        return obj.grade != obj.derived_grade


# --- photos ---------------------------------------------------------------------------------


class HasFlagsFilter(admin.SimpleListFilter):
    title = _("evidence flags")
    parameter_name = "flagged"

    def lookups(self, request, model_admin):
        return [("yes", _("Has flags")), ("no", _("No flags"))] + [
            (code, label) for code, label in PhotoFlag.choices
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "yes":
            return queryset.exclude(flags=[])
        if value == "no":
            return queryset.filter(flags=[])
        if value in PhotoFlag.values:
            # The code in quotes: "near_duplicate_other" never matches "near_duplicate_stage".
            return queryset.filter(flags__icontains=f'"{value}"')
        return queryset


@admin.register(Photo)
class PhotoAdmin(AdministratorsOnlyMixin, ReadOnlyAdminMixin, SimpleHistoryAdmin):
    list_display = (
        "preview",
        "household",
        "stage",
        "angle",
        "status",
        "flag_count",
        "taken_at",
        "created_at",
    )
    list_display_links = ("preview", "household")
    list_select_related = ("inspection__house__household",)
    list_filter = ("status", "stage", "angle", HasFlagsFilter)
    search_fields = ("^inspection__house__household__archive_no", "=sha256", "=key")
    date_hierarchy = "created_at"
    fieldsets = (
        (None, {"fields": ("large_preview", "files", "inspection", "stage", "angle", "status")}),
        (_("Evidence flags"), {"fields": ("flag_list",)}),
        (
            _("From the file (EXIF)"),
            {"fields": ("taken_at", "gps_position", "camera_make", "camera_model")},
        ),
        (
            _("File"),
            {
                "fields": (
                    "original_format",
                    ("width", "height"),
                    "byte_size",
                    "sha256",
                    "phash_hex",
                    "key",
                    "client_uuid",
                )
            },
        ),
        (_("Received"), {"fields": ("uploaded_by", "created_at")}),
    )
    readonly_fields = (
        "large_preview",
        "files",
        "inspection",
        "stage",
        "angle",
        "status",
        "flag_list",
        "taken_at",
        "gps_position",
        "camera_make",
        "camera_model",
        "original_format",
        "width",
        "height",
        "byte_size",
        "sha256",
        "phash_hex",
        "key",
        "client_uuid",
        "uploaded_by",
        "created_at",
    )

    @admin.display(description=_("photo"))
    def preview(self, obj):
        return _thumbnail(obj)

    @admin.display(description=_("photo"))
    def large_preview(self, obj):
        if obj.status != "ready" or not obj.display:
            return obj.get_status_display()
        return format_html(
            '<a href="{}"><img src="{}" alt="{}" style="max-width:100%;max-height:480px"></a>',
            photo_url(obj, "display"),
            photo_url(obj, "display"),
            str(obj),
        )

    @admin.display(description=_("files"))
    def files(self, obj):
        links = [(photo_url(obj, "original"), _("Original (with EXIF and GPS)"))]
        if obj.status == "ready":
            links += [
                (photo_url(obj, "display"), _("Display copy")),
                (photo_url(obj, "thumb"), _("Thumbnail")),
            ]
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    @admin.display(description=_("household"), ordering="inspection__house__household__archive_no")
    def household(self, obj):
        return obj.inspection.house.household

    @admin.display(description=_("flags"))
    def flag_count(self, obj):
        return len(obj.flags or [])

    @admin.display(description=_("evidence flags"))
    def flag_list(self, obj):
        return _flags_html(obj)

    @admin.display(description=_("GPS position"))
    def gps_position(self, obj):
        return _point_text(obj.gps, obj.gps_accuracy)

    @admin.display(description=_("perceptual hash"))
    def phash_hex(self, obj):
        if obj.phash is None:
            return "—"
        return f"{obj.phash & (2**64 - 1):016x}"


# --- configuration --------------------------------------------------------------------------


class AppraisalRuleForm(forms.ModelForm):
    d_members = forms.MultipleChoiceField(
        label=_("members whose danger makes the house D"),
        choices=MEMBERS,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_(
            "A dangerous rating of any of these makes the whole house D; danger in any other "
            "member makes it C."
        ),
    )

    class Meta:
        model = AppraisalRule
        fields = ("name", "d_members", "site_hazard_makes_d", "active")

    def clean_d_members(self):
        chosen = self.cleaned_data.get("d_members") or []
        known = [name for name, _label in MEMBERS]
        unknown = [code for code in chosen if code not in known]
        if unknown:
            raise forms.ValidationError(
                _("Unknown member codes: %(codes)s. Use: %(known)s."),
                code="unknown_member",
                params={"codes": ", ".join(unknown), "known": ", ".join(known)},
            )
        # Stored in the order of the appraisal form, whatever order they were ticked in.
        return [code for code in known if code in chosen]


@admin.register(AppraisalRule)
class AppraisalRuleAdmin(AdministratorsOnlyMixin, SimpleHistoryAdmin):
    form = AppraisalRuleForm
    list_display = ("name", "d_member_list", "site_hazard_makes_d", "active", "created_at")
    list_filter = ("active",)

    @admin.display(description=_("members whose danger makes the house D"))
    def d_member_list(self, obj):
        labels = dict(MEMBERS)
        return ", ".join(str(labels.get(code, code)) for code in obj.d_members or [])

    def get_readonly_fields(self, request, obj=None):
        # Appraisals name the rule that derived their grade: once a rule has been used, its
        # meaning is fixed. Change the rule by adding a new one (the newest active applies).
        if obj is not None and Appraisal.objects.filter(rule_version=obj.name).exists():
            return ("name", "d_members", "site_hazard_makes_d", "created_at")
        return ("created_at",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None and Appraisal.objects.filter(rule_version=obj.name).exists():
            # The read-only d_members is shown by the model's field, not the form's.
            kwargs["form"] = forms.ModelForm
        return super().get_form(request, obj, change, **kwargs)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and Appraisal.objects.filter(rule_version=obj.name).exists():
            return False
        return super().has_delete_permission(request, obj)


@admin.register(RequiredPhotoSlot)
class RequiredPhotoSlotAdmin(AdministratorsOnlyMixin, SimpleHistoryAdmin):
    list_display = ("__str__", "kind", "stage", "angle")
    list_editable = ("kind", "stage", "angle")
    list_filter = ("kind", "stage", "angle")
    ordering = ("kind", "stage", "angle")
