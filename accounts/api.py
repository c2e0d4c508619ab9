"""Logging in and out of the API: get a token, revoke it.

The token request is a login path like /login/: django-axes counts its failures (the
serializer calls authenticate() with the request) and locks the account or address out,
and a throttle limits how often one address may ask at all.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.lockout import lockout_message, lockout_seconds
from accounts.serializers import AuthErrorSerializer, TokenSerializer
from accounts.services import token_issue, token_revoke
from accounts.throttling import TokenRequestThrottle

LOCKED_OUT = OpenApiResponse(
    AuthErrorSerializer,
    description=_(
        "Too many failed logins for this account or from this address, or too many token "
        "requests from this address; the Retry-After header says when to try again."
    ),
)


class LockedOut(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"


@extend_schema(
    summary=_("Get an API token"),
    description=_(
        "Exchange a username and password for a token; send it on every request as the "
        "header “Authorization: Token <token>”. A token works until `expires` "
        "(ANJU_TOKEN_TTL_HOURS after it was issued), until its user logs out or changes "
        "password, or until a new token is asked for: each request issues a new token "
        "and revokes the old one."
    ),
    request=AuthTokenSerializer,
    responses={
        200: TokenSerializer,
        400: OpenApiResponse(description=_("Wrong username or password.")),
        429: LOCKED_OUT,
    },
    auth=[],
)
class TokenView(APIView):
    # No authentication: a phone with an expired token in its headers must still get a new one.
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [TokenRequestThrottle]

    def post(self, request):
        serializer = AuthTokenSerializer(data=request.data, context={"request": request})
        if not serializer.is_valid():
            # Set by axes when it refused to check the password of a locked-out login.
            if getattr(request, "axes_locked_out", False):
                exc = LockedOut(lockout_message(request))
                exc.wait = lockout_seconds(request)  # DRF's handler sends it as Retry-After
                raise exc
            raise exceptions.ValidationError(serializer.errors)
        token = token_issue(user=serializer.validated_data["user"])
        return Response(TokenSerializer(token).data)


@extend_schema(
    summary=_("Log out of the API"),
    description=_("Revoke your API token: it stops working at once. Answers 204 with no body."),
    request=None,
    responses={204: OpenApiResponse(description=_("The token is revoked."))},
)
class TokenRevokeView(APIView):
    permission_classes = [IsAuthenticated]

    def post(self, request):
        token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
