"""When an API token stops working: ANJU_TOKEN_TTL_HOURS after it was issued."""

import datetime

from django.conf import settings
from django.utils import timezone


def token_lifetime() -> datetime.timedelta:
    return datetime.timedelta(hours=settings.ANJU_TOKEN_TTL_HOURS)


def token_expires_at(token) -> datetime.datetime:
    return token.created + token_lifetime()


def token_is_expired(token, *, now: datetime.datetime | None = None) -> bool:
    return (now or timezone.now()) >= token_expires_at(token)
