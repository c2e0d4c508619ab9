"""Exports in the admin: read-only. They are documents of record, made only by their jobs."""

from django.contrib import admin

from accounts.admin import AdministratorsOnlyMixin, ReadOnlyAdminMixin
from reports.models import Export


@admin.register(Export)
class ExportAdmin(AdministratorsOnlyMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("number", "kind", "format", "user", "status", "size", "created_at")
    list_select_related = ("user",)
    list_filter = ("status", "kind", "format")
    search_fields = ("=number", "=sha256", "user__username")
    date_hierarchy = "created_at"
