"""API shapes for logging in and out of the API."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from accounts.tokens import token_expires_at


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(
        source="key", help_text=_("Send it as the header “Authorization: Token <token>”.")
    )
    expires = serializers.SerializerMethodField(
        help_text=_("When the token stops working; ask for a new one before then.")
    )

    def get_expires(self, token) -> serializers.DateTimeField:
        return serializers.DateTimeField().to_representation(token_expires_at(token))


class AuthErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
