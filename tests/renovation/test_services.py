import datetime
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.http import Http404
from django.utils import timezone

from accounts.models import Role
from audit.chain import verify_chain
from housing.models import RenovationStatus
from inspections.errors import IdempotencyConflict
from inspections.models import InspectionKind, PhotoAngle, PhotoStage
from renovation.errors import CaseForbidden, CaseRefused, CaseStateConflict
from renovation.models import CaseEvent, CaseEventKind, CaseState, Payment, RenovationCase
from renovation.selectors import available_actions, case_evidence
from renovation.services import case_open
from renovation.workflow import STEPS
from tests.factories import UserFactory, make_region
from tests.renovation.factories import (
    act,
    appraise,
    backdate_notice,
    case_in_state,
    case_team,
    eligible_house,
    pay,
    photograph,
    subsidy_standard,
)

ROLE_KEYS = ["inspector", "township", "county", "auditor", "admin"]
ROLE_LABEL = {
    "inspector": "Inspector",
    "township": "Township official",
    "county": "County official",
    "auditor": "Auditor",
}
# action -> (a state it starts from, team members whose role may take it)
ALLOWED = {
    "village_review": (CaseState.APPLIED, {"inspector", "township", "admin"}),
    "notice": (CaseState.VILLAGE_REVIEWED, {"township", "admin"}),
    "township_check": (CaseState.NOTICED, {"township", "admin"}),
    "county_approve": (CaseState.TOWNSHIP_CHECKED, {"county", "admin"}),
    "start_works": (CaseState.COUNTY_APPROVED, {"inspector", "township", "admin"}),
    "finish_works": (CaseState.WORKS_STARTED, {"inspector", "township", "admin"}),
    "pass_completion": (CaseState.WORKS_FINISHED, {"township", "county", "admin"}),
    "fail_completion": (CaseState.WORKS_FINISHED, {"township", "county", "admin"}),
    "reject": (CaseState.TOWNSHIP_CHECKED, {"township", "county", "admin"}),
    "withdraw": (CaseState.WORKS_STARTED, {"township", "county", "admin"}),
}
TARGET = {
    "village_review": CaseState.VILLAGE_REVIEWED,
    "notice": CaseState.NOTICED,
    "township_check": CaseState.TOWNSHIP_CHECKED,
    "county_approve": CaseState.COUNTY_APPROVED,
    "start_works": CaseState.WORKS_STARTED,
    "finish_works": CaseState.WORKS_FINISHED,
    "pass_completion": CaseState.COMPLETION_PASSED,
    "fail_completion": CaseState.WORKS_STARTED,
    "reject": CaseState.REJECTED,
    "withdraw": CaseState.WITHDRAWN,
}


def snapshot(case):
    """Everything a step may change: a refused step must leave all of it as it was."""
    case = RenovationCase.objects.select_related("house").get(pk=case.pk)
    return {
        "case": {f.attname: getattr(case, f.attname) for f in RenovationCase._meta.concrete_fields},
        "house_status": case.house.renovation_status,
        "house_grade": case.house.safety_grade,
        "events": list(CaseEvent.objects.order_by("id").values_list("id", "hash")),
        "payments": list(Payment.objects.values_list("id", flat=True)),
    }


def prepare_step(case, action):
    """Add the evidence `action` needs that case_in_state adds only when it takes the step."""
    if action == "start_works":
        photograph(case.entry_appraisal.inspection, PhotoStage.BEFORE, ["front", "roof"])
    if action == "finish_works":
        completion = appraise(
            case.house, case.team["inspector2"], "A", kind=InspectionKind.COMPLETION
        )
        photograph(completion.inspection, PhotoStage.AFTER, ["front", "roof"], seed=40)


def reason_for(action):
    return (
        "Required fixes: roof."
        if action in ("fail_completion",)
        else ("Reason given." if action in ("reject", "withdraw") else "")
    )


# ---------------------------------------------------------------------------------------
# Opening a case


