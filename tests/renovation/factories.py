"""Test data for renovation cases.

``case_in_state(state)`` drives a case to any state through the real services, with the
evidence each step needs (an entry appraisal, before-photos, a completion appraisal by a
second inspector, after-photos: real images through the photo pipeline), so a case made
here is one the services themselves would have produced, events and hash chain included.
``CaseFactory`` makes a bare row (state as asked, no events) for lists and pages.
"""

import datetime
import uuid
from decimal import Decimal

import factory
from django.conf import settings
from django.utils import timezone

from accounts.models import Role
from housing.models import House, SafetyGrade
from inspections.models import (
    InspectionKind,
    MemberRating,
    PhotoAngle,
    PhotoStage,
    RequiredPhotoSlot,
)
from renovation.evidence import FLAG_STEPS
from renovation.models import CaseState, RenovationCase, RenovationMethod, SubsidyStandard
from tests.factories import FamilyMemberFactory, HouseFactory, UserFactory, make_region
from tests.inspections.factories import AppraisalFactory, InspectionFactory, upload_photo
from tests.inspections.images import house_picture, jpeg

FUNDING_YEAR = 2026

# Every step needs a review opinion and the official's confirmation: what tests that are
# not about them send to the services, the pages' forms and the API.
OPINION = "Checked against the file and the photos: agreed."
CONFIRMED = {"opinion": OPINION, "confirm": True}

# A small slot configuration: enough to exercise the evidence rules, quick to photograph.
SMALL_SLOTS = {
    InspectionKind.APPRAISAL: (PhotoStage.BEFORE, [PhotoAngle.FRONT, PhotoAngle.ROOF]),
    InspectionKind.COMPLETION: (PhotoStage.AFTER, [PhotoAngle.FRONT, PhotoAngle.ROOF]),
}

# The order of the chain, and the action that reaches each state from the one before.
CHAIN = [
    (CaseState.VILLAGE_REVIEWED, "village_review", "inspector"),
    (CaseState.NOTICED, "notice", "township"),
    (CaseState.TOWNSHIP_CHECKED, "township_check", "township"),
    (CaseState.COUNTY_APPROVED, "county_approve", "county"),
    (CaseState.WORKS_STARTED, "start_works", "inspector"),
    (CaseState.WORKS_FINISHED, "finish_works", "inspector"),
    # Separation of duties: inspector2 appraises the completion, the township passes the
    # check (DOMAIN.md: its preliminary check), the county pays.
    (CaseState.COMPLETION_PASSED, "pass_completion", "township"),
]


def small_slots() -> None:
    """Require before-photos of the front and roof, and after-photos of the front and roof."""
    for kind, (stage, angles) in SMALL_SLOTS.items():
        for angle in angles:
            RequiredPhotoSlot.objects.get_or_create(kind=kind, stage=stage, angle=angle)


def small_jpeg(seed: int) -> bytes:
    return jpeg(house_picture(seed, size=(160, 120)), quality=80)


def case_team(house: House) -> dict:
    """Users with every role over the house's village: inspector (supervises the works),
    inspector2 (makes the completion appraisal), township, county, admin, auditor."""
    village = house.household.village
    township = make_region(village.code[:9])
    county = make_region(village.code[:6])
    tag = uuid.uuid4().hex[:6]

    def user(role, region, name):
        regions = [region] if region is not None else []
        return UserFactory(role=role, regions=regions, username=f"{name}-{tag}")

    return {
        "inspector": user(Role.INSPECTOR, village, "inspector"),
        "inspector2": user(Role.INSPECTOR, village, "inspector2"),
        "township": user(Role.TOWNSHIP_OFFICIAL, township, "township"),
        "county": user(Role.COUNTY_OFFICIAL, county, "county"),
        "admin": user(Role.ADMINISTRATOR, None, "admin"),
        "auditor": user(Role.AUDITOR, county, "auditor"),
    }


