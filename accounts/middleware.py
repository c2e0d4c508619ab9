"""Django's AuthenticationMiddleware, with the session read along with its user.

accounts.sessions reads a session and the user it names in one statement; the backend
(accounts.backends.ModelBackend) takes that user when it is the one the session data names.
This middleware puts the request's session in the backend's reach while request.user is
loaded, and only then. MIDDLEWARE lists it where Django's would be.
"""

from django.contrib.auth import middleware as auth_middleware
from django.utils.functional import SimpleLazyObject

from accounts.backends import REQUEST_SESSION


def _get_user(request):
    """django.contrib.auth.middleware.get_user, with the request's session in reach of
    ModelBackend.get_user (and only while it runs)."""
    if not hasattr(request, "_cached_user"):
        token = REQUEST_SESSION.set(request.session)
        try:
            return auth_middleware.get_user(request)
        finally:
            REQUEST_SESSION.reset(token)
    return request._cached_user


class AuthenticationMiddleware(auth_middleware.AuthenticationMiddleware):
    """Django's, but for request.user: loaded by _get_user."""

    def process_request(self, request):
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _get_user(request))