@pytest.mark.django_db
def test_open_takes_the_latest_appraisal_members_and_standard_and_plans_the_house():
    house = eligible_house(household_size=3)
    team = case_team(house)
    appraise(house, team["inspector"], "D")
    standard = subsidy_standard(2026, "rebuild_scattered", house.household.key_group)
    case, _created = case_open(
        user=team["inspector"],
        house=house,
        method="rebuild_scattered",
        build_mode="government",
        planned_floor_area="58.5",
        funding_year=2026,
        batch=" 2026-1 ",
    )
    case.refresh_from_db()
    house.refresh_from_db()
    assert (case.state, case.entry_grade, case.household_size) == ("applied", "D", 3)
    assert case.entry_appraisal.inspection.house == house
    assert (case.subsidy_standard, case.subsidy_amount) == (standard, Decimal("20000.00"))
    assert (case.subsidy_override_reason, case.batch) == ("", "2026-1")
    assert case.planned_floor_area == Decimal("58.50")
    assert house.renovation_status == RenovationStatus.PLANNED
    event = case.events.get()
    assert (event.kind, event.from_state, event.to_state) == ("opened", "", "applied")
    assert event.actor == team["inspector"]
    assert event.data["subsidy_amount"] == "20000.00"
    assert verify_chain() == (1, None)


@pytest.fixture
def ready(db):
    """A grade-D house of 2 people in village 1 with a standard, and its team."""
    house = eligible_house(household_size=2)
    team = case_team(house)
    appraise(house, team["inspector"], "D")
    subsidy_standard(2026, "rebuild_same_site", house.household.key_group)
    return house, team


def open_args(house, **kw):
    args = {
        "house": house,
        "method": "rebuild_same_site",
        "build_mode": "self_built",
        "planned_floor_area": Decimal("50"),
        "funding_year": 2026,
    }
    args.update(kw)
    return args


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("grade", "kw", "message"),
    [
        (
            "B",
            {},
            "The house's latest appraisal ({date}) grades it B; only a house graded C or D "
            "may be renovated.",
        ),
        (
            "D",
            {"method": "repair"},
            "“Repair and reinforce” does not fit a house graded D; "
            "use: Rebuild on the same site, Rebuild elsewhere, scattered, Rebuild elsewhere, "
            "grouped.",
        ),
        (
            "C",
            {},
            "“Rebuild on the same site” does not fit a house graded C; use: Repair and reinforce.",
        ),
        ("D", {"planned_floor_area": "72"}, "72 m² for 2 people is above 60 m²."),
        (
            "D",
            {"subsidy_amount": "25000"},
            "The standard subsidy is 20,000 yuan; write why this case gets 25,000 yuan instead.",
        ),
        (
            "D",
            {"funding_year": 2020},
            "There is no subsidy standard for 2020 and “Rebuild on the same site”; enter the "
            "amount and why.",
        ),
        (
            "D",
            {"method": "rebuild"},
            "“rebuild” is not a renovation method; use one of: "
            "repair, rebuild_same_site, rebuild_scattered, rebuild_grouped.",
        ),
    ],
)
def test_open_is_refused_with_the_reason_and_stores_nothing(ready, grade, kw, message):
    house, team = ready
    if grade != "D":
        appraise(
            house, team["inspector"], grade, when=timezone.now() - datetime.timedelta(minutes=1)
        )
    with pytest.raises(CaseRefused) as refused:
        case_open(user=team["inspector"], **open_args(house, **kw))
    date = timezone.localdate().isoformat()
    assert str(refused.value.message) == message.format(date=date)
    assert refused.value.status == 400
    assert not RenovationCase.objects.exists()
    assert not CaseEvent.objects.exists()
    house.refresh_from_db()
    assert house.renovation_status == RenovationStatus.NONE


@pytest.mark.django_db
def test_open_without_an_appraisal_is_refused(db):
    house = eligible_house()
    team = case_team(house)
    with pytest.raises(CaseRefused) as refused:
        case_open(user=team["inspector"], **open_args(house))
    assert str(refused.value.message) == (
        "The house has no appraisal; a case needs an appraisal grading it C or D."
    )


@pytest.mark.django_db
def test_subsidy_override_needs_a_reason_and_keeps_it(ready):
    house, team = ready
    case, _created = case_open(
        user=team["township"],
        **open_args(house, subsidy_amount="15000.50"),
        subsidy_override_reason="  Part funded by the village.  ",
    )
    assert case.subsidy_amount == Decimal("15000.50")
    assert case.subsidy_override_reason == "Part funded by the village."
    assert case.events.get().reason == "Part funded by the village."


@pytest.mark.django_db
def test_subsidy_equal_to_the_standard_needs_no_reason(ready):
    house, team = ready
    case, _created = case_open(user=team["inspector"], **open_args(house, subsidy_amount="20000"))
    assert (case.subsidy_amount, case.subsidy_override_reason) == (Decimal("20000"), "")


