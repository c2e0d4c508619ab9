"""Separation of duties and repeated request keys: no one official appraises the finished
house, passes the completion check and pays the subsidy alone (ANJU_SEPARATION_OF_DUTIES),
and a repeated request key is authorized as a first request is."""

import datetime
import re
from decimal import Decimal

import pytest
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from audit.chain import verify_chain
from inspections.errors import IdempotencyConflict
from inspections.models import InspectionKind
from renovation.errors import CaseForbidden, CaseRefused
from renovation.models import CaseEvent, CaseState, Payment, RenovationCase
from renovation.selectors import available_actions
from renovation.services import case_batch_act, case_open
from tests.factories import UserFactory, make_region
from tests.renovation.factories import (
    CONFIRMED,
    act,
    appraise,
    case_in_state,
    case_team,
    eligible_house,
    pay,
    subsidy_standard,
)
from tests.renovation.test_case_pages import action_forms, text

pytestmark = pytest.mark.django_db


def county_official(case, name="county2"):
    """Another county official over the case's county."""
    county = make_region(case.house.household.village.code[:6])
    return UserFactory(role=Role.COUNTY_OFFICIAL, regions=[county], username=f"{name}-{case.pk}")


def appraised_by(case, user):
    """The case (works finished) now judged on a completion appraisal graded A by `user`."""
    appraise(
        case.house,
        user,
        "A",
        kind=InspectionKind.COMPLETION,
        when=timezone.now() - datetime.timedelta(minutes=1),
    )
    return case


def pay_args(case, user, **kw):
    return {
        "user": user,
        "case_id": case.pk,
        "amount": "20000",
        "paid_on": timezone.localdate(),
        "reference": "TR-1",
        **kw,
    }


def appraised_message(user, action="Pass the completion check"):
    return (
        f"Separation of duties: you ({user.username}, County official) made the completion "
        f"appraisal this check is judged on; someone else must take the step “{action}”."
    )


def passed_message(user, role="County official"):
    return (
        f"Separation of duties: you ({user.username}, {role}) passed the completion check of "
        "this case; someone else must take the step “Record a payment”."
    )


def events_and_payments():
    return (
        list(CaseEvent.objects.order_by("id").values_list("id", "hash")),
        list(Payment.objects.values_list("id", flat=True)),
    )


# ---------------------------------------------------------------------------------------
# Services


def test_one_county_official_cannot_appraise_pass_and_pay_alone():
    case = case_in_state(CaseState.WORKS_FINISHED, photos=False)
    county = case.team["county"]
    case = appraised_by(case, county)
    before = events_and_payments()

    with pytest.raises(CaseForbidden) as refused:
        act(user=county, case_id=case.pk, action="pass_completion")
    assert str(refused.value.message) == appraised_message(county)
    assert refused.value.status == 403
    assert events_and_payments() == before

    # A second county official passes; the one who passed may not pay...
    county2 = county_official(case)
    assert (
        act(user=county2, case_id=case.pk, action="pass_completion").state
        == CaseState.COMPLETION_PASSED
    )
    before = events_and_payments()
    with pytest.raises(CaseForbidden) as refused:
        pay(**pay_args(case, county2))
    assert str(refused.value.message) == passed_message(county2)
    assert events_and_payments() == before

    # ... and the appraiser may: two people are enough.
    payment, created = pay(**pay_args(case, county))
    assert (created, payment.recorded_by) == (True, county)
    assert RenovationCase.objects.get(pk=case.pk).state == CaseState.PAID
    actors = dict(case.events.values_list("data__step", "actor__username"))
    assert (actors["pass_completion"], actors["pay"]) == (county2.username, county.username)
    assert verify_chain()[1] is None


def test_three_different_people_take_the_case_to_paid():
    case = case_in_state(CaseState.PAID, photos=False)
    assert case.completion_appraisal.inspection.inspector == case.team["inspector2"]
    actors = dict(case.events.values_list("data__step", "actor"))
    assert (actors["pass_completion"], actors["pay"]) == (
        case.team["township"].pk,
        case.team["county"].pk,
    )


