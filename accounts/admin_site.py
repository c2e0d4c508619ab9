"""The admin site: administrators only, whatever their is_staff flag says."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.permissions import can_use_admin


class AnjuAdminSite(admin.AdminSite):
    site_header = _("Anju administration")
    site_title = _("Anju administration")
    index_title = _("Registry and accounts")

    def has_permission(self, request):
        return can_use_admin(request.user)
