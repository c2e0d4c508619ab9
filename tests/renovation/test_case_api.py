"""/api/cases/: list, one case, open, every step, payments; idempotent by request key."""

import datetime
import threading

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from audit.chain import verify_chain
from inspections.models import Inspection, InspectionKind
from renovation.models import CaseEvent, CaseState, Payment, RenovationCase
from tests.factories import UserFactory, make_region
from tests.renovation.factories import (
    CONFIRMED,
    OPINION,
    CaseFactory,
    appraise,
    backdate_notice,
    case_in_state,
    case_team,
    eligible_house,
    subsidy_standard,
)

LIST = "/api/cases/"


def detail(case) -> str:
    return f"/api/cases/{case.pk}/"


def act(case) -> str:
    return f"/api/cases/{case.pk}/act/"


def pay(case) -> str:
    return f"/api/cases/{case.pk}/payments/"


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def state_of(case) -> str:
    return RenovationCase.objects.get(pk=case.pk).state


# ---------------------------------------------------------------------------------------
# Permissions


@pytest.mark.django_db
def test_anonymous_clients_get_401_and_nothing_changes():
    case = CaseFactory()
    client = api()
    for response in [
        client.get(LIST),
        client.get(detail(case)),
        client.post(
            act(case), {**CONFIRMED, "action": "village_review", "request_key": "k"}, format="json"
        ),
        client.post(LIST, {}, format="json"),
    ]:
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Token"
    assert state_of(case) == CaseState.APPLIED


@pytest.mark.django_db
def test_a_case_in_another_region_is_404_and_not_listed():
    here = CaseFactory(house__household__village=make_region("520399100200"))
    there = CaseFactory(house__household__village=make_region("520399101200"))
    client = api(UserFactory(role=Role.TOWNSHIP_OFFICIAL, regions=[make_region("520399100")]))

    assert [row["id"] for row in client.get(LIST).json()["results"]] == [here.pk]
    assert client.get(detail(there)).status_code == 404
    response = client.post(
        act(there), {**CONFIRMED, "action": "village_review", "request_key": "k-404"}, format="json"
    )
    assert response.status_code == 404
    response = client.post(
        pay(there),
        {
            **CONFIRMED,
            "amount": "1",
            "paid_on": "2026-01-01",
            "reference": "R",
            "request_key": "k-404p",
        },
        format="json",
    )
    assert response.status_code == 404
    assert state_of(there) == CaseState.APPLIED
    assert CaseEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_step_of_another_role_is_403_with_the_reason_and_changes_nothing():
    case = case_in_state(CaseState.TOWNSHIP_CHECKED, photos=False)
    events = CaseEvent.objects.count()
    response = api(case.team["auditor"]).post(
        act(case), {**CONFIRMED, "action": "county_approve", "request_key": "k-403"}, format="json"
    )
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Your role (Auditor) may not take the step “County approval”."
    }
    assert state_of(case) == CaseState.TOWNSHIP_CHECKED
    assert CaseEvent.objects.count() == events


# ---------------------------------------------------------------------------------------
# Shapes


@pytest.mark.django_db
def test_the_list_shape_and_filters():
    t1 = make_region("520399100200")
    applied = CaseFactory(house__household__village=t1)
    overdue = CaseFactory(
        house__household__village=make_region("520399101200"),
        state=CaseState.COMPLETION_PASSED,
        completion_passed_at=timezone.now() - datetime.timedelta(days=40),
        funding_year=2025,
    )
    client = api(UserFactory(role=Role.COUNTY_OFFICIAL, regions=[make_region("520399")]))

    body = client.get(LIST).json()
    assert body["count"] == 2
    row = next(r for r in body["results"] if r["id"] == applied.pk)
    household = applied.house.household
    assert row == {
        "id": applied.pk,
        "state": "applied",
        "household": {
            "id": household.pk,
            "archive_no": household.archive_no,
            "head_name": household.head_name,
            "village_code": "520399100200",
            "village_name": household.village.name,
        },
        "house": applied.house.pk,
        "entry_grade": "D",
        "method": "rebuild_same_site",
        "build_mode": "self_built",
        "household_size": 2,
        "planned_floor_area": "50.00",
        "subsidy_amount": "20000.00",
        "subsidy_override_reason": "",
        "paid_total": "0.00",
        "funding_year": 2026,
        "batch": "",
        "overdue": False,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "url": f"http://testserver/cases/{applied.pk}/",
    }

    def ids(**query):
        response = client.get(LIST, query)
        assert response.status_code == 200, response.json()
        return [r["id"] for r in response.json()["results"]]

    assert ids(state="completion_passed") == [overdue.pk]
    assert ids(township="520399100") == [applied.pk]
    assert ids(funding_year=2025) == [overdue.pk]
    assert ids(overdue="true") == [overdue.pk]
    bad = client.get(LIST, {"state": "lost", "township": "52a", "funding_year": "x"})
    assert bad.status_code == 400
    assert bad.json() == {
        "state": ['"lost" is not a valid choice.'],
        "township": ["A region code has 2 to 12 digits."],
        "funding_year": ["A valid integer is required."],
    }


