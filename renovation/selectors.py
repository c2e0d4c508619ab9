"""Every user-facing read of renovation cases. Each takes the user and applies region scoping.

A case belongs to the region of its house's household: out of the user's regions it is a
404, never a leak. Lists come with what their pages and serializers need already joined or
prefetched, so rendering costs a fixed number of queries whatever the number of rows.
"""

import datetime
from dataclasses import dataclass, replace

from django.db.models import Count, Prefetch, Q, QuerySet, prefetch_related_objects
from django.http import Http404
from django.utils.translation import gettext as _

from accounts.models import Role
from accounts.scoping import scope
from housing.models import Household, Region, RegionLevel
from inspections.models import Inspection, InspectionKind, Photo, PhotoStatus, RequiredPhotoSlot
from renovation.errors import CaseForbidden
from renovation.evidence import (
    FLAG_STEPS,
    FlagCheck,
    acknowledgements_of,
    completion_visit,
    flag_checks,
    latest_completion_visit_id,
    photo_key,
    photo_slots_of,
    step_flag_checks,
    unacknowledged_flags,
)
from renovation.models import OPEN_STATES, CaseEvent, CaseState, Payment, RenovationCase
from renovation.permissions import can_view_case
from renovation.rules import is_overdue, number, overdue_cases, payment_due_date
from renovation.workflow import STEPS, role_may, step_problem

CASE_SCOPE = "house__household__village__code"


@dataclass(frozen=True)
class CaseFilters:
    state: str = ""
    township: str = ""  # a township's (or any region's) code: the cases under it
    funding_year: int | None = None
    overdue: bool = False
    ids: tuple[int, ...] = ()  # only these cases (the batch actions pick cases by id)


def _events() -> QuerySet[CaseEvent]:
    # The id is the order of the hash chain: the order the events really happened in.
    return CaseEvent.objects.select_related("actor").order_by("id")


def _cases() -> QuerySet[RenovationCase]:
    return RenovationCase.objects.select_related(
        "house__household__village__parent", "house__household__key_group"
    )


def case_list(*, user, filters: CaseFilters | None = None) -> QuerySet[RenovationCase]:
    """The cases in the user's regions, newest first, filtered."""
    filters = filters or CaseFilters()
    qs = scope(_cases(), user, CASE_SCOPE)
    if filters.state:
        qs = qs.filter(state=filters.state)
    if filters.township:
        qs = qs.filter(house__household__village__code__startswith=filters.township)
    if filters.funding_year is not None:
        qs = qs.filter(funding_year=filters.funding_year)
    if filters.overdue:
        qs = overdue_cases(qs)
    if filters.ids:
        qs = qs.filter(pk__in=filters.ids)
    return qs.order_by("-created_at", "-id")


def case_state_counts(*, user, filters: CaseFilters | None = None) -> list[dict]:
    """How many of the user's cases (under the other filters) are in each state, in chain
    order: [{"state", "label", "count"}], states with none left out. One GROUP BY."""
    filters = replace(filters or CaseFilters(), state="")
    rows = case_list(user=user, filters=filters).order_by().values("state").annotate(n=Count("id"))
    counts = {row["state"]: row["n"] for row in rows}
    return [
        {"state": state, "label": label, "count": counts[state]}
        for state, label in CaseState.choices
        if counts.get(state)
    ]


def case_detail_queryset() -> QuerySet[RenovationCase]:
    """Cases with everything one case's page and API answer show, joined (not scoped: the
    callers scope it, or check can_view_case on what it finds), and the id of the
    completion visit the case would be judged on (renovation.evidence.completion_visit)."""
    return (
        _cases()
        .select_related(
            "entry_appraisal__inspection__inspector",
            "subsidy_standard__key_group",
            "works_inspector",
            "completion_inspection__inspector",
            "completion_inspection__appraisal",
            "created_by",
        )
        .annotate(latest_completion_visit_id=latest_completion_visit_id())
    )


def case_payments_attach(case: RenovationCase) -> RenovationCase:
    """Load the case's payments into `case.payments.all()`. A case with nothing paid has
    none to read: every payment adds to paid_total in the transaction that records it."""
    if case.paid_total > 0:
        prefetch_related_objects(
            [case], Prefetch("payments", queryset=Payment.objects.select_related("recorded_by"))
        )
    else:
        cache = case.__dict__.setdefault("_prefetched_objects_cache", {})
        cache["payments"] = Payment.objects.none()
    return case


