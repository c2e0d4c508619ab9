"""Ids and times from a request stay within what the database and the services can hold:
past 2^63-1, negative, in year 1 or in the future is a 400 that says what is accepted."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from housing.bounds import ID_MAX, parse_id, validate_past_date, validate_past_time

ID_RANGE = "An id is a whole number from 1 to 9223372036854775807."
# 2^63 and more: an OverflowError on SQLite (a 500 before), out of range on PostgreSQL.
OUT_OF_RANGE_IDS = ["99999999999999999999", str(ID_MAX + 1), "-1", "0", "-9223372036854775809"]


@pytest.fixture
def official_client(make_user, regions):
    client = APIClient()
    client.force_authenticate(make_user(Role.COUNTY_OFFICIAL, [regions["county"]]))
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("value", OUT_OF_RANGE_IDS)
def test_members_of_an_out_of_range_household_id_is_a_400(official_client, value):
    response = official_client.get("/api/members/", {"household": value})

    assert response.status_code == 400
    assert response.json() == {"household": [ID_RANGE]}


@pytest.mark.django_db
def test_the_largest_id_is_accepted_and_finds_nothing(official_client):
    response = official_client.get("/api/members/", {"household": str(ID_MAX)})

    assert response.status_code == 200
    assert response.json()["count"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/api/households/99999999999999999999/",
        "/api/households/99999999999999999999/members/",
        "/api/regions/99999999999999999999/",
    ],
)
def test_an_out_of_range_id_in_an_api_path_is_not_found(official_client, path):
    assert official_client.get(path).status_code == 404


@pytest.mark.django_db
def test_an_out_of_range_id_in_a_page_path_is_not_found(client, make_user, regions):
    client.force_login(make_user(Role.COUNTY_OFFICIAL, [regions["county"]]))

    assert client.get("/households/99999999999999999999/").status_code == 404
    assert client.get("/maps/households/99999999999999999999/popup/").status_code == 404


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        (" 42 ", 42),
        (str(ID_MAX), ID_MAX),
        (str(ID_MAX + 1), None),
        ("99999999999999999999", None),
        ("0", None),
        ("-1", None),
        ("²", None),  # str.isdigit() says yes, int() says no
        ("٣", None),  # an Arabic-Indic 3: int() would take it
        ("1e3", None),
        ("", None),
    ],
)
def test_parse_id_takes_ascii_digits_within_the_range(text, expected):
    assert parse_id(text) == expected


UTC = datetime.UTC


@pytest.mark.parametrize(
    ("moment", "message"),
    [
        (
            datetime.datetime(1, 1, 1, tzinfo=UTC),
            "The time is before 1900; check the phone's clock.",
        ),
        (
            datetime.datetime(1899, 12, 31, 23, 59, 59, tzinfo=UTC),
            "The time is before 1900; check the phone's clock.",
        ),
        (
            datetime.datetime(9999, 12, 31, tzinfo=UTC),
            "The time is in the future; check the phone's clock.",
        ),
    ],
)
def test_a_time_before_1900_or_in_the_future_is_refused(moment, message):
    with pytest.raises(ValidationError) as refused:
        validate_past_time(moment)
    assert refused.value.messages == [message]


def test_a_time_within_the_clock_skew_is_accepted_and_beyond_it_refused(settings):
    settings.ANJU_CLOCK_SKEW_MIN = 10
    validate_past_time(datetime.datetime(1900, 1, 1, tzinfo=UTC))
    validate_past_time(timezone.now() + datetime.timedelta(minutes=9))
    with pytest.raises(ValidationError):
        validate_past_time(timezone.now() + datetime.timedelta(minutes=11))
    settings.ANJU_CLOCK_SKEW_MIN = 30
    validate_past_time(timezone.now() + datetime.timedelta(minutes=11))


def test_a_date_before_1900_or_after_today_is_refused():
    today = timezone.localdate()
    tomorrow = today + datetime.timedelta(days=1)
    validate_past_date(today)
    validate_past_date(datetime.date(1900, 1, 1))
    with pytest.raises(ValidationError) as early:
        validate_past_date(datetime.date(1, 1, 1))
    assert early.value.messages == ["0001-01-01 is before 1900; check the year."]
    with pytest.raises(ValidationError) as late:
        validate_past_date(tomorrow)
    assert late.value.messages == [
        f"{tomorrow.isoformat()} is in the future: today is {today.isoformat()}."
    ]


@pytest.mark.django_db
def test_a_page_past_the_last_is_not_found_and_a_huge_page_size_is_the_maximum(
    official_client, households
):
    past = official_client.get("/api/members/", {"page": "99999999999999999999"})
    huge = official_client.get("/api/members/", {"page_size": "99999999999999999999"})

    assert past.status_code == 404
    assert huge.status_code == 200
    assert huge.json()["count"] == len(huge.json()["results"])
