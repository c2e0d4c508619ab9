"""Demo renovation cases for seed_demo: a case in every state, and planted anomalies.

Cases are driven through the real services (renovation.services: case_open,
case_act, case_pay) by the users whose step it is: the township's inspector opens the case,
reviews it for the village and supervises the works; the township official notices and
checks it (the demo user `township` in its township, a township official of their own
elsewhere); the county (`county`) approves it and makes the formal completion visit. As
separation of duties asks (ANJU_SEPARATION_OF_DUTIES), a second county official
(`county2`) passes the completion check and `county`, who did not pass it, pays.

The houses are those the photo demo (demo.evidence) photographed, whose evidence is
reused: a renovated house's case is taken through its approval steps and started just
before its completion visit (the `before_visit` hook, while the house's latest appraisal
still grades it C or D), then finished, checked and paid after it; a house in progress gets
its case started before its progress visit. Cases still in the early states go to key-group
houses graded C or D that get an appraisal visit with photos here.

Every step is taken at a time of the demo's calendar (the services' `at=`), placed relative
to demo.registry.REFERENCE_DATE, never the clock: a case is opened a few days after the
appraisal, reviewed, noticed, checked once the notice period is over (ANJU_NOTICE_DAYS),
approved, started before the progress or completion visit, finished after the completion
visit, checked and paid after it. So each event's time and the dates the services set
(opened, notice, completion check, payments) tell the same story. Each step carries a
plausible review opinion and the official's confirmation, and acknowledges the evidence
flags of the photos it relies on (planted problems) with a reason. A few anomalies that
the services refuse are rows imported "from the old system" (see _legacy_case_create); the
others are planted with the registry's own services.
"""

import datetime
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import Count, Exists, OuterRef

from accounts.models import Role, User
from demo.pictures import ZONE
from demo.registry import COUNTY, REFERENCE_DATE, People
from housing import idnumbers
from housing.models import (
    FamilyMember,
    House,
    Household,
    Region,
    RegionLevel,
    Relation,
    RenovationStatus,
)
from housing.services import family_member_create
from inspections.models import Appraisal, Inspection, InspectionKind, Photo
from inspections.selectors import required_slots
from inspections.services import inspection_submit
from renovation.defaults import case_configuration_ensure
from renovation.events import event_append
from renovation.evidence import unacknowledged_flags
from renovation.models import (
    METHODS_FOR_GRADE,
    BuildMode,
    CaseEvent,
    CaseEventKind,
    CaseState,
    RenovationCase,
    RenovationMethod,
)
from renovation.rules import area_limits, area_rule_for, subsidy_standard_for
from renovation.services import case_act, case_open, case_pay

# The demo township official covers this township; the others get an official of their own.
DEMO_TOWNSHIP = ("township", COUNTY[0] + "100")
COUNTY_USER = "county"
# Passes the completion checks: not `county`, who made the completion appraisals.
COMPLETION_PASSER = "county2"
# Cases in each state before the works, per state: a county of this many households or more
# gets two of each, a smaller one one (as far as it has houses for them).
EARLY_STATES = [
    CaseState.APPLIED,
    CaseState.VILLAGE_REVIEWED,
    CaseState.NOTICED,
    CaseState.TOWNSHIP_CHECKED,
    CaseState.COUNTY_APPROVED,
    CaseState.REJECTED,
    CaseState.WITHDRAWN,
]
LARGE_COUNTY = 1000
NOT_RENOVATED = [RenovationStatus.NONE, RenovationStatus.PLANNED]
# What becomes of the renovated houses' cases once their works are finished, in the order
# they are handed out (the rest are paid): every story is told even in a small county.
ENDINGS = ["paid", "overdue_partial", "works_finished", "repeat", "recheck", "overdue_unpaid"]
REJECT_REASON = "The village review found a second house registered to the household."
WITHDRAW_REASON = "The household withdrew: the family will live with their son in town."
FIXES = "The roof drains onto the neighbour's wall: add a gutter and re-fix the ridge tiles."
NO_KEY_GROUP_REASON = (
    "The village committee vouches for the family's hardship; the certificate is pending."
)
IMPORT_REASON = "Imported from the old system."
# The review opinion each step is taken with (审核意见).
OPINIONS = {
    "village_review": "Reviewed at the village committee's meeting: the household qualifies.",
    "notice": "Posted on the village notice board and the township's website.",
    "township_check": "The notice ended without objection; the file is complete.",
    "county_approve": "Approved within the county's renovation plan for the year.",
    "start_works": "Before-photos checked; the household and the builder signed the agreement.",
    "finish_works": "Works finished as planned; the after-photos are in.",
    "pass_completion": "The house is safe again and matches the plan: passed.",
    "fail_completion": "Not yet: the fixes below are required first.",
    "reject": "Rejected after the village review.",
    "withdraw": "Withdrawn at the household's written request.",
    "pay": "Paid into the household's benefits account.",
}
# Why an official accepts a photo's evidence flag (the planted problems), by flag code.
ACK_REASONS = {
    "far_from_house": "Taken from the road above the house; the house and its doorplate match.",
    "no_gps": "The phone's location was off; the doorplate in the photo matches the address.",
    "duplicate": "Checked on site: the house is as photographed; a new photo is requested.",
    "near_duplicate_other": "Neighbouring houses of the same design; checked on site.",
    "near_duplicate_stage": "Nothing changed on this side of the house between the visits.",
}
ACK_REASON = "Checked against the household file and the visit's other photos."