@pytest.mark.django_db
def test_one_open_case_per_house(ready):
    house, team = ready
    first, _created = case_open(user=team["inspector"], **open_args(house))
    with pytest.raises(CaseRefused) as refused:
        case_open(user=team["inspector"], **open_args(house))
    assert str(refused.value.message) == (
        f"Household {house.household.archive_no} already has an open case "
        f"(no. {first.pk}, Applied); close it before opening another."
    )
    act(user=team["township"], case_id=first.pk, action="withdraw", reason="Moved away.")
    second, _created = case_open(user=team["inspector"], **open_args(house))
    assert second.pk != first.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "message"),
    [
        ("county", "Your role (County official) may not open a renovation case."),
        ("auditor", "Your role (Auditor) may not open a renovation case."),
    ],
)
def test_open_is_forbidden_to_other_roles(ready, who, message):
    house, team = ready
    with pytest.raises(CaseForbidden) as forbidden:
        case_open(user=team[who], **open_args(house))
    assert (str(forbidden.value.message), forbidden.value.status) == (message, 403)
    assert not RenovationCase.objects.exists()


@pytest.mark.django_db
def test_open_outside_the_users_regions_is_not_found(ready):
    house, _team = ready
    stranger = UserFactory(role=Role.INSPECTOR, regions=[make_region("520399101200")])
    with pytest.raises(Http404):
        case_open(user=stranger, **open_args(house))


# ---------------------------------------------------------------------------------------
# Each step: allowed and refused per role and per state


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "who"),
    [(action, who) for action, (_s, allowed) in ALLOWED.items() for who in sorted(allowed)],
)
def test_each_step_is_allowed_to_its_roles(action, who):
    state, _allowed = ALLOWED[action]
    case = case_in_state(state)
    if action == "township_check":
        backdate_notice(case)
    prepare_step(case, action)
    # The test photos' flags are acknowledged with the step (one event each): one
    # transition besides them.
    steps = CaseEvent.objects.exclude(kind=CaseEventKind.ACKNOWLEDGE)
    before = steps.count()
    user = case.team[who]
    done = act(user=user, case_id=case.pk, action=action, reason=reason_for(action))
    assert done.state == TARGET[action]
    event = CaseEvent.objects.latest("id")
    assert steps.count() == before + 1
    assert (event.case_id, event.kind, event.from_state, event.to_state) == (
        case.pk,
        CaseEventKind.TRANSITION,
        state,
        TARGET[action],
    )
    assert (event.actor, event.reason) == (user, reason_for(action))
    assert verify_chain()[1] is None


@pytest.mark.django_db
@pytest.mark.parametrize("action", list(ALLOWED))
def test_each_step_is_forbidden_to_other_roles_and_changes_nothing(action):
    state, allowed = ALLOWED[action]
    case = case_in_state(state)
    prepare_step(case, action)
    before = snapshot(case)
    for who in sorted(set(ROLE_KEYS) - allowed):
        with pytest.raises(CaseForbidden) as forbidden:
            act(user=case.team[who], case_id=case.pk, action=action, reason="Because.")
        assert str(forbidden.value.message) == (
            f"Your role ({ROLE_LABEL[who]}) may not take the step “{STEPS[action].label}”."
        )
        assert snapshot(case) == before


@pytest.mark.django_db
def test_a_step_from_the_wrong_state_is_a_conflict_and_changes_nothing():
    case = case_in_state(CaseState.VILLAGE_REVIEWED)
    before = snapshot(case)
    admin = case.team["admin"]
    for action in ALLOWED:
        if CaseState.VILLAGE_REVIEWED in STEPS[action].from_states:
            continue
        with pytest.raises(CaseStateConflict) as conflict:
            act(user=admin, case_id=case.pk, action=action, reason="Because.")
        assert conflict.value.status == 409
        assert snapshot(case) == before
    with pytest.raises(CaseStateConflict) as conflict:
        act(user=admin, case_id=case.pk, action="county_approve")
    assert str(conflict.value.message) == (
        f"Case {case.pk} is Reviewed by the village; “County approval” is possible only "
        "from: Checked by the township."
    )


@pytest.mark.django_db
@pytest.mark.parametrize("state", [CaseState.PAID, CaseState.REJECTED, CaseState.WITHDRAWN])
def test_closed_cases_take_no_step(state):
    case = case_in_state(state, photos=False)
    before = snapshot(case)
    for action in ALLOWED:
        with pytest.raises(CaseStateConflict):
            act(user=case.team["admin"], case_id=case.pk, action=action, reason="R.")
    assert snapshot(case) == before
    assert available_actions(user=case.team["admin"], case=case) == []


