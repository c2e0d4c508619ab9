"""The inspections API refuses out-of-range ids and impossible times with a 400 (issue 11:
`?household=` past 2^63 was a 500 on SQLite, a year-1 visit a 500 everywhere)."""

import datetime
import importlib
import uuid

import pytest
from django.apps import apps
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from inspections.models import Inspection

default_configuration = importlib.import_module("inspections.migrations.0002_default_configuration")

pytestmark = pytest.mark.django_db

ID_RANGE = "An id is a whole number from 1 to 9223372036854775807."
BEFORE_1900 = "The time is before 1900; check the phone's clock."
FUTURE = "The time is in the future; check the phone's clock."
CST = datetime.timezone(datetime.timedelta(hours=8))


@pytest.fixture(autouse=True)
def configuration(db):
    default_configuration.add(apps, None)


@pytest.fixture
def inspector_client(make_user, regions):
    client = APIClient()
    client.force_authenticate(make_user(Role.INSPECTOR, [regions["township1"]]))
    return client


def progress(household, **changes) -> dict:
    now = timezone.now().astimezone(CST)
    body = {
        "client_uuid": str(uuid.uuid4()),
        "household": household.pk,
        "kind": "progress",
        "started_at": (now - datetime.timedelta(hours=1)).isoformat(),
        "ended_at": (now - datetime.timedelta(minutes=30)).isoformat(),
    }
    body.update(changes)
    return body


@pytest.mark.parametrize("path", ["/api/inspections/", "/api/photos/"])
@pytest.mark.parametrize("value", ["99999999999999999999", "9223372036854775808", "-1"])
def test_an_out_of_range_household_filter_is_a_400(inspector_client, households, path, value):
    response = inspector_client.get(path, {"household": value})

    assert response.status_code == 400
    assert response.json() == {"household": [ID_RANGE]}


def test_recording_for_an_out_of_range_household_is_a_400(inspector_client, households):
    body = {**progress(households["village1"]), "household": 99999999999999999999}

    response = inspector_client.post("/api/inspections/", body, format="json")

    assert response.status_code == 400
    assert response.json() == {"household": [ID_RANGE]}
    assert not Inspection.objects.exists()


@pytest.mark.parametrize(
    ("started_at", "ended_at", "errors"),
    [
        pytest.param(
            "0001-01-01T00:00:00+08:00",
            "0001-01-01T09:30:00+08:00",
            {"started_at": [BEFORE_1900], "ended_at": [BEFORE_1900]},
            id="year-1",
        ),
        pytest.param(
            "1899-12-31T23:00:00+00:00",
            None,
            {"started_at": [BEFORE_1900]},
            id="1899",
        ),
        pytest.param(
            None,
            "9999-12-31T23:59:59-12:00",
            {"ended_at": [FUTURE]},
            id="year-9999",
        ),
    ],
)
def test_a_visit_before_1900_or_in_the_future_is_a_400_and_records_nothing(
    inspector_client, households, started_at, ended_at, errors
):
    body = progress(households["village1"])
    if started_at:
        body["started_at"] = started_at
    if ended_at:
        body["ended_at"] = ended_at

    response = inspector_client.post("/api/inspections/", body, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert not Inspection.objects.exists()


def test_the_clock_skew_allowed_is_the_setting(inspector_client, households, settings):
    ahead = (timezone.now() + datetime.timedelta(minutes=20)).astimezone(CST).isoformat()
    body = progress(households["village1"], ended_at=ahead)

    settings.ANJU_CLOCK_SKEW_MIN = 10
    refused = inspector_client.post("/api/inspections/", body, format="json")
    settings.ANJU_CLOCK_SKEW_MIN = 30
    accepted = inspector_client.post("/api/inspections/", body, format="json")

    assert (refused.status_code, refused.json()) == (400, {"ended_at": [FUTURE]})
    assert accepted.status_code == 201
