"""Token authentication whose tokens expire (DRF's never do)."""

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from accounts.tokens import token_is_expired


class TokenExpired(exceptions.AuthenticationFailed):
    default_detail = _(
        "Your token has expired. Log in again (POST /api/auth/token/) to get a new one."
    )
    default_code = "token_expired"


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing a token older than ANJU_TOKEN_TTL_HOURS (401).

    A revoked token (logout, a new token, a password change) no longer exists, and is
    refused as DRF refuses any unknown token: "Invalid token."
    """

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token_is_expired(token):
            raise TokenExpired()
        return user, token