def case_get(*, user, pk: int) -> RenovationCase:
    """One case with everything its page shows, or 404 when absent or out of scope."""
    case = scope(case_detail_queryset(), user, CASE_SCOPE).filter(pk=pk).first()
    if case is None:
        raise Http404("No such case.")
    return case_payments_attach(case)


def case_timeline(*, case: RenovationCase) -> list[CaseEvent]:
    """The case's events with their actors, in the order they happened."""
    return list(_events().filter(case=case))


def household_cases(*, user, household: Household) -> list[RenovationCase]:
    """The household's cases (all its houses, newest first), each with its timeline.

    Each case carries `timeline` (its events in order, with actors). An empty list when the
    household is out of scope, so a page can include this without a second check.
    """
    qs = scope(_cases(), user, CASE_SCOPE).filter(house__household=household)
    cases = list(
        qs.prefetch_related(Prefetch("events", queryset=_events(), to_attr="timeline")).order_by(
            "-created_at", "-id"
        )
    )
    return cases


def completion_inspections(*, user, case: RenovationCase) -> QuerySet[Inspection]:
    """The completion checks of the case's house, newest first: what a completion check picks."""
    qs = scope(
        Inspection.objects.select_related("inspector", "appraisal"),
        user,
        "house__household__village__code",
    )
    return qs.filter(house=case.house, kind=InspectionKind.COMPLETION).order_by(
        "-started_at", "-id"
    )


@dataclass
class VisitChoice:
    """A completion visit the check may be judged on, as the case page offers it.

    flags: the flags not yet acknowledged of the visit's own photos that the check relies
    on when judged on this visit (beyond the after-photos every visit shares); problem: why
    the check cannot pass on this visit ("" when it can)."""

    inspection: Inspection
    flags: list[FlagCheck]
    problem: str = ""
    selected: bool = False


@dataclass
class CompletionChoices:
    """The visits a completion check may pick: `usable` (the default first, as the service
    picks it: renovation.evidence.completion_visit) and `unusable` (each with its problem),
    and `shared`: the flags not yet acknowledged that the check relies on whichever visit
    it picks (the after-photos of the required slots)."""

    usable: list[VisitChoice]
    unusable: list[VisitChoice]
    shared: list[FlagCheck]


def completion_choices(*, user, case: RenovationCase) -> CompletionChoices:
    """What passing the completion check offers: the house's completion visits with an
    appraisal made after the entry appraisal (those renovation.evidence.completion_visits
    picks the default from), each judged by the step's own check (grade, inspectors,
    separation of duties), and the flags the check would rely on for each, split as
    renovation.evidence.step_photos splits them: the after-photos of the required slots
    (any visit) and the chosen visit's own photos. A fixed number of queries."""
    step = STEPS["pass_completion"]
    after = case.entry_appraisal.inspection.started_at
    visits = list(
        completion_inspections(user=user, case=case).filter(
            appraisal__isnull=False, started_at__gt=after
        )
    )
    angles = set(
        RequiredPhotoSlot.objects.filter(kind=InspectionKind.COMPLETION, stage="after").values_list(
            "angle", flat=True
        )
    )
    in_shared = Q(stage="after", angle__in=angles)
    flagged = list(
        Photo.objects.filter(inspection__house_id=case.house_id)
        .filter(in_shared | Q(inspection_id__in=[v.pk for v in visits]))
        .exclude(status=PhotoStatus.FAILED)
        .exclude(flags=[])
        .order_by("inspection__started_at", "stage", "angle", "id")
    )
    acknowledged = acknowledgements_of(case) if flagged else {}

    def pending(photos) -> list[FlagCheck]:
        return [c for c in flag_checks(photos, acknowledged) if not c.acknowledged]

    shared = [p for p in flagged if p.stage == "after" and p.angle in angles]
    usable, unusable = [], []
    for visit in visits:
        own = [p for p in flagged if p.inspection_id == visit.pk and p not in shared]
        problem = step_problem(
            user=user, case=case, step=step, reason="(asked on the form)", inspection=visit
        )
        choice = VisitChoice(visit, pending(own), "" if problem is None else str(problem.message))
        (unusable if problem is not None else usable).append(choice)
    return CompletionChoices(usable=usable, unusable=unusable, shared=pending(shared))


