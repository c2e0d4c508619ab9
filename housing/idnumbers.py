"""China's resident identity card number (居民身份证号, GB 11643-1999).

18 characters: 6-digit area code, 8-digit birth date (YYYYMMDD), 3-digit sequence
(odd = male, even = female) and a check character by ISO 7064 MOD 11-2 (0-9 or X).
"""

import datetime
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_CHECK = "10X98765432"

SEX_MALE = "M"
SEX_FEMALE = "F"


@dataclass(frozen=True)
class IdNumberInfo:
    number: str
    birth_date: datetime.date
    sex: str  # SEX_MALE or SEX_FEMALE


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def normalize(value: str) -> str:
    return (value or "").strip().upper()


def parse(value: str) -> IdNumberInfo:
    """Validate an ID number and return what it encodes; raise ValidationError if invalid."""
    number = normalize(value)
    if len(number) != 18:
        raise ValidationError(
            _("An ID number has 18 characters; this one has %(n)d."),
            code="id_length",
            params={"n": len(number)},
        )
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise ValidationError(
            _("An ID number is 17 digits followed by a digit or X."), code="id_characters"
        )
    try:
        birth = datetime.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ValidationError(
            _("The birth date %(date)s in the ID number is not a real date."),
            code="id_birth_date",
            params={"date": number[6:14]},
        ) from None
    if birth.year < 1880 or birth > datetime.date.today():
        raise ValidationError(
            _("The birth date %(date)s in the ID number is out of range."),
            code="id_birth_date",
            params={"date": number[6:14]},
        )
    expected = check_character(number[:17])
    if number[17] != expected:
        raise ValidationError(
            _("The check character of the ID number is wrong (expected %(expected)s)."),
            code="id_check",
            params={"expected": expected},
        )
    sex = SEX_MALE if int(number[16]) % 2 == 1 else SEX_FEMALE
    return IdNumberInfo(number=number, birth_date=birth, sex=sex)


def validate_id_number(value: str) -> None:
    """Model-field validator; blank values are left to the field's blank=... rule."""
    if value:
        parse(value)


def mask(value: str) -> str:
    """Show the first 6 and last 4 characters only: 520329********123X."""
    if not value:
        return ""
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def make(area: str, birth: datetime.date, sequence: int) -> str:
    """Build a valid number (for demo data and tests): area 6 digits, sequence 0-999."""
    first17 = f"{area}{birth:%Y%m%d}{sequence:03d}"
    return first17 + check_character(first17)