@dataclass
class CaseSummary:
    cases: int = 0
    states: Counter = field(default_factory=Counter)
    payments: int = 0
    photos: int = 0
    # anomaly kind (audit.anomalies.AnomalyKind) -> archive numbers
    planted: dict = field(default_factory=dict)


def township_official_usernames() -> list[str]:
    """The usernames of the per-township officials the case demo creates."""
    from demo.evidence import township_codes

    return [f"township-{code[-3:]}" for code in township_codes() if code != DEMO_TOWNSHIP[1]]


def township_officials_taken() -> list[str]:
    return sorted(
        User.objects.filter(username__in=township_official_usernames()).values_list(
            "username", flat=True
        )
    )


def configuration_ensure() -> None:
    """In a database without the data migration (tests), the default area rule and subsidy
    standards (the key groups must exist: the county demo makes them)."""
    case_configuration_ensure()


def _at(day: datetime.date, hour: int = 10) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour), tzinfo=ZONE)


def _last_event_at(case: RenovationCase) -> datetime.datetime:
    return CaseEvent.objects.filter(case=case).order_by("-at").values_list("at", flat=True)[0]


def _after(
    case: RenovationCase, rnd: random.Random, days: tuple[int, int], hour: int
) -> datetime.datetime:
    """A time some days after the case's latest event (at `hour`), by the reference date."""
    last = _last_event_at(case)
    day = min(last.astimezone(ZONE).date() + _days(rnd.randint(*days)), REFERENCE_DATE)
    return max(_at(day, hour), last + _minutes(10))


def _not_before(case: RenovationCase, at: datetime.datetime) -> datetime.datetime:
    return max(at, _last_event_at(case) + _minutes(10))