@pytest.mark.django_db
def test_one_case_comes_with_its_timeline_evidence_and_available_actions():
    case = case_in_state(CaseState.VILLAGE_REVIEWED, photos=False)
    township = case.team["township"]

    response = api(township).get(detail(case))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "id", "state", "household", "house", "entry_grade", "method", "build_mode",
        "household_size", "planned_floor_area", "subsidy_amount", "subsidy_override_reason",
        "paid_total", "funding_year", "batch", "overdue", "created_at", "updated_at", "url",
        "notice_started_at", "works_inspector", "completion_inspection",
        "completion_passed_at", "closing_reason", "payments", "timeline", "evidence",
        "available_actions",
    }  # fmt: skip
    events = list(CaseEvent.objects.filter(case=case).order_by("id"))
    inspector = case.team["inspector"]
    assert [
        (e["id"], e["kind"], e["from_state"], e["to_state"], e["actor"]["username"])
        for e in body["timeline"]
    ] == [
        (events[0].pk, "opened", "", "applied", inspector.username),
        (events[1].pk, "transition", "applied", "village_reviewed", inspector.username),
    ]
    assert body["timeline"][1]["data"] == {
        "step": "village_review",
        "opinion": OPINION,
        "confirmed": True,
    }
    assert (body["timeline"][0]["opinion"], body["timeline"][1]["opinion"]) == ("", OPINION)
    assert body["timeline"][1]["hash"] == events[1].hash
    assert body["evidence"] == {
        "before": {"present": [], "missing": [], "due": True, "flagged": []},
        "after": {"present": [], "missing": [], "due": False, "flagged": []},
        "completion": {
            "inspection": None,
            "grade": None,
            "inspector": None,
            "works_inspector": None,
            "different_person": None,
            "acceptable": False,
            "flagged": [],
        },
    }
    assert body["available_actions"] == [
        {
            "action": "notice",
            "label": "Start the public notice",
            "allowed": True,
            "reason": "",
            "flags": [],
        },
        {"action": "reject", "label": "Reject", "allowed": True, "reason": "", "flags": []},
        {"action": "withdraw", "label": "Withdraw", "allowed": True, "reason": "", "flags": []},
    ]
    assert (body["payments"], body["works_inspector"], body["completion_inspection"]) == (
        [],
        None,
        None,
    )


# ---------------------------------------------------------------------------------------
# Steps


@pytest.mark.django_db
def test_a_step_answers_the_case_and_a_repeat_of_its_key_writes_nothing():
    case = case_in_state(CaseState.APPLIED, photos=False)
    client = api(case.team["township"])
    body = {**CONFIRMED, "action": "village_review", "request_key": "api-review-1"}

    first = client.post(act(case), body, format="json")
    events = CaseEvent.objects.count()
    again = client.post(act(case), body, format="json")

    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["state"] == "village_reviewed"
    assert again.json() == first.json()
    assert CaseEvent.objects.count() == events
    assert CaseEvent.objects.filter(request_key="api-review-1").count() == 1

    reused = client.post(
        act(case), {**CONFIRMED, "action": "notice", "request_key": "api-review-1"}, format="json"
    )
    assert reused.status_code == 409
    assert reused.json() == {
        "detail": "The request key api-review-1 was already used for another step or case; "
        "a new request needs a new key."
    }
    assert state_of(case) == CaseState.VILLAGE_REVIEWED


@pytest.mark.django_db
def test_a_step_not_yet_possible_is_400_and_from_the_wrong_state_409():
    case = case_in_state(CaseState.NOTICED, photos=False)
    backdate_notice(case, days=3)
    client = api(case.team["township"])

    early = client.post(
        act(case), {**CONFIRMED, "action": "township_check", "request_key": "e1"}, format="json"
    )
    assert early.status_code == 400
    assert early.json()["detail"].startswith("The public notice started on ")
    ends = timezone.localtime(case.notice_started_at + datetime.timedelta(days=7)).date()
    assert early.json()["detail"].endswith(
        f"and must stand 7 days: the township may check it from {ends}."
    )
    wrong = client.post(
        act(case), {**CONFIRMED, "action": "notice", "request_key": "e2"}, format="json"
    )
    assert wrong.status_code == 409
    assert wrong.json() == {
        "detail": f"Case {case.pk} is Publicly noticed; “Start the public notice” is possible "
        "only from: Reviewed by the village."
    }
    assert state_of(case) == CaseState.NOTICED
    assert not CaseEvent.objects.filter(request_key__in=["e1", "e2"]).exists()