def test_an_administrator_is_held_to_it_too():
    case = case_in_state(CaseState.WORKS_FINISHED, photos=False)
    admin = case.team["admin"]
    appraised_by(case, admin)
    with pytest.raises(CaseForbidden) as refused:
        act(user=admin, case_id=case.pk, action="pass_completion")
    assert str(refused.value.message) == (
        f"Separation of duties: you ({admin.username}, Administrator) made the completion "
        "appraisal this check is judged on; someone else must take the step “Pass the "
        "completion check”."
    )
    act(user=case.team["township"], case_id=case.pk, action="pass_completion")
    pay(**pay_args(case, admin))  # the administrator appraised; the township passed


def test_who_opened_a_case_may_not_approve_it():
    house = eligible_house()
    team = case_team(house)
    admin = team["admin"]
    appraise(house, team["inspector"], "D")
    subsidy_standard(2026, "rebuild_same_site", house.household.key_group)
    case, _created = case_open(
        user=admin,
        house=house,
        method="rebuild_same_site",
        build_mode="self_built",
        planned_floor_area="50",
        funding_year=2026,
    )
    for action in ("village_review", "notice"):
        case = act(user=admin, case_id=case.pk, action=action)
    RenovationCase.objects.filter(pk=case.pk).update(
        notice_started_at=timezone.now() - datetime.timedelta(days=8)
    )
    act(user=admin, case_id=case.pk, action="township_check")
    message = (
        f"Separation of duties: you ({admin.username}, Administrator) opened this case; "
        "someone else must take the step “County approval”."
    )
    with pytest.raises(CaseForbidden) as refused:
        act(user=admin, case_id=case.pk, action="county_approve")
    assert str(refused.value.message) == message
    [row] = case_batch_act(
        user=admin,
        action="county_approve",
        case_ids=[case.pk],
        request_key="batch-1",
        **CONFIRMED,
    )
    assert (row.done, row.message) == (False, message)
    assert (
        act(user=team["county"], case_id=case.pk, action="county_approve").state
        == CaseState.COUNTY_APPROVED
    )


def test_with_the_setting_off_one_official_may_do_it_all_again(settings):
    settings.ANJU_SEPARATION_OF_DUTIES = False
    case = case_in_state(CaseState.WORKS_FINISHED, photos=False)
    county = case.team["county"]
    appraised_by(case, county)
    act(user=county, case_id=case.pk, action="pass_completion")
    _payment, created = pay(**pay_args(case, county))
    assert created
    assert RenovationCase.objects.get(pk=case.pk).state == CaseState.PAID
    # The works' inspector is still kept from the completion check (DOMAIN.md).
    other = case_in_state(CaseState.WORKS_FINISHED, photos=False)
    appraised_by(other, other.team["inspector"])
    with pytest.raises(CaseRefused, match="supervised the works"):
        act(user=county, case_id=other.pk, action="pass_completion")


def test_available_actions_say_why_separation_of_duties_holds_the_step():
    case = case_in_state(CaseState.WORKS_FINISHED, photos=False)
    county = case.team["county"]
    appraised_by(case, county)
    actions = {a["action"]: a for a in available_actions(user=county, case=case)}
    assert actions["pass_completion"] == {
        "action": "pass_completion",
        "label": "Pass the completion check",
        "allowed": False,
        "reason": appraised_message(county),
        "flags": [],
    }
    assert actions["fail_completion"]["allowed"] is True  # sending back is not a pass
    township = case.team["township"]
    assert {a["action"]: a["allowed"] for a in available_actions(user=township, case=case)}[
        "pass_completion"
    ]


# ---------------------------------------------------------------------------------------
# Repeated request keys


def test_a_repeated_step_key_is_refused_to_another_role_not_answered():
    case = case_in_state(CaseState.APPLIED, photos=False)
    township = case.team["township"]
    act(user=township, case_id=case.pk, action="village_review", request_key="rk-1")
    count = CaseEvent.objects.count()
    with pytest.raises(CaseForbidden) as refused:
        act(user=case.team["auditor"], case_id=case.pk, action="village_review", request_key="rk-1")
    assert str(refused.value.message) == (
        "Your role (Auditor) may not take the step “Village review”."
    )
    # The same role, another person: the key is theirs, not this user's.
    other = UserFactory(role=Role.TOWNSHIP_OFFICIAL, regions=[make_region("520399100")])
    with pytest.raises(IdempotencyConflict) as conflict:
        act(user=other, case_id=case.pk, action="village_review", request_key="rk-1")
    assert str(conflict.value.message) == (
        "The request key rk-1 was already used by another user; a new request needs a new key."
    )
    # Outside the user's regions: not found, as a first request.
    outsider = UserFactory(role=Role.INSPECTOR, regions=[make_region("520399101200")])
    with pytest.raises(Http404):
        act(user=outsider, case_id=case.pk, action="village_review", request_key="rk-1")
    assert CaseEvent.objects.count() == count
    # The one who sent it gets the stored answer.
    again = act(user=township, case_id=case.pk, action="village_review", request_key="rk-1")
    assert again.state == CaseState.VILLAGE_REVIEWED