def acknowledgements_for_visit(
    *, case: RenovationCase, action: str, inspection, acknowledgements: list[dict]
) -> list[dict]:
    """The acknowledgements a case page sent with a step, less those of flags on another
    completion visit's photos that the step does not rely on: the page offers them for the
    other visits the check could pick (completion_choices), and a browser without scripts
    sends them all. Any other acknowledgement (a photo of the chosen visit, one the step
    does not rely on at all) is left for the service to judge."""
    if action != "pass_completion" or not acknowledgements:
        return acknowledgements
    visit = completion_visit(case, inspection)
    if visit is None:
        return acknowledgements
    relied = {(c.key, c.code) for c in step_flag_checks(case, action, visit)}
    keys = {photo_key(a.get("photo")) for a in acknowledgements} - {None}
    elsewhere = {
        str(key)
        for key in Photo.objects.filter(
            inspection__house_id=case.house_id,
            inspection__kind=InspectionKind.COMPLETION,
            key__in=keys,
        )
        .exclude(inspection_id=visit.pk)
        .values_list("key", flat=True)
    }
    return [
        a
        for a in acknowledgements
        if (key := photo_key(a.get("photo"))) not in elsewhere
        or (key, str(a.get("flag") or "").strip()) in relied
    ]


def township_list(*, user) -> QuerySet[Region]:
    """The townships in the user's regions, for the case list's filter."""
    return scope(Region.objects.filter(level=RegionLevel.TOWNSHIP), user, "code").order_by("code")


# The states in which the works have started (or were, for a case withdrawn during them):
# after-photos are due from then on, and shown "due after the works" before.
AFTER_WORKS_STATES = {
    CaseState.WORKS_STARTED,
    CaseState.WORKS_FINISHED,
    CaseState.COMPLETION_PASSED,
    CaseState.PAID,
}


def after_photos_due(case: RenovationCase) -> bool:
    return case.state in AFTER_WORKS_STATES or case.works_inspector_id is not None


@dataclass
class PhotoFlags:
    """A flagged photo of the checklist, with each of its flags (renovation.evidence)."""

    photo: object
    flags: list[FlagCheck]

    @property
    def pending(self) -> bool:
        return any(not check.acknowledged for check in self.flags)


def _flagged(checks: list[FlagCheck]) -> list[PhotoFlags]:
    by_photo: dict[int, PhotoFlags] = {}
    for check in checks:
        by_photo.setdefault(check.photo.pk, PhotoFlags(check.photo, [])).flags.append(check)
    return list(by_photo.values())


def _pending_angles(flagged: list[PhotoFlags], stage: str) -> set[str]:
    return {f.photo.angle for f in flagged if f.pending and f.photo.stage == stage}


def case_evidence(*, case: RenovationCase, inspection=None, just_loaded: bool = False) -> dict:
    """The evidence checklist of a case.

    {"before": {"present": [Slot], "missing": [Slot], "due": True,  # appraisal, before stage
                "flagged": [PhotoFlags], "pending": {angle}},
     "after": {... the same, "due": bool},                        # completion, after stage
     "completion": {"inspection": Inspection | None, "grade": "A" | ... | None,
                    "inspector": User | None, "works_inspector": User | None,
                    "different_person": bool | None, "acceptable": bool,
                    "flagged": [PhotoFlags]}}
    "flagged": the photos the steps rely on that carry evidence flags, each flag with its
    acknowledgement on this case (if any); "pending": the angles of the present slots with a
    flag not yet acknowledged (not a plain ✓ on the checklist). "due": False for the
    after-photos until the works start (not missing yet). "different_person" is None while
    no one supervises the works yet. just_loaded: the case comes from case_get or a service
    in this request (see renovation.evidence.completion_visit).
    """
    before, after = (InspectionKind.APPRAISAL, "before"), (InspectionKind.COMPLETION, "after")
    slots = photo_slots_of(case, [before, after])
    before_present, before_missing = slots[before]
    after_present, after_missing = slots[after]
    visit = completion_visit(case, inspection, just_loaded=just_loaded)
    appraisal = getattr(visit, "appraisal", None) if visit is not None else None
    grade = appraisal.grade if appraisal is not None else None
    different = None
    if visit is not None and case.works_inspector_id is not None:
        different = visit.inspector_id != case.works_inspector_id

    # The flagged photos of each part, each photo once: one query for the house's flagged
    # photos, sorted here by what each step reads (renovation.evidence.step_photos): the
    # required slots (those photo_slots_of just listed), the entry appraisal's visit, the
    # completion visit.
    flagged = list(
        Photo.objects.filter(inspection__house_id=case.house_id)
        .exclude(status=PhotoStatus.FAILED)
        .exclude(flags=[])
        .order_by("inspection__started_at", "stage", "angle", "id")
    )
    acknowledged = acknowledgements_of(case) if flagged else {}
    before_angles = {slot.angle for slot in before_present + before_missing}
    after_angles = {slot.angle for slot in after_present + after_missing}
    entry_visit = case.entry_appraisal.inspection_id
    visit_id = visit.pk if visit is not None else None
    in_before = [
        p
        for p in flagged
        if (p.stage == "before" and p.angle in before_angles) or p.inspection_id == entry_visit
    ]
    in_after = [p for p in flagged if p.stage == "after" and p.angle in after_angles]
    in_visit = [p for p in flagged if p.inspection_id == visit_id and p not in in_after]
    flagged_before = _flagged(flag_checks(in_before, acknowledged))
    flagged_after = _flagged(flag_checks(in_after, acknowledged))
    visit_flagged = _flagged(flag_checks(in_visit, acknowledged))
    return {
        "before": {
            "present": before_present,
            "missing": before_missing,
            "due": True,
            "flagged": flagged_before,
            "pending": _pending_angles(flagged_before, "before"),
        },
        "after": {
            "present": after_present,
            "missing": after_missing,
            "due": after_photos_due(case),
            "flagged": flagged_after,
            "pending": _pending_angles(flagged_after, "after"),
        },
        "completion": {
            "inspection": visit,
            "grade": grade,
            "inspector": visit.inspector if visit is not None else None,
            "works_inspector": case.works_inspector,
            "different_person": different,
            "acceptable": grade in ("A", "B") and different is not False,
            "flagged": visit_flagged,
        },
    }


