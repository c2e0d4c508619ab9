"""The Django admin: used by administrators only, to set up users, regions and reference data."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.utils.translation import gettext_lazy as _

from accounts.models import Role, User
from accounts.permissions import can_use_admin


class AdministratorsOnlyMixin:
    """Every admin page answers to can_use_admin, not just to is_staff and model permissions.

    Django lets any staff user with model permissions in; here the role decides, so a staff
    flag or permission granted by mistake to another role opens nothing.
    """

    def has_module_permission(self, request):
        return can_use_admin(request.user) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return can_use_admin(request.user) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return can_use_admin(request.user) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return can_use_admin(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return can_use_admin(request.user) and super().has_delete_permission(request, obj)


class RoleFlagsMixin:
    """Keep the role and Django's admin flags in step: they mean the same thing here."""

    def clean(self):
        cleaned = super().clean()
        role = cleaned.get("role")
        if role is None:
            return cleaned
        is_staff = cleaned.get("is_staff", False)
        is_superuser = cleaned.get("is_superuser", False)
        if role == Role.ADMINISTRATOR and not (is_staff and is_superuser):
            self.add_error(
                "role",
                _(
                    "An administrator needs both staff status and superuser status: "
                    "tick them, or choose another role."
                ),
            )
        elif role != Role.ADMINISTRATOR and (is_staff or is_superuser):
            self.add_error(
                "role",
                _(
                    "Staff status and superuser status are for administrators only: "
                    "choose the role Administrator, or untick them."
                ),
            )
        return cleaned


class AnjuUserChangeForm(RoleFlagsMixin, UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User


class AnjuUserCreationForm(RoleFlagsMixin, AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User


@admin.register(User)
class UserAdmin(AdministratorsOnlyMixin, DjangoUserAdmin):
    form = AnjuUserChangeForm
    add_form = AnjuUserCreationForm
    list_display = ("username", "first_name", "last_name", "role", "is_active", "last_login")
    list_filter = ("role", "is_active", "is_staff", "is_superuser")
    search_fields = ("username", "first_name", "last_name", "email")
    autocomplete_fields = ("regions",)
    filter_horizontal = ("groups", "user_permissions")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "email")}),
        (
            _("Role and regions"),
            {
                "fields": ("role", "regions"),
                "description": _(
                    "The role says what the user may do; the regions say where. "
                    "A user sees each region and everything under it."
                ),
            },
        ),
        (
            _("Permissions"),
            {
                "fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions"),
            },
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "usable_password", "password1", "password2"),
            },
        ),
        (
            _("Role and regions"),
            {"classes": ("wide",), "fields": ("role", "regions", "is_staff", "is_superuser")},
        ),
    )


class ReadOnlyAdminMixin:
    """Evidence is read here, never written or erased (the services write it)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