class CaseDemo:
    """Cases for the demo county. `before_visit` is the photo demo's hook; `finish` does the
    rest after the photo demo, in the same transaction."""

    def __init__(self, *, seed: int, households: int):
        self.seed = seed
        self.per_state = 2 if households >= LARGE_COUNTY else 1
        self.summary = CaseSummary()
        self._users: dict[str, User] = {}
        self._renovating: list[tuple[str, RenovationCase]] = []
        self._slots = None
        self.seconds_in_photos = 0.0  # time spent in before_visit, for the command's report
        configuration_ensure()

    # --- people -----------------------------------------------------------------------

    def _user(self, username: str) -> User:
        if username not in self._users:
            self._users[username] = User.objects.get(username=username)
        return self._users[username]

    def _inspector(self, household: Household) -> User:
        from demo.evidence import DEMO_INSPECTOR

        code = household.village.parent.code
        return self._user(
            DEMO_INSPECTOR[0] if code == DEMO_INSPECTOR[1] else f"inspector-{code[-3:]}"
        )

    def _township(self, household: Household) -> User:
        code = household.village.parent.code
        if code == DEMO_TOWNSHIP[1]:
            return self._user(DEMO_TOWNSHIP[0])
        username = f"township-{code[-3:]}"
        if username not in self._users:
            user = User.objects.filter(username=username).first()
            if user is None:
                # An author of demo records (no password: not a login), like the photo
                # demo's field inspectors.
                people = People(random.Random(f"anju-demo-townships:{self.seed}:{code}"))
                user = User(
                    username=username,
                    role=Role.TOWNSHIP_OFFICIAL,
                    last_name=people.surname(),
                    first_name=people.given(idnumbers.SEX_FEMALE),
                    password=make_password(None),
                )
                user.full_clean(exclude=["password"])
                user.save()
                user.regions.set([Region.objects.get(code=code, level=RegionLevel.TOWNSHIP)])
            self._users[username] = user
        return self._users[username]

    def _county(self) -> User:
        return self._user(COUNTY_USER)

    def _passer(self) -> User:
        return self._user(COMPLETION_PASSER)

    # --- evidence ---------------------------------------------------------------------

    def _before_complete(self, house: House) -> bool:
        if self._slots is None:
            self._slots = required_slots()
        wanted = {angle for stage, angle in self._slots.get(InspectionKind.APPRAISAL, [])}
        wanted_stages = {stage for stage, angle in self._slots.get(InspectionKind.APPRAISAL, [])}
        have = set(
            Photo.objects.filter(inspection__house=house, stage__in=wanted_stages).values_list(
                "angle", flat=True
            )
        )
        return wanted <= have

    def _rnd(self, household: Household) -> random.Random:
        return random.Random(f"anju-demo-cases:{self.seed}:{household.archive_no}")

    # --- the steps --------------------------------------------------------------------

    def _times(self, household: Household, what: str) -> random.Random:
        """The draws that place a case's steps on the calendar (apart from the case's own)."""
        return random.Random(f"anju-demo-case-times:{self.seed}:{household.archive_no}:{what}")

    def _open(
        self,
        household: Household,
        house: House,
        *,
        year: int,
        rnd: random.Random,
        at: datetime.datetime,
        **extra,
    ) -> RenovationCase:
        grade = _latest_grade(house)
        method = rnd.choice(METHODS_FOR_GRADE[grade])
        size = FamilyMember.objects.filter(household=household).count()
        low, high = area_limits(household_size=size, rule=area_rule_for(year))
        area = Decimal(round(rnd.uniform(float(low), float(high)) * 2) / 2).quantize(
            Decimal("0.01")
        )
        case, _created = case_open(
            user=self._inspector(household),
            house=house,
            method=method,
            build_mode=BuildMode.SELF_BUILT if rnd.random() < 0.7 else BuildMode.GOVERNMENT,
            planned_floor_area=min(max(area, low), high),
            funding_year=year,
            batch=f"{year}-{rnd.randint(1, 3)}",
            at=at,
            **extra,
        )
        self.summary.cases += 1
        return case

    def _act(
        self, case: RenovationCase, action: str, user: User, *, at, inspection=None, **kwargs
    ) -> RenovationCase:
        """One step at `at`, with its opinion and confirmation, acknowledging the flags of the
        photos it relies on."""
        acknowledgements = [
            {
                "photo": check.key,
                "flag": check.code,
                "reason": ACK_REASONS.get(check.code, ACK_REASON),
            }
            for check in unacknowledged_flags(case, action, inspection)
        ]
        if inspection is not None:
            kwargs["inspection"] = inspection
        return case_act(
            user=user,
            case_id=case.pk,
            action=action,
            opinion=OPINIONS[action],
            confirm=True,
            acknowledgements=acknowledgements,
            at=_not_before(case, at),
            **kwargs,
        )

    def _approve(
        self, case: RenovationCase, household: Household, *, until: str, notice: datetime.date
    ) -> RenovationCase:
        """Take an open case up the chain as far as state `until` (an approval state): the
        village reviews it before the notice starts on day `notice`, the township checks it
        once the notice period is over, the county approves it some days later."""
        rnd = self._times(household, f"approve-{case.funding_year}")
        notice_at = _at(notice, 9)
        chain = [
            ("village_review", self._inspector(household)),
            ("notice", self._township(household)),
            ("township_check", self._township(household)),
            ("county_approve", self._county()),
        ]
        for action, user in chain:
            if case.state == until:
                break
            if action == "village_review":
                at = min(_after(case, rnd, (1, 4), 15), notice_at - datetime.timedelta(hours=2))
            elif action == "notice":
                at = notice_at
            elif action == "township_check":
                days = settings.ANJU_NOTICE_DAYS
                at = _after(case, rnd, (days, days + 2), 10)
            else:
                at = _after(case, rnd, (2, 6), 11)
            case = self._act(case, action, user, at=at)
        return case

    # --- the photo demo's hook ----------------------------------------------------------

    def before_visit(self, *, household: Household, house: House, kind: str, day) -> None:
        """Before a renovated house's progress or completion visit: its case, approved and
        started (when the before-photos are all there), while its latest appraisal still
        grades it C or D."""
        if kind not in (InspectionKind.PROGRESS, InspectionKind.COMPLETION):
            return
        started = time.monotonic()
        try:
            self._start(household=household, house=house, kind=kind, day=day)
        finally:
            self.seconds_in_photos += time.monotonic() - started

    def _start(self, *, household: Household, house: House, kind: str, day) -> None:
        if household.key_group_id is None or _latest_grade(house) not in METHODS_FOR_GRADE:
            return  # renovated outside the programme: no case
        complete = self._before_complete(house)
        if kind == InspectionKind.COMPLETION and not complete:
            return  # renovated before the platform: no case
        rnd = self._rnd(household)
        times = self._times(household, "start")
        appraised = _latest_appraisal_day(house)
        opened = _at(appraised + _days(times.randint(1, 5)), 10)
        case = self._open(household, house, year=max(2024, appraised.year), rnd=rnd, at=opened)
        notice = opened.date() + _days(times.randint(4, 10))
        case = self._approve(case, household, until=CaseState.COUNTY_APPROVED, notice=notice)
        if complete:
            # Started before the visit that finds the works under way (or finished).
            at = min(_after(case, times, (1, 5), 9), _at(day, 8))
            case = self._act(case, "start_works", self._inspector(household), at=at)
        self._renovating.append((kind, case))

    # --- after the photo demo -----------------------------------------------------------

    def finish(self) -> CaseSummary:
        with transaction.atomic():
            finished = []
            for kind, case in self._renovating:
                if kind != InspectionKind.COMPLETION:
                    continue
                household = case.house.household
                # The completion visit may have come back without every after-photo: then
                # the works cannot be recorded finished, and the case page says why.
                if _after_missing(case):
                    continue
                # Recorded finished once the completion visit has brought the after-photos.
                visit = _completion_visit_of(case)
                at = (visit.ended_at or visit.started_at) + datetime.timedelta(hours=1)
                finished.append(self._act(case, "finish_works", self._inspector(household), at=at))
            for index, case in enumerate(finished):
                ending = ENDINGS[index] if index < len(ENDINGS) else "paid"
                self._end(case, ending)
            self._early_cases()
            self._plant()
            self._count()
        return self.summary

    def _pass(self, case: RenovationCase, *, inspection=None, at=None) -> RenovationCase:
        visit = inspection or (
            Inspection.objects.filter(house=case.house, kind=InspectionKind.COMPLETION)
            .order_by("-started_at")
            .first()
        )
        rnd = self._rnd(case.house.household)
        passed = at or min(
            _at(REFERENCE_DATE, 11),
            _at(visit.started_at.astimezone(ZONE).date(), 11)
            + datetime.timedelta(days=rnd.randint(2, 7)),
        )
        return self._act(case, "pass_completion", self._passer(), inspection=visit, at=passed)

    def _pay(self, case: RenovationCase, amount: Decimal, paid_on: datetime.date, n: int):
        paid_on = min(paid_on, REFERENCE_DATE)
        case_pay(
            user=self._county(),
            case_id=case.pk,
            amount=amount.quantize(Decimal("1")),
            paid_on=paid_on,
            reference=f"DEMO-{case.house.household.archive_no}-{n}",
            opinion=OPINIONS["pay"],
            confirm=True,
            # Recorded the afternoon of the day it was paid.
            at=_not_before(case, _at(paid_on, 14 + n)),
        )
        self.summary.payments += 1

    def _end(self, case: RenovationCase, ending: str) -> None:
        household = case.house.household
        rnd = self._rnd(household)
        if ending == "works_finished":
            return  # the county has yet to decide on the completion visit (county2's step)
        if ending == "recheck":
            # The first check fails with fixes; after them a second completion visit (no new
            # photos) passes shortly before the reference date: one instalment is paid and
            # the rest is not yet due.
            first = _completion_visit_of(case).started_at.astimezone(ZONE).date()
            failed = min(first + _days(2), REFERENCE_DATE - _days(4))
            case = self._act(
                case, "fail_completion", self._county(), reason=FIXES, at=_at(failed, 11)
            )
            again = max(REFERENCE_DATE - _days(12), failed + _days(2))
            case = self._act(
                case, "finish_works", self._inspector(household), at=_at(again - _days(1), 16)
            )
            visit = self._completion_visit(household, again)
            passed = min(_at(REFERENCE_DATE, 11), _at(again + _days(2), 11))
            case = self._pass(case, inspection=visit, at=passed)
            paid_on = max(passed.date(), REFERENCE_DATE - _days(4))
            self._pay(case, case.subsidy_amount * Decimal("0.5"), paid_on, 1)
            return
        case = self._pass(case)
        passed = case.completion_passed_at.astimezone(ZONE).date()
        if ending == "overdue_unpaid":
            return
        if ending == "overdue_partial":
            self._pay(case, case.subsidy_amount * Decimal("0.4"), passed + _days(12), 1)
            return
        if rnd.random() < 0.5:
            first = (case.subsidy_amount * Decimal("0.4")).quantize(Decimal("1"))
            self._pay(case, first, passed + _days(rnd.randint(5, 12)), 1)
            self._pay(case, case.subsidy_amount - first, passed + _days(rnd.randint(15, 28)), 2)
        else:
            self._pay(case, case.subsidy_amount, passed + _days(rnd.randint(5, 25)), 1)
        if ending == "repeat":
            # Paid in full, the house is appraised C again the next year and a second case is
            # opened: the same household applying again (an anomaly for the auditor).
            day = min(REFERENCE_DATE - _days(2), passed + _days(200))
            if day > passed:
                self._appraisal_visit(household, grade="C", day=day)
                again = self._open(
                    household, case.house, year=2025, rnd=rnd, at=_at(day + _days(1), 10)
                )
                self._plant_as("repeat_case", again)

    def _completion_visit(self, household: Household, day: datetime.date) -> Inspection:
        from demo.evidence import appraisal_payload
        from inspections.grading import active_rule

        rnd = self._rnd(household)
        start = _at(day, 14)
        inspection, _created = inspection_submit(
            user=self._county(),
            client_uuid=_uuid(self.seed, household, "recheck"),
            household=household,
            kind=InspectionKind.COMPLETION,
            started_at=start,
            ended_at=start + _minutes(40),
            location=household.location,
            accuracy=8.0,
            notes="Second check after the required fixes.",
            appraisal=appraisal_payload(grade="B", rnd=rnd, rule=active_rule()),
        )
        return inspection

    def _appraisal_visit(
        self, household: Household, *, grade: str, day: datetime.date, what: str = "again"
    ):
        """A safety appraisal without photos."""
        from demo.evidence import appraisal_payload
        from inspections.grading import active_rule

        rnd = self._rnd(household)
        start = _at(day, 9)
        inspection_submit(
            user=self._inspector(household),
            client_uuid=_uuid(self.seed, household, f"appraisal-{what}"),
            household=household,
            kind=InspectionKind.APPRAISAL,
            started_at=start,
            ended_at=start + _minutes(50),
            location=household.location,
            accuracy=6.0,
            appraisal=appraisal_payload(grade=grade, rnd=rnd, rule=active_rule()),
        )

    def _photographed_visit(self, household: Household, grade: str) -> None:
        """An appraisal visit with its before-photos, drawn as the photo demo draws them."""
        from demo.evidence import PhotoSummary, Plan, photograph
        from inspections.grading import active_rule

        photos = PhotoSummary()
        photograph(
            plan=Plan(household=household, visits=[(InspectionKind.APPRAISAL, grade)]),
            seed=self.seed,
            rule=active_rule(),
            slots=required_slots(),
            inspector=self._inspector(household),
            checker=self._county(),
            problem=None,
            source=None,
            copies={},
            summary=photos,
        )
        self.summary.photos += photos.photos

    # --- cases before the works ---------------------------------------------------------

    def _fresh_houses(
        self, *, key_group: bool, grades=("C", "D"), statuses=NOT_RENOVATED
    ) -> list[House]:
        """Current houses of the county graded `grades` in the registry with no case yet, in
        `statuses`: the demo township's first, the appraised first, then by archive number."""
        qs = (
            House.objects.filter(
                is_current=True,
                household__village__code__startswith=COUNTY[0],
                household__location__isnull=False,
                household__key_group__isnull=not key_group,
                safety_grade__in=grades,
                renovation_status__in=statuses,
                cases__isnull=True,
            )
            .annotate(appraised=Exists(Appraisal.objects.filter(inspection__house=OuterRef("pk"))))
            .select_related("household__village__parent")
            .order_by("household__archive_no")
        )
        return sorted(
            qs,
            key=lambda h: (h.household.village.parent.code != DEMO_TOWNSHIP[1], not h.appraised),
        )

    def _appraised_house(self, house: House) -> House:
        """The house with an appraisal grading it as the registry does, when it has none: a
        visit with before-photos in the demo township (so that the demo users can start its
        works), elsewhere a visit whose photos are still to come (photos are the slow part of
        seeding)."""
        if not Appraisal.objects.filter(inspection__house=house).exists():
            household = house.household
            if household.village.parent.code == DEMO_TOWNSHIP[1]:
                self._photographed_visit(household, house.safety_grade)
            else:
                day = REFERENCE_DATE - _days(self._rnd(household).randint(60, 200))
                self._appraisal_visit(household, grade=house.safety_grade, day=day, what="first")
        return House.objects.select_related("household__village__parent").get(pk=house.pk)

    def _early_cases(self) -> None:
        # Photographed houses first (their appraisal is there), then the others.
        houses = self._fresh_houses(key_group=True)
        wanted = self.per_state * len(EARLY_STATES)
        states = [state for _round in range(self.per_state) for state in EARLY_STATES]
        # One house is kept for the floor-area anomaly; in a small county, a house whose
        # renovation the registry records without a case, if need be.
        spare = houses[wanted:] or self._fresh_houses(
            key_group=True, statuses=RenovationStatus.values
        )
        self._area_house = spare[0] if spare else None
        for state, house in zip(states, houses, strict=False):
            house = self._appraised_house(house)
            household = house.household
            rnd = self._rnd(household)
            times = self._times(household, "early")
            appraised = _latest_appraisal_day(house)
            opened = _at(appraised + _days(times.randint(1, 5)), 10)
            case = self._open(household, house, year=2025, rnd=rnd, at=opened)
            if state == CaseState.NOTICED:
                # The notice started three days before the reference date (it is still up).
                notice = REFERENCE_DATE - _days(3)
            else:
                notice = min(appraised + _days(rnd.randint(20, 60)), REFERENCE_DATE - _days(10))
            until = {
                CaseState.REJECTED: CaseState.VILLAGE_REVIEWED,
                CaseState.WITHDRAWN: CaseState.NOTICED,
            }.get(state, state)
            case = self._approve(case, household, until=until, notice=notice)
            if state == CaseState.REJECTED:
                at = _after(case, times, (3, 10), 16)
                self._act(case, "reject", self._township(household), reason=REJECT_REASON, at=at)
            elif state == CaseState.WITHDRAWN:
                at = _after(case, times, (1, 3), 16)
                self._act(
                    case, "withdraw", self._township(household), reason=WITHDRAW_REASON, at=at
                )

    # --- planted anomalies --------------------------------------------------------------

    def _plant_as(self, code: str, case_or_household) -> None:
        household = getattr(case_or_household, "house", None)
        household = household.household if household else case_or_household
        self.summary.planted.setdefault(code, set()).add(household.archive_no)

    def _plant(self) -> None:
        cases = (
            RenovationCase.objects.filter(house__household__village__code__startswith=COUNTY[0])
            .exclude(state__in=[CaseState.REJECTED, CaseState.WITHDRAWN])
            .select_related("house__household__village__parent")
            .order_by("house__household__archive_no", "id")
        )
        early = [c for c in cases if c.state in EARLY_STATES]
        paid = [c for c in cases if c.state == CaseState.PAID]
        # No key group: a household outside the key groups, its subsidy entered by hand.
        for house in self._fresh_houses(key_group=False)[:1]:
            house = self._appraised_house(house)
            rnd = self._rnd(house.household)
            grade = _latest_grade(house)
            opened = _at(_latest_appraisal_day(house) + _days(3), 10)
            case = self._open(
                house.household,
                house,
                year=2025,
                rnd=rnd,
                at=opened,
                subsidy_amount=Decimal("6000" if grade == "C" else "20000"),
                subsidy_override_reason=NO_KEY_GROUP_REASON,
            )
            self._approve(
                case,
                house.household,
                until=CaseState.VILLAGE_REVIEWED,
                notice=min(opened.date() + _days(20), REFERENCE_DATE),
            )
            self._plant_as("no_key_group", case)
        # Not C or D at entry: the services refuse it, so it is an imported row.
        for house in self._fresh_houses(key_group=True, grades=("A", "B"))[:1]:
            house = self._appraised_house(house)
            case = self._legacy_case_create(house, area_over=False)
            notice = _latest_appraisal_day(house) + _days(15)
            self._approve(case, house.household, until=CaseState.COUNTY_APPROVED, notice=notice)
            self._plant_as("grade_not_cd", case)
        # Floor area over the rule: refused by the services too, so imported.
        if self._area_house is not None:
            house = self._appraised_house(self._area_house)
            case = self._legacy_case_create(house, area_over=True)
            self._plant_as("area_over_rule", case)
        # The same person in two households with cases: a paid household's spouse (or head)
        # is recorded again in a household applying now.
        if paid and early:
            source, target = paid[0].house.household, early[0].house.household
            person = (
                source.members.filter(relation=Relation.SPOUSE).first()
                or source.members.order_by("id").first()
            )
            has_spouse = target.members.filter(relation=Relation.SPOUSE).exists()
            family_member_create(
                household=target,
                name=person.name,
                relation=Relation.OTHER if has_spouse else Relation.SPOUSE,
                id_number=person.id_number,
            )
            self._plant_as("shared_id", source)
            self._plant_as("shared_id", target)
        # Double benefit: a paid household that also got poverty-relocation housing.
        if paid:
            household = paid[-1].house.household
            if not household.poverty_relocation:
                # Demo code: the registry marks it as the relocation programme's list would.
                household.poverty_relocation = True
                household.full_clean()
                household.save(update_fields=["poverty_relocation"])
        # A family member without an ID number (a baby not yet registered), and one recorded
        # in two households (a nephew in his uncle's household too).
        if len(early) > 1:
            household = early[1].house.household
            family_member_create(
                household=household,
                name=household.head_name[:1] + "小宝",
                relation=Relation.GRANDCHILD,
                id_number="",
            )
            self._plant_as("missing_id", household)
        if len(early) > 2:
            household = early[2].house.household
            other = (
                FamilyMember.objects.filter(
                    household__village=household.village, relation=Relation.CHILD
                )
                .exclude(household=household)
                .exclude(household__houses__cases__isnull=False)
                .order_by("household__archive_no", "id")
                .select_related("household")
                .first()
            )
            if other is not None:
                family_member_create(
                    household=household,
                    name=other.name,
                    relation=Relation.OTHER,
                    id_number=other.id_number,
                )
                self._plant_as("duplicate_id", household)
                self._plant_as("duplicate_id", other.household)

    def _legacy_case_create(self, house: House, *, area_over: bool) -> RenovationCase:
        """A case as imported from the county's old system, which held it to no rule.

        Demo code only: it writes the row itself (the services would refuse it), and records
        the import as the case's opening event so that the timeline says where it came from.
        """
        household = house.household
        rnd = self._rnd(household)
        entry = (
            Appraisal.objects.filter(inspection__house=house)
            .order_by("-inspection__started_at", "-id")
            .first()
        )
        method = (
            RenovationMethod.REPAIR if entry.grade in "ABC" else RenovationMethod.REBUILD_SAME_SITE
        )
        size = FamilyMember.objects.filter(household=household).count()
        low, high = area_limits(household_size=size, rule=area_rule_for(2025))
        area = high + 24 if area_over else (low + high) / 2
        standard = subsidy_standard_for(year=2025, method=method, key_group=household.key_group)
        case = RenovationCase(
            house=house,
            state=CaseState.APPLIED,
            entry_appraisal=entry,
            entry_grade=entry.grade,
            method=method,
            build_mode=BuildMode.SELF_BUILT,
            household_size=size,
            planned_floor_area=Decimal(area).quantize(Decimal("0.01")),
            subsidy_standard=standard,
            subsidy_amount=standard.amount if standard else Decimal("0"),
            funding_year=2025,
            batch=f"2025-{rnd.randint(1, 3)}",
            created_by=self._inspector(household),
            # Opened in the old system two days after the appraisal.
            created_at=_at(entry.inspection.started_at.astimezone(ZONE).date() + _days(2), 10),
        )
        case.full_clean()
        case.save()
        event_append(
            case=case,
            kind=CaseEventKind.OPENED,
            from_state="",
            to_state=CaseState.APPLIED,
            actor=case.created_by,
            reason=IMPORT_REASON,
            data={
                "step": "import",
                "entry_appraisal": entry.pk,
                "entry_grade": entry.grade,
                "planned_floor_area": str(case.planned_floor_area),
                "subsidy_amount": str(case.subsidy_amount),
                "funding_year": case.funding_year,
            },
            at=case.created_at,
        )
        self.summary.cases += 1
        return case

    def _count(self) -> None:
        cases = RenovationCase.objects.filter(house__household__village__code__startswith=COUNTY[0])
        self.summary.states = Counter(
            dict(cases.order_by().values_list("state").annotate(n=Count("id")))
        )
        counted = cases.exclude(state__in=[CaseState.REJECTED, CaseState.WITHDRAWN])
        # Found in the data rather than planted one by one: every counted case of a household
        # on the relocation list, of a house with flagged photos, or overdue at the reference
        # date.
        for code, found in (
            ("double_benefit", counted.filter(house__household__poverty_relocation=True)),
            (
                "photo_flags",
                counted.filter(
                    house__inspections__photos__in=Photo.objects.exclude(flags=[])
                ).distinct(),
            ),
            ("overdue", _overdue_at_reference(counted)),
        ):
            for archive_no in found.values_list("house__household__archive_no", flat=True):
                self.summary.planted.setdefault(code, set()).add(archive_no)
        self.summary.planted = {
            code: sorted(numbers) for code, numbers in self.summary.planted.items()
        }


