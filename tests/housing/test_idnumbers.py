import datetime

import pytest
from django.core.exceptions import ValidationError

from housing import idnumbers

# A number built from its parts: area 110105, born 1949-12-31, sequence 001 (odd: male).
VALID = "11010519491231002X"


def test_check_character_follows_iso_7064_mod_11_2():
    # 1*7+1*9+0*10+1*5+0*8+5*4+1*2+9*1+4*6+9*3+1*7+2*9+3*10+1*5+0*8+0*4+2*2 = 167; 167 % 11 = 2
    assert idnumbers.check_character("11010519491231002") == "X"


def test_parse_valid_number_gives_birth_date_and_sex():
    info = idnumbers.parse(VALID)
    assert info.birth_date == datetime.date(1949, 12, 31)
    assert info.sex == idnumbers.SEX_FEMALE  # sequence 002 is even


def test_parse_accepts_lowercase_x_and_spaces():
    assert idnumbers.parse(" 11010519491231002x ").number == VALID


def test_odd_sequence_is_male():
    number = idnumbers.make("520399", datetime.date(1980, 5, 17), 13)
    assert idnumbers.parse(number).sex == idnumbers.SEX_MALE


@pytest.mark.parametrize(
    ("value", "code", "message"),
    [
        ("1101051949123100", "id_length", "An ID number has 18 characters; this one has 16."),
        (
            "1101051949123100AX",
            "id_characters",
            "An ID number is 17 digits followed by a digit or X.",
        ),
        (
            "110105194902300021",
            "id_birth_date",
            "The birth date 19490230 in the ID number is not a real date.",
        ),
        (
            "110105194912310021",
            "id_check",
            "The check character of the ID number is wrong (expected X).",
        ),
    ],
)
def test_invalid_numbers_are_rejected_with_a_clear_message(value, code, message):
    with pytest.raises(ValidationError) as exc:
        idnumbers.parse(value)
    assert exc.value.code == code
    assert exc.value.messages == [message]


def test_future_birth_date_is_rejected():
    tomorrow = datetime.date.today() + datetime.timedelta(days=1)
    number = idnumbers.make("520399", tomorrow, 1)
    with pytest.raises(ValidationError) as exc:
        idnumbers.parse(number)
    assert exc.value.code == "id_birth_date"


def test_mask_keeps_the_area_code_and_the_check_character_only():
    assert idnumbers.mask(VALID) == "110105***********X"
    assert idnumbers.mask("520399195803141230") == "520399***********0"
    assert idnumbers.mask("") == ""


def test_mask_hides_every_birth_date_and_sequence_digit():
    number = idnumbers.make("520399", datetime.date(1987, 11, 23), 457)
    masked = idnumbers.mask(number)
    assert len(masked) == 18
    assert masked[6:17] == "*" * 11  # 8 of the birth date, 3 of the sequence
    assert (masked[:6], masked[17]) == (number[:6], number[17])


@pytest.mark.parametrize("value", ["1", "52039919580314", "5203991958031412301", "11010549123100"])
def test_mask_hides_a_value_of_any_other_length_entirely(value):
    assert idnumbers.mask(value) == "*" * len(value)


@pytest.mark.django_db
def test_the_ledgers_sql_mask_is_the_same_as_mask(regions):
    from housing.models import FamilyMember
    from reports.ledgers import masked
    from tests.factories import FamilyMemberFactory, HouseholdFactory

    household = HouseholdFactory(village=regions["village1"], head_id_number=VALID)
    FamilyMemberFactory(household=household, id_number=VALID)
    FamilyMemberFactory(household=household, id_number="")
    rows = FamilyMember.objects.annotate(shown=masked("id_number")).values_list(
        "id_number", "shown"
    )
    assert sorted(rows) == [("", ""), (VALID, idnumbers.mask(VALID))]


def test_shown_birth_is_the_year_beside_a_masked_number_and_the_date_beside_a_full_one():
    born = datetime.date(1958, 3, 14)
    assert idnumbers.shown_birth(born, full=False) == "1958"
    assert idnumbers.shown_birth(born, full=True) == "1958-03-14"
    assert idnumbers.shown_birth(None, full=False) == ""
    assert idnumbers.shown_birth(datetime.date(905, 1, 1), full=False) == "0905"


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        (VALID, True),
        (VALID.lower(), True),
        (f" {VALID} ", True),
        ("110105194912310021", True),  # wrong check character: still reads as a number
        ("11010519491231002", False),
        ("11010519491231002XX", False),
        ("1101051949123100AX", False),
        ("王德福", False),
        ("520399100200-0007", False),
    ],
)
def test_looks_like_id_number(term, expected):
    assert idnumbers.looks_like_id_number(term) is expected