@pytest.mark.django_db
def test_reject_only_before_county_approval():
    case = case_in_state(CaseState.COUNTY_APPROVED, photos=False)
    with pytest.raises(CaseStateConflict) as conflict:
        act(user=case.team["county"], case_id=case.pk, action="reject", reason="No.")
    assert str(conflict.value.message) == (
        f"Case {case.pk} is Approved by the county; “Reject” is possible only from: Applied, "
        "Reviewed by the village, Publicly noticed, Checked by the township."
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("reject", "Write the reason."),
        ("withdraw", "Write the reason."),
    ],
)
def test_reject_and_withdraw_need_a_reason(action, message):
    case = case_in_state(CaseState.APPLIED, photos=False)
    before = snapshot(case)
    with pytest.raises(CaseRefused) as refused:
        act(user=case.team["township"], case_id=case.pk, action=action, reason="  ")
    assert str(refused.value.message) == message
    assert snapshot(case) == before


@pytest.mark.django_db
def test_reject_closes_the_case_with_its_reason_and_frees_the_house():
    case = case_in_state(CaseState.NOTICED, photos=False)
    done = act(user=case.team["county"], case_id=case.pk, action="reject", reason=" Second house. ")
    done.house.refresh_from_db()
    assert (done.state, done.closing_reason) == ("rejected", "Second house.")
    assert done.house.renovation_status == RenovationStatus.NONE
    assert done.events.latest("id").reason == "Second house."


@pytest.mark.django_db
def test_unknown_step_is_refused():
    case = case_in_state(CaseState.APPLIED, photos=False)
    with pytest.raises(CaseRefused) as refused:
        act(user=case.team["admin"], case_id=case.pk, action="approve")
    assert str(refused.value.message) == (
        "“approve” is not a step; use one of: village_review, notice, township_check, "
        "county_approve, start_works, finish_works, pass_completion, fail_completion, "
        "reject, withdraw."
    )


@pytest.mark.django_db
def test_a_case_outside_the_users_regions_is_not_found():
    case = case_in_state(CaseState.APPLIED, photos=False)
    stranger = UserFactory(role=Role.TOWNSHIP_OFFICIAL, regions=[make_region("520399101")])
    with pytest.raises(Http404):
        act(user=stranger, case_id=case.pk, action="village_review")
    with pytest.raises(Http404):
        act(user=case.team["township"], case_id=999999, action="village_review")


# ---------------------------------------------------------------------------------------
# The notice period and the evidence rules


@pytest.mark.django_db
def test_township_check_waits_for_the_notice_period(settings):
    case = case_in_state(CaseState.VILLAGE_REVIEWED, photos=False)
    team = case.team
    case = act(user=team["township"], case_id=case.pk, action="notice")
    case.team = team
    started = timezone.localtime(case.notice_started_at).date()
    ends = timezone.localtime(case.notice_started_at + datetime.timedelta(days=7)).date()
    before = snapshot(case)
    with pytest.raises(CaseRefused) as refused:
        act(user=case.team["township"], case_id=case.pk, action="township_check")
    assert str(refused.value.message) == (
        f"The public notice started on {started.isoformat()} and must stand 7 days: the "
        f"township may check it from {ends.isoformat()}."
    )
    assert snapshot(case) == before
    backdate_notice(case, days=7)
    done = act(user=case.team["township"], case_id=case.pk, action="township_check")
    assert done.state == CaseState.TOWNSHIP_CHECKED


@pytest.mark.django_db
def test_start_works_needs_before_photos_of_every_required_slot():
    case = case_in_state(CaseState.COUNTY_APPROVED)
    inspection = case.entry_appraisal.inspection
    before = snapshot(case)
    with pytest.raises(CaseRefused) as refused:
        act(user=case.team["inspector"], case_id=case.pk, action="start_works")
    assert str(refused.value.message) == "Before-photos are missing for: Front, Roof."
    assert snapshot(case) == before
    # An after-photo of the roof is not a before-photo.
    photograph(inspection, PhotoStage.BEFORE, [PhotoAngle.FRONT], seed=5)
    photograph(inspection, PhotoStage.AFTER, [PhotoAngle.ROOF], seed=6)
    with pytest.raises(CaseRefused) as refused:
        act(user=case.team["inspector"], case_id=case.pk, action="start_works")
    assert str(refused.value.message) == "Before-photos are missing for: Roof."
    photograph(inspection, PhotoStage.BEFORE, [PhotoAngle.ROOF], seed=7)
    done = act(user=case.team["inspector"], case_id=case.pk, action="start_works")
    done.house.refresh_from_db()
    assert (done.state, done.works_inspector) == ("works_started", case.team["inspector"])
    assert done.house.renovation_status == RenovationStatus.IN_PROGRESS