def _overdue_at_reference(qs):
    from renovation.rules import overdue_cases

    return overdue_cases(qs, today=REFERENCE_DATE)


def _completion_visit_of(case: RenovationCase) -> Inspection:
    """The house's latest completion visit (the one the works' end is recorded after)."""
    return (
        Inspection.objects.filter(house=case.house, kind=InspectionKind.COMPLETION)
        .order_by("-started_at", "-id")
        .first()
    )


def _after_missing(case: RenovationCase) -> bool:
    from renovation.selectors import case_evidence

    return bool(case_evidence(case=case)["after"]["missing"])


def _latest_appraisal(house: House) -> Appraisal | None:
    return (
        Appraisal.objects.filter(inspection__house_id=house.pk)
        .select_related("inspection")
        .order_by("-inspection__started_at", "-inspection__created_at", "-id")
        .first()
    )


def _latest_grade(house: House) -> str | None:
    appraisal = _latest_appraisal(house)
    return appraisal.grade if appraisal else None


def _latest_appraisal_day(house: House) -> datetime.date:
    return _latest_appraisal(house).inspection.started_at.astimezone(ZONE).date()


def _days(n: int) -> datetime.timedelta:
    return datetime.timedelta(days=n)


def _minutes(n: int) -> datetime.timedelta:
    return datetime.timedelta(minutes=n)


def _uuid(seed: int, household: Household, what: str) -> uuid.UUID:
    rnd = random.Random(f"anju-demo-cases:{seed}:{household.archive_no}:{what}")
    return uuid.UUID(int=rnd.getrandbits(128), version=4)