def appraise(house: House, inspector, grade: str, *, kind=InspectionKind.APPRAISAL, when=None):
    """An appraisal of the house with the given grade (ratings to match), and the house's
    grade following it as the inspection service would."""
    from inspections.services import house_grade_follow_latest

    when = when or timezone.now() - datetime.timedelta(minutes=30)
    dangerous = MemberRating.DANGEROUS
    ratings = {
        "A": {},
        "B": {"envelope": MemberRating.DAMAGED},
        "C": {"roof_structure": dangerous},
        "D": {"foundation": dangerous},
    }[grade]
    appraisal = AppraisalFactory(
        inspection=InspectionFactory(
            house=house,
            inspector=inspector,
            kind=kind,
            started_at=when,
            ended_at=when + datetime.timedelta(minutes=20),
        ),
        derived_grade=grade,
        grade=grade,
        **ratings,
    )
    house_grade_follow_latest(house=house)
    return appraisal


def photograph(inspection, stage, angles, *, seed: int = 1) -> list:
    """Real JPEGs through the upload and processing services, one per angle."""
    return [
        upload_photo(inspection, small_jpeg(seed + i), stage=stage, angle=angle)[0]
        for i, angle in enumerate(angles)
    ]


def subsidy_standard(year=FUNDING_YEAR, method=RenovationMethod.REBUILD_SAME_SITE, key_group=None):
    amount = Decimal("6000") if method == RenovationMethod.REPAIR else Decimal("20000")
    standard, _ = SubsidyStandard.objects.get_or_create(
        year=year, method=method, key_group=key_group, defaults={"amount": amount}
    )
    return standard


def eligible_house(*, grade="D", household_size=2, **house_kwargs) -> House:
    """A current house with members, appraised C or D is done by case_in_state/appraise."""
    house = HouseFactory(safety_grade=SafetyGrade.NOT_APPRAISED, **house_kwargs)
    for _ in range(household_size):
        FamilyMemberFactory(household=house.household)
    return house


def case_in_state(
    state: str = CaseState.APPLIED,
    *,
    house: House | None = None,
    team: dict | None = None,
    grade: str = "D",
    method: str | None = None,
    household_size: int = 2,
    planned_floor_area: Decimal | str = "50",
    funding_year: int = FUNDING_YEAR,
    batch: str = "",
    photos: bool = True,
    seed: int = 1,
) -> RenovationCase:
    """A case in `state`, driven there by the real services with the evidence each step needs.

    The returned case has ``case.team`` (the users, see case_team) and, from WORKS_FINISHED
    on, ``case.completion_appraisal`` (graded A by team["inspector2"]). Three people share
    the end, as separation of duties asks: inspector2 appraises, the township passes the
    completion check, the county pays.
    ``photos=False`` skips uploading photos (and configures no required slots); then the
    evidence rules have nothing to require. The public notice is backdated past the notice
    period so the township may check it. For PAID the whole subsidy is paid at once;
    for REJECTED the case is rejected from APPLIED; for WITHDRAWN withdrawn from APPLIED.
    """
    from renovation import services

    if photos:
        small_slots()
    if house is None:
        house = eligible_house(household_size=household_size)
    team = team or case_team(house)
    entry = appraise(house, team["inspector"], grade)
    completion = None
    method = method or (
        RenovationMethod.REPAIR if grade == "C" else RenovationMethod.REBUILD_SAME_SITE
    )
    subsidy_standard(funding_year, method, house.household.key_group)
    case, _created = services.case_open(
        user=team["inspector"],
        house=house,
        method=method,
        build_mode="self_built",
        planned_floor_area=Decimal(str(planned_floor_area)),
        funding_year=funding_year,
        batch=batch,
    )
    if state in (CaseState.REJECTED, CaseState.WITHDRAWN):
        action = "reject" if state == CaseState.REJECTED else "withdraw"
        case = act(user=team["township"], case_id=case.pk, action=action, reason="Test reason.")
    elif state != CaseState.APPLIED:
        target = CaseState.PAID if state == CaseState.PAID else state
        for reached, action, who in CHAIN:
            if action == "start_works" and photos:
                stage, angles = SMALL_SLOTS[InspectionKind.APPRAISAL]
                photograph(entry.inspection, stage, angles, seed=seed)
            if action == "finish_works":
                completion = appraise(
                    house,
                    team["inspector2"],
                    "A",
                    kind=InspectionKind.COMPLETION,
                    when=timezone.now() - datetime.timedelta(minutes=5),
                )
                if photos:
                    stage, angles = SMALL_SLOTS[InspectionKind.COMPLETION]
                    photograph(completion.inspection, stage, angles, seed=seed + 100)
            case = act(user=team[who], case_id=case.pk, action=action)
            if action == "notice":
                backdate_notice(case)
            if reached == target:
                break
        if state == CaseState.PAID:
            pay(
                user=team["county"],
                case_id=case.pk,
                amount=case.subsidy_amount,
                paid_on=timezone.localdate(),
                reference="TEST-PAY-1",
            )
            case.refresh_from_db()
    case.team = team
    case.completion_appraisal = completion
    return case