@pytest.mark.django_db
def test_finish_works_needs_after_photos():
    case = case_in_state(CaseState.WORKS_STARTED)
    with pytest.raises(CaseRefused) as refused:
        act(user=case.team["inspector"], case_id=case.pk, action="finish_works")
    assert str(refused.value.message) == "After-photos are missing for: Front, Roof."
    completion = appraise(case.house, case.team["inspector2"], "A", kind=InspectionKind.COMPLETION)
    photograph(completion.inspection, PhotoStage.AFTER, ["front"], seed=20)
    with pytest.raises(CaseRefused) as refused:
        act(user=case.team["inspector"], case_id=case.pk, action="finish_works")
    assert str(refused.value.message) == "After-photos are missing for: Roof."
    photograph(completion.inspection, PhotoStage.AFTER, ["roof"], seed=21)
    done = act(user=case.team["inspector"], case_id=case.pk, action="finish_works")
    assert done.state == CaseState.WORKS_FINISHED


@pytest.mark.django_db
def test_completion_appraisal_by_the_works_inspector_is_refused():
    case = case_in_state(CaseState.WORKS_FINISHED)
    works_inspector = case.team["inspector"]
    appraise(
        case.house,
        works_inspector,
        "A",
        kind=InspectionKind.COMPLETION,
        when=timezone.now() - datetime.timedelta(minutes=1),
    )
    before = snapshot(case)
    with pytest.raises(CaseRefused) as refused:
        act(user=case.team["county"], case_id=case.pk, action="pass_completion")
    assert str(refused.value.message) == (
        f"The completion appraisal was made by the inspector who supervised the works "
        f"({works_inspector.username}); another inspector must make it."
    )
    assert snapshot(case) == before
    evidence = case_evidence(case=case)
    assert evidence["completion"]["different_person"] is False
    assert evidence["completion"]["acceptable"] is False
    # The other inspector's appraisal, named explicitly, passes.
    done = act(
        user=case.team["county"],
        case_id=case.pk,
        action="pass_completion",
        inspection=case.completion_appraisal.inspection,
    )
    done.house.refresh_from_db()
    assert done.state == CaseState.COMPLETION_PASSED
    assert done.completion_inspection == case.completion_appraisal.inspection
    assert done.completion_passed_at is not None
    assert done.house.renovation_status == RenovationStatus.COMPLETED


@pytest.mark.django_db
def test_completion_graded_c_cannot_pass_and_the_house_follows_the_grade():
    case = case_in_state(CaseState.WORKS_FINISHED)
    completion = appraise(
        case.house,
        case.team["inspector2"],
        "C",
        kind=InspectionKind.COMPLETION,
        when=timezone.now() - datetime.timedelta(minutes=1),
    )
    case.house.refresh_from_db()
    assert case.house.safety_grade == "C"
    with pytest.raises(CaseRefused) as refused:
        act(user=case.team["township"], case_id=case.pk, action="pass_completion")
    day = timezone.localtime(completion.inspection.started_at).date().isoformat()
    assert str(refused.value.message) == (
        f"The completion appraisal of {day} grades the house C; it must be A or B to pass "
        "(fail the check with the fixes required instead)."
    )


@pytest.mark.django_db
def test_the_official_who_supervised_the_works_may_not_pass_them():
    case = case_in_state(CaseState.COUNTY_APPROVED)
    township = case.team["township"]
    photograph(case.entry_appraisal.inspection, PhotoStage.BEFORE, ["front", "roof"])
    act(user=township, case_id=case.pk, action="start_works")
    completion = appraise(case.house, case.team["inspector2"], "B", kind=InspectionKind.COMPLETION)
    photograph(completion.inspection, PhotoStage.AFTER, ["front", "roof"], seed=30)
    act(user=township, case_id=case.pk, action="finish_works")
    with pytest.raises(CaseRefused) as refused:
        act(user=township, case_id=case.pk, action="pass_completion")
    assert str(refused.value.message) == (
        f"You supervised the works ({township.username}); another official must pass the "
        "completion check."
    )
    assert (
        act(user=case.team["county"], case_id=case.pk, action="pass_completion").state
        == CaseState.COMPLETION_PASSED
    )


