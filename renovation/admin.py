"""The admin for renovation cases: configuration to edit, the record to read.

Cases and payments move only through their services (renovation/services.py), so they are
read-only here; area rules and subsidy standards are configuration. Every record has a
History page (django-simple-history): who changed what, and when. Case events are the
hash-chained trail itself: read-only, never deleted (manage.py verify_audit checks them).
"""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from accounts.admin import AdministratorsOnlyMixin, ReadOnlyAdminMixin
from renovation.models import AreaRule, CaseEvent, Payment, RenovationCase, SubsidyStandard


@admin.register(AreaRule)
class AreaRuleAdmin(AdministratorsOnlyMixin, SimpleHistoryAdmin):
    list_display = (
        "effective_year",
        "min_per_person",
        "small_household_max_people",
        "small_household_min_area",
        "small_household_max_area",
        "max_per_person",
    )


@admin.register(SubsidyStandard)
class SubsidyStandardAdmin(AdministratorsOnlyMixin, SimpleHistoryAdmin):
    list_display = ("year", "method", "key_group", "amount")
    list_select_related = ("key_group",)
    list_filter = ("year", "method", "key_group")


class PaymentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Payment
    extra = 0
    can_delete = False
    fields = ("paid_on", "amount", "reference", "recorded_by", "created_at")
    readonly_fields = fields


@admin.register(RenovationCase)
class RenovationCaseAdmin(AdministratorsOnlyMixin, ReadOnlyAdminMixin, SimpleHistoryAdmin):
    list_display = (
        "id",
        "house",
        "state",
        "method",
        "funding_year",
        "batch",
        "subsidy_amount",
        "paid_total",
    )
    list_select_related = ("house__household",)
    list_filter = ("state", "funding_year", "method", "build_mode")
    search_fields = ("^house__household__archive_no", "house__household__head_name", "batch")
    inlines = (PaymentInline,)


@admin.register(Payment)
class PaymentAdmin(AdministratorsOnlyMixin, ReadOnlyAdminMixin, SimpleHistoryAdmin):
    list_display = ("case", "paid_on", "amount", "reference", "recorded_by")
    list_select_related = ("case__house__household", "recorded_by")
    search_fields = ("=reference", "^case__house__household__archive_no")
    date_hierarchy = "paid_on"


@admin.register(CaseEvent)
class CaseEventAdmin(AdministratorsOnlyMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "case", "kind", "from_state", "to_state", "actor", "at")
    list_select_related = ("case__house__household", "actor")
    list_filter = ("kind", "to_state")
    search_fields = ("^case__house__household__archive_no", "=request_key")
    date_hierarchy = "at"