ACK_REASON = "Test photo without EXIF data: checked by eye against the house."


def acknowledgements_for(case_id: int, action: str, inspection=None) -> list[dict]:
    """An acknowledgement of every flag the step relies on that is not acknowledged yet.

    The test photos carry no EXIF (no GPS, no capture time), and the same picture on two
    houses is a duplicate: their flags are real, and an official accepts them."""
    from renovation.evidence import unacknowledged_flags

    case = RenovationCase.objects.select_related("entry_appraisal").get(pk=case_id)
    return [
        {"photo": check.key, "flag": check.code, "reason": ACK_REASON}
        for check in unacknowledged_flags(case, action, inspection)
    ]


def act(**kwargs):
    """renovation.services.case_act with the review opinion and the confirmation every
    step needs, and an acknowledgement of each flag the step relies on (unless the test
    gives its own)."""
    from renovation.services import case_act

    if "acknowledgements" not in kwargs and kwargs.get("action") in FLAG_STEPS:
        kwargs["acknowledgements"] = acknowledgements_for(
            kwargs["case_id"], kwargs["action"], kwargs.get("inspection")
        )
    return case_act(**{**CONFIRMED, **kwargs})


def pay(**kwargs):
    """renovation.services.case_pay with the review opinion and the confirmation."""
    from renovation.services import case_pay

    return case_pay(**{**CONFIRMED, **kwargs})


def backdate_notice(case: RenovationCase, days: int | None = None) -> None:
    """Move the notice's start back past the notice period (tests cannot wait a week)."""
    days = settings.ANJU_NOTICE_DAYS + 1 if days is None else days
    started = timezone.now() - datetime.timedelta(days=days)
    RenovationCase.objects.filter(pk=case.pk).update(notice_started_at=started)
    case.notice_started_at = started


class CaseFactory(factory.django.DjangoModelFactory):
    """A bare case row: no events, no evidence. For lists, filters and pages only;
    use case_in_state for anything the workflow will touch."""

    class Meta:
        model = RenovationCase

    house = factory.SubFactory(HouseFactory, safety_grade=SafetyGrade.D)
    state = CaseState.APPLIED
    entry_appraisal = factory.LazyAttribute(
        lambda o: AppraisalFactory(
            inspection__house=o.house,
            derived_grade="D",
            grade="D",
            foundation=MemberRating.DANGEROUS,
        )
    )
    entry_grade = "D"
    method = RenovationMethod.REBUILD_SAME_SITE
    build_mode = "self_built"
    household_size = 2
    planned_floor_area = Decimal("50.00")
    subsidy_amount = Decimal("20000.00")
    funding_year = FUNDING_YEAR
    created_by = factory.SubFactory(UserFactory)