@pytest.mark.django_db
def test_no_completion_check_recorded_is_refused():
    case = case_in_state(CaseState.WORKS_STARTED, photos=False)
    act(user=case.team["inspector"], case_id=case.pk, action="finish_works")
    with pytest.raises(CaseRefused) as refused:
        act(user=case.team["county"], case_id=case.pk, action="pass_completion")
    assert str(refused.value.message) == (
        "No completion check with an appraisal has been recorded for this house since the "
        "works; an inspector other than the works' inspector must make one."
    )


@pytest.mark.django_db
def test_failed_completion_goes_back_to_works_with_the_fixes_then_can_pass():
    case = case_in_state(CaseState.WORKS_FINISHED)
    with pytest.raises(CaseRefused) as refused:
        act(user=case.team["county"], case_id=case.pk, action="fail_completion")
    assert str(refused.value.message) == "Write the fixes required before the check can pass."
    back = act(
        user=case.team["county"],
        case_id=case.pk,
        action="fail_completion",
        reason="Roof drainage missing.",
    )
    assert back.state == CaseState.WORKS_STARTED
    assert back.events.latest("id").reason == "Roof drainage missing."
    act(user=case.team["inspector"], case_id=case.pk, action="finish_works")
    done = act(user=case.team["township"], case_id=case.pk, action="pass_completion")
    assert done.state == CaseState.COMPLETION_PASSED
    transitions = done.events.exclude(kind=CaseEventKind.ACKNOWLEDGE)
    assert list(transitions.values_list("to_state", flat=True)) == [
        "applied",
        "village_reviewed",
        "noticed",
        "township_checked",
        "county_approved",
        "works_started",
        "works_finished",
        "works_started",
        "works_finished",
        "completion_passed",
    ]


@pytest.mark.django_db
def test_case_evidence_lists_present_and_missing_slots_and_the_completion_check():
    case = case_in_state(CaseState.COUNTY_APPROVED)
    photograph(case.entry_appraisal.inspection, PhotoStage.BEFORE, ["roof"])
    evidence = case_evidence(case=case)
    assert [s.angle for s in evidence["before"]["present"]] == ["roof"]
    assert [s.angle for s in evidence["before"]["missing"]] == ["front"]
    assert [s.angle for s in evidence["after"]["missing"]] == ["front", "roof"]
    assert evidence["completion"] == {
        "inspection": None,
        "grade": None,
        "inspector": None,
        "works_inspector": None,
        "different_person": None,
        "acceptable": False,
        "flagged": [],
    }
    done = case_in_state(CaseState.WORKS_FINISHED)
    evidence = case_evidence(case=done)
    assert evidence["after"]["missing"] == []
    assert evidence["completion"]["grade"] == "A"
    assert evidence["completion"]["inspector"] == done.team["inspector2"]
    assert evidence["completion"]["different_person"] is True
    assert evidence["completion"]["acceptable"] is True


# ---------------------------------------------------------------------------------------
# Available actions


@pytest.mark.django_db
def test_available_actions_say_why_the_next_step_is_not_yet_possible():
    case = case_in_state(CaseState.VILLAGE_REVIEWED, photos=False)
    team = case.team
    case = act(user=team["township"], case_id=case.pk, action="notice")
    case.team = team
    ends = timezone.localtime(case.notice_started_at + datetime.timedelta(days=7)).date()
    started = timezone.localtime(case.notice_started_at).date()
    notice_reason = (
        f"The public notice started on {started.isoformat()} and must stand 7 days: the "
        f"township may check it from {ends.isoformat()}."
    )
    assert available_actions(user=case.team["township"], case=case) == [
        {
            "action": "township_check",
            "label": "Township check",
            "allowed": False,
            "reason": notice_reason,
            "flags": [],
        },
        {"action": "reject", "label": "Reject", "allowed": True, "reason": "", "flags": []},
        {"action": "withdraw", "label": "Withdraw", "allowed": True, "reason": "", "flags": []},
    ]
    assert available_actions(user=case.team["inspector"], case=case)[0] == {
        "action": "township_check",
        "label": "Township check",
        "allowed": False,
        "reason": "Your role (Inspector) may not take the step “Township check”.",
        "flags": [],
    }


@pytest.mark.django_db
def test_available_actions_offer_payment_until_paid_in_full():
    case = case_in_state(CaseState.COMPLETION_PASSED, photos=False)
    actions = available_actions(user=case.team["county"], case=case)
    assert [(a["action"], a["allowed"]) for a in actions] == [("withdraw", True), ("pay", True)]


