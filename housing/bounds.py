"""Bounds every id and time taken from a request must keep, for forms and the API alike.

An id past what a database integer holds is an OverflowError (a 500) on SQLite and an error
on PostgreSQL; a time in year 1 overflows the date arithmetic of the services. Both are
refused where the input is parsed, with a message that names what is accepted, like any
other invalid input. The API and the pages of every app above housing use these.
"""

import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

# The largest value of a 64-bit signed integer: every id (BigAutoField) and any integer
# column fits under it.
ID_MAX = 2**63 - 1
# Nothing this project records (a visit, a payment) happened before this.
EARLIEST_DATE = datetime.date(1900, 1, 1)
EARLIEST_TIME = datetime.datetime(1900, 1, 1, tzinfo=datetime.UTC)

ID_RANGE = _("An id is a whole number from 1 to 9223372036854775807.")
ID_ERRORS = {
    "min_value": ID_RANGE,
    "max_value": ID_RANGE,
    "max_string_length": ID_RANGE,
}


class IdField(serializers.IntegerField):
    """An id in an API query or body: 1 to 2^63-1, else a 400 naming the field. (A page's
    form says the same with forms.IntegerField(min_value=1, max_value=ID_MAX), or parse_id.)"""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", ID_MAX)
        kwargs["error_messages"] = {**ID_ERRORS, **kwargs.get("error_messages", {})}
        super().__init__(**kwargs)


def parse_id(text) -> int | None:
    """An id written as ASCII digits, within 1..2^63-1; None for anything else.

    str.isdigit() alone lets "²" and "٣" through, which int() then refuses.
    """
    text = str(text).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(ID_MAX)):
        return None
    value = int(text)
    return value if 1 <= value <= ID_MAX else None


def clock_skew() -> datetime.timedelta:
    return datetime.timedelta(minutes=settings.ANJU_CLOCK_SKEW_MIN)


def validate_past_time(value: datetime.datetime) -> None:
    """A time a device sent for something that happened: from 1900 to now, plus the clock
    skew a phone may have (ANJU_CLOCK_SKEW_MIN)."""
    if value is None:
        return
    if timezone.is_naive(value):
        value = timezone.make_aware(value, datetime.UTC)
    if value < EARLIEST_TIME:
        raise ValidationError(
            _("The time is before 1900; check the phone's clock."), code="too_early"
        )
    if value > timezone.now() + clock_skew():
        raise ValidationError(
            _("The time is in the future; check the phone's clock."), code="future"
        )


def validate_past_date(value: datetime.date) -> None:
    """A day that has come: from 1900 to today."""
    if value is None:
        return
    if value < EARLIEST_DATE:
        raise ValidationError(
            _("%(value)s is before 1900; check the year."),
            code="too_early",
            params={"value": value.isoformat()},
        )
    today = timezone.localdate()
    if value > today:
        raise ValidationError(
            _("%(value)s is in the future: today is %(today)s."),
            code="future",
            params={"value": value.isoformat(), "today": today.isoformat()},
        )
