"""API request rates (DRF throttles), counted in Django's cache.

Two differences from DRF's own classes:
- the client's address comes from accounts.network.client_ip, which trusts X-Forwarded-For
  only from the configured proxies (DRF's default takes the header from anyone, so a client
  could name a fresh address per request and never be throttled);
- the rate is read from settings on each request, not frozen when DRF is imported, so an
  administrator's setting (and a test's) takes effect.

The counts live in the default cache: with several app servers it must be a shared one
(DJANGO_CACHE_URL=redis://…), or each server counts on its own.
"""

from django.conf import settings
from rest_framework import throttling

from accounts.network import client_ip


class _ClientIPMixin:
    setting: str

    def get_ident(self, request):
        return client_ip(request)

    def get_rate(self):
        return getattr(settings, self.setting) or None


class TokenRequestThrottle(_ClientIPMixin, throttling.SimpleRateThrottle):
    """Requests for a token, per client address, whoever they are for (ANJU_API_TOKEN_RATE)."""

    scope = "token"
    setting = "ANJU_API_TOKEN_RATE"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AnonRateThrottle(_ClientIPMixin, throttling.AnonRateThrottle):
    """Anonymous API requests, per client address (ANJU_API_ANON_RATE)."""

    setting = "ANJU_API_ANON_RATE"


class UserRateThrottle(_ClientIPMixin, throttling.UserRateThrottle):
    """Signed-in API requests, per user (ANJU_API_USER_RATE)."""

    setting = "ANJU_API_USER_RATE"