# ---------------------------------------------------------------------------------------
# Payments


@pytest.mark.django_db
def test_payments_never_exceed_the_subsidy_and_close_the_case_when_full():
    case = case_in_state(CaseState.COMPLETION_PASSED, photos=False)
    county = case.team["county"]
    today = timezone.localdate()
    first, _created = pay(
        user=county, case_id=case.pk, amount="12000", paid_on=today, reference="BANK-001"
    )
    case.refresh_from_db()
    assert (first.amount, first.recorded_by) == (Decimal("12000"), county)
    assert (case.state, case.paid_total) == ("completion_passed", Decimal("12000.00"))
    before = snapshot(case)
    with pytest.raises(CaseRefused) as refused:
        pay(user=county, case_id=case.pk, amount="8000.01", paid_on=today, reference="BANK-002")
    assert str(refused.value.message) == (
        "A payment of 8,000.01 yuan would bring the total to 20,000.01 yuan, above the "
        "subsidy of 20,000 yuan; at most 8,000 yuan remains to pay."
    )
    assert snapshot(case) == before
    pay(user=county, case_id=case.pk, amount="8000", paid_on=today, reference="BANK-002")
    case.refresh_from_db()
    assert (case.state, case.paid_total) == ("paid", Decimal("20000.00"))
    events = list(case.events.filter(kind=CaseEventKind.PAYMENT).order_by("id"))
    assert [(e.from_state, e.to_state, e.data["amount"], e.data["paid_total"]) for e in events] == [
        ("completion_passed", "completion_passed", "12000", "12000.00"),
        ("completion_passed", "paid", "8000", "20000.00"),
    ]
    with pytest.raises(CaseStateConflict):
        pay(user=county, case_id=case.pk, amount="1", paid_on=today, reference="X")
    assert verify_chain()[1] is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"amount": "0"}, "A payment must be more than 0 yuan."),
        ({"amount": "10.005"}, "Amount: an amount in yuan has at most 2 decimals, not “10.005”."),
        ({"amount": "ten"}, "Amount: “ten” is not an amount in yuan."),
        ({"reference": " "}, "Enter the bank or treasury reference of the payment."),
        ({"paid_on": "2026-12-01"}, "The payment date must be a date, e.g. 2026-12-01."),
    ],
)
def test_bad_payments_are_refused(kw, message):
    case = case_in_state(CaseState.COMPLETION_PASSED, photos=False)
    args = {"amount": "100", "paid_on": timezone.localdate(), "reference": "R-1", **kw}
    before = snapshot(case)
    with pytest.raises(CaseRefused) as refused:
        pay(user=case.team["county"], case_id=case.pk, **args)
    assert str(refused.value.message) == message
    assert snapshot(case) == before


@pytest.mark.django_db
def test_payment_in_the_future_or_by_another_role_or_before_completion_is_refused():
    case = case_in_state(CaseState.COMPLETION_PASSED, photos=False)
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    with pytest.raises(CaseRefused) as refused:
        pay(user=case.team["county"], case_id=case.pk, amount="1", paid_on=tomorrow, reference="R")
    assert str(refused.value.message) == (
        f"The payment date {tomorrow.isoformat()} is in the future."
    )
    with pytest.raises(CaseForbidden) as forbidden:
        pay(
            user=case.team["township"],
            case_id=case.pk,
            amount="1",
            paid_on=timezone.localdate(),
            reference="R",
        )
    assert str(forbidden.value.message) == (
        "Your role (Township official) may not take the step “Record a payment”."
    )
    early = case_in_state(CaseState.WORKS_FINISHED, photos=False)
    with pytest.raises(CaseStateConflict):
        pay(
            user=early.team["county"],
            case_id=early.pk,
            amount="1",
            paid_on=timezone.localdate(),
            reference="R",
        )
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_a_case_with_payments_cannot_be_withdrawn():
    case = case_in_state(CaseState.COMPLETION_PASSED, photos=False)
    pay(
        user=case.team["county"],
        case_id=case.pk,
        amount="500",
        paid_on=timezone.localdate(),
        reference="R-1",
    )
    with pytest.raises(CaseRefused) as refused:
        act(user=case.team["county"], case_id=case.pk, action="withdraw", reason="X")
    assert str(refused.value.message) == (
        "500 yuan has already been paid on this case; a case with payments cannot be withdrawn."
    )


# ---------------------------------------------------------------------------------------
# Idempotency and the audit chain


