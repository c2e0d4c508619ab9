"""Case ids and dates from a request stay in range: a 400 or a field error, never a 500."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from renovation.models import CaseState, Payment, RenovationCase
from tests.renovation.factories import CONFIRMED, case_in_state

pytestmark = pytest.mark.django_db

ID_RANGE = "An id is a whole number from 1 to 9223372036854775807."


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_opening_a_case_for_an_out_of_range_household_is_a_400():
    case = case_in_state(CaseState.APPLIED, photos=False)
    body = {
        "household": 99999999999999999999,
        "method": "repair",
        "build_mode": "self_built",
        "planned_floor_area": "50",
        "funding_year": 2026,
        "request_key": "open-huge",
    }

    response = api(case.team["inspector"]).post("/api/cases/", body, format="json")

    assert response.status_code == 400
    assert response.json() == {"household": [ID_RANGE]}
    assert RenovationCase.objects.count() == 1


@pytest.mark.parametrize(
    ("paid_on", "message"),
    [
        ("0001-01-01", "0001-01-01 is before 1900; check the year."),
        ("1899-12-31", "1899-12-31 is before 1900; check the year."),
        ("future", "{tomorrow} is in the future: today is {today}."),
    ],
)
def test_a_payment_date_before_1900_or_in_the_future_is_refused(paid_on, message):
    case = case_in_state(CaseState.COMPLETION_PASSED, photos=False)
    today = timezone.localdate()
    tomorrow = today + datetime.timedelta(days=1)
    if paid_on == "future":
        paid_on = tomorrow.isoformat()
    message = message.format(today=today.isoformat(), tomorrow=tomorrow.isoformat())
    body = {
        **CONFIRMED,
        "amount": "1",
        "paid_on": paid_on,
        "reference": "R-1",
        "request_key": "pay-bound",
    }

    response = api(case.team["county"]).post(f"/api/cases/{case.pk}/payments/", body, format="json")
    page = reverse("cases:case_pay", args=[case.pk])
    form_client = APIClient()
    form_client.force_login(case.team["county"])
    form = form_client.post(
        page, {**CONFIRMED, "amount": "1", "paid_on": paid_on, "reference": "R-2"}
    )

    assert response.status_code == 400
    assert response.json() == {"paid_on": [message]}
    assert form.status_code == 400
    assert message in form.content.decode()
    assert Payment.objects.count() == 0


@pytest.mark.parametrize("value", ["99999999999999999999", "9223372036854775808", "²", "-3"])
def test_a_batch_with_an_impossible_case_number_says_so(client, value):
    case = case_in_state(CaseState.APPLIED, photos=False)
    client.force_login(case.team["inspector"])

    response = client.post(
        reverse("cases:case_batch"),
        {**CONFIRMED, "action": "village_review", "cases": [value, case.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert f"“{value}” is not a case number." in response.content.decode()
    assert RenovationCase.objects.get(pk=case.pk).state == CaseState.APPLIED


def test_a_completion_check_of_an_out_of_range_id_is_a_field_error(client):
    case = case_in_state(CaseState.WORKS_FINISHED, photos=False)
    client.force_login(case.team["county"])

    response = client.post(
        reverse("cases:case_act", args=[case.pk]),
        {**CONFIRMED, "action": "pass_completion", "inspection": "99999999999999999999"},
    )

    assert response.status_code == 400
    assert "Choose one of this house&#x27;s completion checks." in response.content.decode()
    assert RenovationCase.objects.get(pk=case.pk).state == CaseState.WORKS_FINISHED