def test_a_repeated_payment_key_is_refused_to_who_may_not_pay():
    case = case_in_state(CaseState.COMPLETION_PASSED, photos=False)
    county = case.team["county"]
    payment, _created = pay(**pay_args(case, county, amount="100", request_key="pk-1"))
    with pytest.raises(CaseForbidden) as refused:
        pay(**pay_args(case, case.team["township"], amount="100", request_key="pk-1"))
    assert str(refused.value.message) == (
        "Your role (Township official) may not take the step “Record a payment”."
    )
    with pytest.raises(IdempotencyConflict):
        pay(**pay_args(case, county_official(case), amount="100", request_key="pk-1"))
    outsider = UserFactory(role=Role.COUNTY_OFFICIAL, regions=[make_region("520398")])
    with pytest.raises(Http404):
        pay(**pay_args(case, outsider, amount="100", request_key="pk-1"))
    again, created = pay(**pay_args(case, county, amount="100", request_key="pk-1"))
    assert (again.pk, created, Payment.objects.count()) == (payment.pk, False, 1)


def test_a_repeated_open_key_checks_the_role_and_the_household():
    house = eligible_house()
    team = case_team(house)
    other_house = eligible_house(household__village=house.household.village)
    for h in (house, other_house):
        appraise(h, team["inspector"], "D")
    subsidy_standard(2026, "rebuild_same_site", house.household.key_group)
    subsidy_standard(2026, "rebuild_same_site", other_house.household.key_group)
    args = {
        "method": "rebuild_same_site",
        "build_mode": "self_built",
        "planned_floor_area": "50",
        "funding_year": 2026,
        "request_key": "open-k",
    }
    case, created = case_open(user=team["inspector"], house=house, **args)
    assert created
    with pytest.raises(IdempotencyConflict) as conflict:
        case_open(user=team["inspector"], house=other_house, **args)
    assert str(conflict.value.message) == (
        f"The request key open-k already opened case no. {case.pk} for another house "
        f"(household {house.household.archive_no}); a new request needs a new key."
    )
    assert conflict.value.status == 409
    with pytest.raises(CaseForbidden) as refused:
        case_open(user=team["county"], house=house, **args)
    assert str(refused.value.message) == (
        "Your role (County official) may not open a renovation case."
    )
    with pytest.raises(IdempotencyConflict):
        case_open(user=team["township"], house=house, **args)
    assert RenovationCase.objects.count() == 1
    again, created = case_open(user=team["inspector"], house=house, **args)
    assert (again.pk, created) == (case.pk, False)


# ---------------------------------------------------------------------------------------
# API


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_over_the_api_the_appraiser_may_not_pass_nor_the_passer_pay():
    case = case_in_state(CaseState.WORKS_FINISHED, photos=False)
    county, county2 = case.team["county"], county_official(case)
    appraised_by(case, county)
    url = f"/api/cases/{case.pk}/act/"
    response = api(county).post(
        url, {**CONFIRMED, "action": "pass_completion", "request_key": "api-pc-1"}, format="json"
    )
    assert response.status_code == 403
    assert response.json() == {"detail": appraised_message(county)}
    body = api(county2).get(f"/api/cases/{case.pk}/").json()
    assert {a["action"]: a["allowed"] for a in body["available_actions"]}["pass_completion"]
    response = api(county2).post(
        url, {**CONFIRMED, "action": "pass_completion", "request_key": "api-pc-2"}, format="json"
    )
    assert response.status_code == 200
    pay = {
        **CONFIRMED,
        "amount": "20000",
        "paid_on": timezone.localdate().isoformat(),
        "reference": "TR-1",
        "request_key": "api-pay-1",
    }
    response = api(county2).post(f"/api/cases/{case.pk}/payments/", pay, format="json")
    assert response.status_code == 403
    assert response.json() == {"detail": passed_message(county2)}
    assert Payment.objects.count() == 0
    response = api(county).post(f"/api/cases/{case.pk}/payments/", pay, format="json")
    assert response.status_code == 201


