"""Every user-facing read of renovation cases. Each takes the user and applies region scoping.

A case belongs to the region of its house's household: out of the user's regions it is a
404, never a leak. Lists come with what their pages and serializers need already joined or
prefetched, so rendering costs a fixed number of queries whatever the number of rows.
"""

from dataclasses import dataclass, replace

from django.db.models import Count, Prefetch, QuerySet, prefetch_related_objects
from django.http import Http404

from accounts.scoping import scope
from housing.models import Household, Region, RegionLevel
from inspections.models import Inspection, InspectionKind
from renovation.errors import CaseForbidden
from renovation.evidence import completion_visit, latest_completion_visit_id, photo_slots_of
from renovation.models import CaseEvent, CaseState, Payment, RenovationCase
from renovation.permissions import can_view_case
from renovation.rules import overdue_cases
from renovation.workflow import STEPS, step_problem

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


def township_list(*, user) -> QuerySet[Region]:
    """The townships in the user's regions, for the case list's filter."""
    return scope(Region.objects.filter(level=RegionLevel.TOWNSHIP), user, "code").order_by("code")


def case_evidence(*, case: RenovationCase, inspection=None, just_loaded: bool = False) -> dict:
    """The evidence checklist of a case.

    {"before": {"present": [Slot], "missing": [Slot]},     # appraisal kind, before stage
     "after": {"present": [Slot], "missing": [Slot]},      # completion kind, after stage
     "completion": {"inspection": Inspection | None, "grade": "A" | ... | None,
                    "inspector": User | None, "works_inspector": User | None,
                    "different_person": bool | None, "acceptable": bool}}
    "different_person" is None while no one supervises the works yet.
    just_loaded: the case comes from case_get or a service in this request (see
    renovation.evidence.completion_visit).
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
    return {
        "before": {"present": before_present, "missing": before_missing},
        "after": {"present": after_present, "missing": after_missing},
        "completion": {
            "inspection": visit,
            "grade": grade,
            "inspector": visit.inspector if visit is not None else None,
            "works_inspector": case.works_inspector,
            "different_person": different,
            "acceptable": grade in ("A", "B") and different is not False,
        },
    }


def available_actions(*, user, case: RenovationCase) -> list[dict]:
    """The steps that start from the case's current state, each as
    {"action", "label", "allowed": bool, "reason": str} ("" when allowed): the page shows
    the allowed ones as buttons and the others' reasons (why the next step is not yet
    possible, or whose step it is). Steps the user's role may never take say so too.
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
            # Reasons are asked for on the form, so they do not block the button.
            problem = step_problem(user=user, case=case, step=step, reason="(asked on the form)")
        result.append(
            {
                "action": step.name,
                "label": str(step.label),
                "allowed": problem is None,
                "reason": "" if problem is None else str(problem.message),
            }
        )
    return result
