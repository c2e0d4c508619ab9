"""China's resident identity card number (居民身份证号, GB 11643-1999).

18 characters: 6-digit area code, 8-digit birth date (YYYYMMDD), 3-digit sequence
(odd = male, even = female) and a check character by ISO 7064 MOD 11-2 (0-9 or X).

Who sees what of a person's number (accounts.permissions):

- administrators: the full number and the full birth date, everywhere
  (can_see_full_id_numbers);
- county officials: the masked number and the birth year; the full numbers of one household,
  with its birth dates, by a reveal, which is recorded (IdNumberReveal) and shown in that
  response only (can_reveal_id_numbers);
- township officials, inspectors and auditors: the masked number and the birth year. The
  auditors' duplicate-number checks compare the full numbers in the database and print
  them masked.

Pages show the birth year with the age reached this year (the year's difference), not the
age in whole years today: that moves on the birthday, so read on two days it tells it.
Searching by a whole number is for administrators only: an exact-match search is an
oracle, and the 16,600 numbers a masked one leaves (see mask) are a few minutes of
scripted requests. No list, API or export is ordered by ID number or birth date for
anyone else (the order would tell what the mask hides): they are ordered by archive number
and record id.
"""

import datetime
import operator
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.permissions import can_see_full_id_numbers

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
    if len(first17) != len(_WEIGHTS):
        raise ValueError(f"17 digits expected, not {len(first17)}")
    # map(), not a generator: this runs for every number of a 100,000-row import.
    total = sum(map(operator.mul, map(int, first17), _WEIGHTS))
    return _CHECK[total % 11]


def normalize(value: str) -> str:
    return (value or "").strip().upper()


def parse(value: str, *, today: datetime.date | None = None) -> IdNumberInfo:
    """Validate an ID number and return what it encodes; raise ValidationError if invalid.

    `today` (default: today) is the latest birth date allowed: an import reads it once."""
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
    if birth.year < 1880 or birth > (today or datetime.date.today()):
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


# What a masked number keeps: the area code and the check character. See mask().
MASK_KEEP_START = 6
MASK_KEEP_END = 1


def mask(value: str) -> str:
    """The ID number as shown to everyone who may not see it whole: 520329***********X.

    Kept: the 6-digit area code, where the number was issued, which for most residents is
    already given by the household's region; and the check character, so that a clerk can
    tell two masked numbers apart and match one against a paper record. Hidden: the 8
    digits of the birth date and all 3 digits of the sequence.

    Why so much is hidden: the pages also show the sex (the parity of the last sequence
    digit) and the birth year, and the check character is computed from the other 17. The
    old mask (first 6 and last 4, 520329********123X) hid the birth date only, so anyone
    shown the birth date had the whole number, and with the birth year alone the check
    character left about 366 / 11 = 33 candidates. With this mask, a person shown the area
    code, the birth year and the sex still has about 365 days x 500 sequences / 11 check
    values = 16,600 numbers that fit (tests/housing/test_id_rebuild.py counts them for
    every person and role). So, with this mask, every page and export shows the birth
    year, never the full birth date (see shown_birth), unless the full number is shown.

    A value that is not 18 characters long (none should be stored: the model validates)
    is hidden entirely rather than guessed at.
    """
    if not value:
        return ""
    if len(value) != 18:
        return "*" * len(value)
    return value[:MASK_KEEP_START] + "*" * (18 - MASK_KEEP_START - MASK_KEEP_END) + value[-1:]


def looks_like_id_number(term: str) -> bool:
    """Does a search term read as a whole ID number (18 characters, the first 17 digits)?"""
    number = normalize(term)
    return len(number) == 18 and number[:17].isdigit()


ID_SEARCH_REFUSED = _(
    "Only administrators may search by a whole ID number; search by the name or the archive "
    "number instead."
)


def id_search_refused(user, term: str) -> bool:
    """Is this search a whole ID number from someone who may not see whole numbers? An exact
    match would confirm a guess among the candidates a masked number leaves, so the forms
    refuse it (ID_SEARCH_REFUSED) and the selector finds nothing."""
    return looks_like_id_number(term) and not (user is not None and can_see_full_id_numbers(user))


def shown_birth(birth_date: datetime.date | None, *, full: bool) -> str:
    """A birth date as it may be shown next to an ID number shown in full (`full`) or masked.

    With the masked number only the year: the month and day are 4 of the 8 hidden digits,
    and with the area code, the sex and the check character they would leave about
    500 / 11 = 45 candidates, a short list to try. "" when unknown.
    """
    if birth_date is None:
        return ""
    return birth_date.isoformat() if full else f"{birth_date.year:04d}"


def make(area: str, birth: datetime.date, sequence: int) -> str:
    """Build a valid number (for demo data and tests): area 6 digits, sequence 0-999."""
    first17 = f"{area}{birth:%Y%m%d}{sequence:03d}"
    return first17 + check_character(first17)