def test_over_the_api_a_replayed_key_is_refused_to_another_role_and_household():
    case = case_in_state(CaseState.TOWNSHIP_CHECKED, photos=False)
    url = f"/api/cases/{case.pk}/act/"
    body = {**CONFIRMED, "action": "county_approve", "request_key": "api-k-1"}
    assert api(case.team["county"]).post(url, body, format="json").status_code == 200
    replay = api(case.team["township"]).post(url, body, format="json")
    assert replay.status_code == 403
    assert replay.json() == {
        "detail": "Your role (Township official) may not take the step “County approval”."
    }

    house = eligible_house(household__village=case.house.household.village)
    appraise(house, case.team["inspector"], "D")
    subsidy_standard(2026, "rebuild_same_site", house.household.key_group)
    open_body = {
        "household": house.household.pk,
        "method": "rebuild_same_site",
        "build_mode": "self_built",
        "planned_floor_area": "50",
        "funding_year": 2026,
        "request_key": "api-open-1",
    }
    client = api(case.team["inspector"])
    assert client.post("/api/cases/", open_body, format="json").status_code == 201
    other = eligible_house(household__village=case.house.household.village)
    appraise(other, case.team["inspector"], "D")
    response = client.post(
        "/api/cases/", {**open_body, "household": other.household.pk}, format="json"
    )
    assert response.status_code == 409
    assert re.fullmatch(
        r"The request key api-open-1 already opened case no\. \d+ for another house "
        rf"\(household {house.household.archive_no}\); a new request needs a new key\.",
        response.json()["detail"],
    )
    assert not RenovationCase.objects.filter(house=other).exists()


# ---------------------------------------------------------------------------------------
# Pages


def test_the_case_page_offers_no_step_separation_of_duties_forbids_and_says_why(client):
    case = case_in_state(CaseState.WORKS_FINISHED, photos=False)
    county, county2 = case.team["county"], county_official(case)
    appraised_by(case, county)
    client.force_login(county)
    response = client.get(reverse("cases:case_detail", args=[case.pk]))
    assert action_forms(response) == ["fail_completion", "withdraw"]
    assert f"Pass the completion check : {appraised_message(county)}" in text(response)

    client.force_login(county2)
    assert "pass_completion" in action_forms(
        client.get(reverse("cases:case_detail", args=[case.pk]))
    )
    client.post(
        reverse("cases:case_act", args=[case.pk]),
        {**CONFIRMED, "action": "pass_completion", "request_key": "page-pc-1"},
    )
    response = client.get(reverse("cases:case_detail", args=[case.pk]))
    assert 'name="amount"' not in response.content.decode()
    assert f"Record a payment : {passed_message(county2)}" in text(response)
    refused = client.post(
        reverse("cases:case_pay", args=[case.pk]),
        {
            **CONFIRMED,
            "amount": "1000",
            "paid_on": timezone.localdate().isoformat(),
            "reference": "R1",
        },
    )
    assert refused.status_code == 403
    assert passed_message(county2) in text(refused)
    assert Payment.objects.count() == 0

    client.force_login(county)
    response = client.get(reverse("cases:case_detail", args=[case.pk]))
    assert 'name="amount"' in response.content.decode()
    assert "Separation of duties" not in text(response)
    assert RenovationCase.objects.get(pk=case.pk).paid_total == Decimal("0")


def test_on_the_pages_a_replayed_key_is_refused_to_another_role_and_another_user(client):
    case = case_in_state(CaseState.COMPLETION_PASSED, photos=False)
    county = case.team["county"]
    url = reverse("cases:case_pay", args=[case.pk])
    form = {
        **CONFIRMED,
        "amount": "100",
        "paid_on": timezone.localdate().isoformat(),
        "reference": "R1",
        "request_key": "page-pay-1",
    }
    client.force_login(county)
    assert client.post(url, form).status_code == 302

    client.force_login(case.team["township"])
    refused = client.post(url, form)
    assert refused.status_code == 403
    assert "Your role (Township official) may not take the step “Record a payment”." in text(
        refused
    )
    client.force_login(county_official(case))
    conflict = client.post(url, form)
    assert conflict.status_code == 409
    assert (
        "The request key page-pay-1 was already used by another user; a new request needs a "
        "new key." in text(conflict)
    )
    assert Payment.objects.count() == 1
