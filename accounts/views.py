"""Account pages: Django's own login and logout, with what logging out must also clear."""

from django.contrib.auth import views as auth_views


class LogoutView(auth_views.LogoutView):
    """Django's logout (POST only), telling the browser to drop its HTTP cache of the site.

    Pages and files kept there (photo thumbnails and map tiles cached as private, a page the
    back button would show) are the user's who leaves; the next user on the phone must get
    them from the server, which checks who asks. "cache" clears the HTTP cache only: not the
    cookies (the logout has ended the session), nor the storage, where the field page keeps
    records not yet sent (their users send them later). The field page's own offline copy is
    in the service worker's Cache Storage, which "cache" does not reach (Chromium); the login
    page this redirects to has the worker forget it (static/field/forget.js).
    """

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        response["Clear-Site-Data"] = '"cache"'
        return response
