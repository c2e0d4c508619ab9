from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    default = True
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self):
        from accounts import checks, receivers  # noqa: F401  (checks registers itself)

        receivers.connect()


class AnjuAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with our site: only administrators get in."""

    default = False
    default_site = "accounts.admin_site.AnjuAdminSite"