@pytest.mark.django_db
def test_a_repeated_request_key_returns_the_case_and_writes_nothing():
    case = case_in_state(CaseState.APPLIED, photos=False)
    township = case.team["township"]
    first = act(user=township, case_id=case.pk, action="village_review", request_key="k-review-1")
    count = CaseEvent.objects.count()
    again = act(user=township, case_id=case.pk, action="village_review", request_key="k-review-1")
    assert (again.pk, again.state) == (first.pk, CaseState.VILLAGE_REVIEWED)
    assert CaseEvent.objects.count() == count
    # The case moved on since: the repeat still answers with the case as it is now.
    act(user=township, case_id=case.pk, action="notice")
    again = act(user=township, case_id=case.pk, action="village_review", request_key="k-review-1")
    assert again.state == CaseState.NOTICED
    with pytest.raises(IdempotencyConflict):
        act(user=township, case_id=case.pk, action="reject", reason="x", request_key="k-review-1")


@pytest.mark.django_db
def test_repeated_open_and_payment_keys_store_once(ready):
    house, team = ready
    first, created = case_open(user=team["inspector"], **open_args(house), request_key="open-1")
    again, again_created = case_open(
        user=team["inspector"], **open_args(house), request_key="open-1"
    )
    assert (again.pk, created, again_created) == (first.pk, True, False)
    assert RenovationCase.objects.count() == 1
    case = case_in_state(CaseState.COMPLETION_PASSED, photos=False)
    args = {
        "user": case.team["county"],
        "case_id": case.pk,
        "amount": "100",
        "paid_on": timezone.localdate(),
        "reference": "R-1",
        "request_key": "pay-1",
    }
    p1, created = pay(**args)
    p2, again_created = pay(**args)
    assert (p1.pk, created, again_created) == (p2.pk, True, False)
    assert Payment.objects.count() == 1
    case.refresh_from_db()
    assert case.paid_total == Decimal("100.00")


@pytest.mark.django_db
def test_every_step_to_paid_appends_one_event_and_the_chain_verifies():
    case = case_in_state(CaseState.PAID)
    steps = case.events.exclude(kind=CaseEventKind.ACKNOWLEDGE).order_by("id")
    kinds = list(steps.values_list("kind", "from_state", "to_state"))
    assert kinds == [
        ("opened", "", "applied"),
        ("transition", "applied", "village_reviewed"),
        ("transition", "village_reviewed", "noticed"),
        ("transition", "noticed", "township_checked"),
        ("transition", "township_checked", "county_approved"),
        ("transition", "county_approved", "works_started"),
        ("transition", "works_started", "works_finished"),
        ("transition", "works_finished", "completion_passed"),
        ("payment", "completion_passed", "paid"),
    ]
    # And the acknowledgements of the test photos' flags, in the same chain.
    acks = case.events.filter(kind=CaseEventKind.ACKNOWLEDGE)
    assert set(acks.values_list("data__for_step", flat=True)) == {
        "start_works",
        "finish_works",
    }
    assert verify_chain() == (9 + acks.count(), None)
    case.house.refresh_from_db()
    assert (case.house.renovation_status, case.house.safety_grade) == ("completed", "A")


# ---------------------------------------------------------------------------------------
# Two officials at once (PostGIS: real row locks)


@pytest.mark.postgis_only
@pytest.mark.django_db(transaction=True)
def test_two_officials_approving_at_once_make_exactly_one_transition():
    case = case_in_state(CaseState.TOWNSHIP_CHECKED, photos=False)
    other = UserFactory(role=Role.COUNTY_OFFICIAL, regions=[make_region("520399")])
    officials = [case.team["county"], other]
    barrier = threading.Barrier(2)
    results = [None, None]

    def approve(i):
        try:
            barrier.wait()
            results[i] = act(user=officials[i], case_id=case.pk, action="county_approve")
        except Exception as error:  # noqa: BLE001 - the test inspects what each thread got
            results[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    won = [r for r in results if isinstance(r, RenovationCase)]
    lost = [r for r in results if isinstance(r, CaseStateConflict)]
    assert (len(won), len(lost)) == (1, 1), results
    assert won[0].state == CaseState.COUNTY_APPROVED
    assert CaseEvent.objects.filter(case=case, to_state=CaseState.COUNTY_APPROVED).count() == 1
    assert str(lost[0].message) == (
        f"Case {case.pk} is Approved by the county; “County approval” is possible only "
        "from: Checked by the township."
    )
    assert verify_chain()[1] is None