def available_actions(*, user, case: RenovationCase) -> list[dict]:
    """The steps that start from the case's current state, each as
    {"action", "label", "allowed": bool, "reason": str, "flags": [FlagCheck]} (reason ""
    when allowed; flags: the evidence flags the step relies on that are not acknowledged
    yet, to acknowledge with the step): the page shows the allowed ones as buttons and the
    others' reasons (why the next step is not yet possible, or whose step it is). Steps the
    user's role may never take say so too. The reason, the review opinion, the confirmation
    and the acknowledgements are asked on the form, so they do not block the button.
    """
    result = []
    visible = can_view_case(user, case)
    for step in STEPS.values():
        if case.state not in step.from_states:
            continue
        if step.name == "pay" and case.paid_total >= case.subsidy_amount:
            continue
        problem = None if visible else CaseForbidden()
        if problem is None:
            problem = step_problem(user=user, case=case, step=step, reason="(asked on the form)")
        flags = []
        if problem is None and step.name in FLAG_STEPS:
            flags = unacknowledged_flags(case, step.name)
        result.append(
            {
                "action": step.name,
                "label": str(step.label),
                "allowed": problem is None,
                "reason": "" if problem is None else str(problem.message),
                "flags": flags,
            }
        )
    return result


def next_steps_note(*, user, case: RenovationCase, actions: list[dict]) -> str:
    """What the case page says when the user has no step to take on the case now: closed
    only when it is; a case waiting for its payment says so, with its deadline and who
    records payments; "" otherwise (the page lists the steps, or whose they are)."""
    if case.state not in OPEN_STATES:
        return _("No further steps: this case is closed (%(state)s).") % {
            "state": case.get_state_display()
        }
    if any(a["allowed"] for a in actions):
        return ""
    pay = STEPS["pay"]
    remaining = case.subsidy_amount - case.paid_total
    if case.state != CaseState.COMPLETION_PASSED or remaining <= 0 or role_may(user, pay):
        return ""
    due = payment_due_date(case)
    roles = ", ".join(str(Role(r).label) for r in sorted(pay.roles))
    params = {"amount": number(remaining), "roles": roles}
    if due is None:
        message = _("Awaiting payment of %(amount)s yuan; payments are recorded by: %(roles)s.")
    elif is_overdue(case):
        params["date"] = (due + datetime.timedelta(days=1)).isoformat()
        message = _(
            "Awaiting payment of %(amount)s yuan, overdue since %(date)s; payments are "
            "recorded by: %(roles)s."
        )
    else:
        params["date"] = due.isoformat()
        message = _(
            "Awaiting payment of %(amount)s yuan, due by %(date)s; payments are recorded by: "
            "%(roles)s."
        )
    return message % params
