from django.contrib import admin
from django.urls import include, path

from accounts.views import LogoutView

urlpatterns = [
    path("", include("accounts.urls")),
    path("", include("housing.urls")),
    path("", include("portal.urls")),
    path("", include("inspections.urls")),
    path("", include("renovation.urls")),
    path("", include("audit.urls")),
    path("", include("reports.urls")),
    path("maps/basemap/", include("maps.basemap_urls")),
    path("", include("maps.urls")),
    path("api/", include("config.api_urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    # The admin's logout is ours too: it clears the browser's cache of the site and goes to
    # the login page, where the field page's offline copy is forgotten (accounts.views). A
    # route, not AdminSite.logout: the admin wraps that in admin_view, which answers anyone
    # not logged in with a redirect before the view can refuse a GET.
    path("admin/logout/", LogoutView.as_view()),
    path("admin/", admin.site.urls),
]
# Uploaded files are never served straight from MEDIA_ROOT: photos go through views that
# check who may see them (inspections.views).

# Translated pages, or JSON under /api/ (portal.errors says why each looks as it does).
handler400 = "portal.errors.bad_request"
handler403 = "portal.errors.permission_denied"
handler404 = "portal.errors.page_not_found"
handler500 = "portal.errors.server_error"