@pytest.mark.django_db
def test_bad_step_input_names_the_field():
    case = case_in_state(CaseState.WORKS_FINISHED, photos=False)
    client = api(case.team["county"])
    response = client.post(
        act(case),
        {**CONFIRMED, "action": "fly", "inspection": "not-a-uuid"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "action": ['"fly" is not a valid choice.'],
        "inspection": ["Must be a valid UUID."],
        "request_key": ["This field is required."],
    }
    unknown = client.post(
        act(case),
        {
            **CONFIRMED,
            "action": "pass_completion",
            "inspection": "00000000-0000-0000-0000-000000000000",
            "request_key": "k-unknown",
        },
        format="json",
    )
    assert unknown.status_code == 400
    assert unknown.json() == {"inspection": ["No inspection with this client UUID among yours."]}
    assert state_of(case) == CaseState.WORKS_FINISHED


@pytest.mark.django_db
def test_the_completion_check_takes_a_completion_visit_by_its_client_uuid():
    case = case_in_state(CaseState.WORKS_FINISHED, photos=False)
    visit = Inspection.objects.get(house=case.house, kind=InspectionKind.COMPLETION)
    response = api(case.team["county"]).post(
        act(case),
        {
            **CONFIRMED,
            "action": "pass_completion",
            "inspection": str(visit.client_uuid),
            "request_key": "pc",
        },
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["completion_inspection"]) == (
        "completion_passed",
        str(visit.client_uuid),
    )
    assert body["evidence"]["completion"]["inspection"] == str(visit.client_uuid)
    assert body["evidence"]["completion"]["grade"] == "A"
    assert body["evidence"]["completion"]["different_person"] is True


# ---------------------------------------------------------------------------------------
# Opening and payments


@pytest.mark.django_db
def test_opening_a_case_is_201_then_200_for_a_repeat():
    house = eligible_house(household_size=2)
    team = case_team(house)
    appraise(house, team["inspector"], "D")
    subsidy_standard(2026, "rebuild_same_site", house.household.key_group)
    body = {
        "household": house.household.pk,
        "method": "rebuild_same_site",
        "build_mode": "government",
        "planned_floor_area": "55.5",
        "funding_year": 2026,
        "request_key": "open-1",
    }
    client = api(team["inspector"])

    first = client.post(LIST, body, format="json")
    again = client.post(LIST, body, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    created = first.json()
    assert (created["state"], created["subsidy_amount"], created["planned_floor_area"]) == (
        "applied",
        "20000.00",
        "55.50",
    )
    assert RenovationCase.objects.count() == 1

    too_big = client.post(
        LIST, {**body, "planned_floor_area": "90", "request_key": "open-2"}, format="json"
    )
    assert too_big.status_code == 400
    assert too_big.json() == {
        "detail": f"Household {house.household.archive_no} already has an open case (no. "
        f"{created['id']}, Applied); close it before opening another."
    }


@pytest.mark.django_db
def test_opening_is_refused_by_role_and_out_of_scope_households_are_unknown():
    house = eligible_house()
    team = case_team(house)
    appraise(house, team["inspector"], "D")
    body = {
        "household": house.household.pk,
        "method": "rebuild_same_site",
        "build_mode": "self_built",
        "planned_floor_area": "50",
        "funding_year": 2026,
        "request_key": "open-x",
    }
    forbidden = api(team["auditor"]).post(LIST, body, format="json")
    assert forbidden.status_code == 403
    assert forbidden.json() == {"detail": "Your role (Auditor) may not open a renovation case."}

    outsider = UserFactory(role=Role.INSPECTOR, regions=[make_region("520399101200")])
    unknown = api(outsider).post(LIST, body, format="json")
    assert unknown.status_code == 400
    assert unknown.json() == {"household": [f"No household {house.household.pk} among yours."]}
    assert RenovationCase.objects.count() == 0


@pytest.mark.django_db
def test_payments_are_idempotent_and_never_exceed_the_subsidy():
    case = case_in_state(CaseState.COMPLETION_PASSED, photos=False)
    client = api(case.team["county"])
    today = timezone.localdate().isoformat()
    body = {
        **CONFIRMED,
        "amount": "12000",
        "paid_on": today,
        "reference": "TR-9",
        "request_key": "pay-1",
    }

    first = client.post(pay(case), body, format="json")
    again = client.post(pay(case), body, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    county = case.team["county"]
    assert first.json() == {
        "id": Payment.objects.get().pk,
        "case": case.pk,
        "amount": "12000.00",
        "paid_on": today,
        "reference": "TR-9",
        "recorded_by": {"id": county.pk, "username": county.username, "name": ""},
        "created_at": first.json()["created_at"],
    }
    assert Payment.objects.count() == 1

    over = client.post(
        pay(case),
        {
            **CONFIRMED,
            "amount": "8000.01",
            "paid_on": today,
            "reference": "TR-10",
            "request_key": "pay-2",
        },
        format="json",
    )
    assert over.status_code == 400
    assert over.json() == {
        "detail": "A payment of 8,000.01 yuan would bring the total to 20,000.01 yuan, above "
        "the subsidy of 20,000 yuan; at most 8,000 yuan remains to pay."
    }
    rest = client.post(
        pay(case),
        {
            **CONFIRMED,
            "amount": "8000",
            "paid_on": today,
            "reference": "TR-10",
            "request_key": "pay-3",
        },
        format="json",
    )
    assert rest.status_code == 201
    detail_body = client.get(detail(case)).json()
    assert (detail_body["state"], detail_body["paid_total"]) == ("paid", "20000.00")
    assert [p["reference"] for p in detail_body["payments"]] == ["TR-9", "TR-10"]
    assert [e["data"].get("amount") for e in detail_body["timeline"] if e["kind"] == "payment"] == [
        "12000.00",
        "8000.00",
    ]

    township = api(case.team["township"]).post(
        pay(case),
        {**CONFIRMED, "amount": "1", "paid_on": today, "reference": "X", "request_key": "pay-4"},
        format="json",
    )
    assert township.status_code == 403


@pytest.mark.django_db
def test_bad_payment_input_names_the_field():
    case = case_in_state(CaseState.COMPLETION_PASSED, photos=False)
    response = api(case.team["county"]).post(
        pay(case),
        {**CONFIRMED, "amount": "abc", "paid_on": "31/12/2026", "reference": ""},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "amount": ["A valid number is required."],
        "paid_on": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."],
        "reference": ["This field may not be blank."],
        "request_key": ["This field is required."],
    }
    assert Payment.objects.count() == 0


# ---------------------------------------------------------------------------------------
# Two officials at once (PostGIS: real row locks)


@pytest.mark.postgis_only
@pytest.mark.django_db(transaction=True)
def test_two_officials_approving_over_the_api_get_one_200_and_one_409():
    case = case_in_state(CaseState.TOWNSHIP_CHECKED, photos=False)
    other = UserFactory(role=Role.COUNTY_OFFICIAL, regions=[make_region("520399")])
    clients = [api(case.team["county"]), api(other)]
    barrier = threading.Barrier(2)
    answers = [None, None]

    def approve(i):
        try:
            barrier.wait()
            answers[i] = clients[i].post(
                act(case),
                {**CONFIRMED, "action": "county_approve", "request_key": f"race-{i}"},
                format="json",
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert sorted(a.status_code for a in answers) == [200, 409]
    lost = next(a for a in answers if a.status_code == 409)
    assert lost.json() == {
        "detail": f"Case {case.pk} is Approved by the county; “County approval” is possible "
        "only from: Checked by the township."
    }
    assert state_of(case) == CaseState.COUNTY_APPROVED
    assert CaseEvent.objects.filter(case=case, to_state=CaseState.COUNTY_APPROVED).count() == 1
    assert verify_chain()[1] is None


# ---------------------------------------------------------------------------------------
# What one step costs


@pytest.mark.postgis_only
@pytest.mark.django_db
def test_a_county_approval_over_the_api_costs_at_most_17_queries(django_assert_max_num_queries):
    """Fetch and authorize once, lock (with the time of the case's latest event), check
    (the entry appraisal's flagged photos too), write (with its history row and map
    refresh), append the event, answer with the timeline and checklist (its flagged photos
    in one query): the case is read once, its events once, and no query guesses the
    answer's status before the service runs."""
    case = case_in_state(CaseState.TOWNSHIP_CHECKED, photos=False)
    client = api(case.team["county"])
    with django_assert_max_num_queries(17):
        response = client.post(
            act(case),
            {**CONFIRMED, "action": "county_approve", "request_key": "cost-1"},
            format="json",
        )
    assert response.status_code == 200
    assert response.json()["state"] == CaseState.COUNTY_APPROVED
    assert [e["to_state"] for e in response.json()["timeline"]][-1] == CaseState.COUNTY_APPROVED
    assert verify_chain()[1] is None
