"""What a case's steps are judged on: the house's photo slots and its completion check.

Plain reads, shared by the workflow's evidence checks (renovation.workflow) and the
evidence checklist the pages and the API show (renovation.selectors.case_evidence).
"""

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery

from inspections.models import (
    Inspection,
    InspectionKind,
    Photo,
    PhotoStatus,
    RequiredPhotoSlot,
)
from inspections.selectors import ANGLE_ORDER, STAGE_ORDER, Slot
from renovation.models import RenovationCase

Slots = tuple[list[Slot], list[Slot]]  # (present, missing)


def slot_names(slots) -> str:
    return ", ".join(str(slot.angle_label) for slot in slots)


def completion_visits(*, house_id, after) -> QuerySet[Inspection]:
    """The house's completion visits with an appraisal made after `after` (the entry
    appraisal's visit time), newest first. Both may be OuterRefs, for a subquery."""
    return Inspection.objects.filter(
        house_id=house_id,
        kind=InspectionKind.COMPLETION,
        appraisal__isnull=False,
        started_at__gt=after,
    ).order_by("-started_at", "-id")


def latest_completion_visit_id() -> Subquery:
    """For a RenovationCase queryset: the id of the visit completion_visit would pick."""
    visits = completion_visits(
        house_id=OuterRef("house_id"), after=OuterRef("entry_appraisal__inspection__started_at")
    )
    return Subquery(visits.values("id")[:1])


def photo_slots_of(case: RenovationCase, wanted: list[tuple[str, str]]) -> dict[tuple, Slots]:
    """For each (inspection kind, stage) wanted: (present, missing) of the slots that kind
    requires at that stage, present when any usable photo of the case's house has that
    stage and angle. One query, whatever the number wanted."""
    usable = Photo.objects.filter(
        inspection__house_id=case.house_id, stage=OuterRef("stage"), angle=OuterRef("angle")
    ).exclude(status=PhotoStatus.FAILED)
    which = Q(pk__in=[])
    for kind, stage in wanted:
        which |= Q(kind=kind, stage=stage)
    rows = (
        RequiredPhotoSlot.objects.filter(which)
        .annotate(present=Exists(usable))
        .values_list("kind", "stage", "angle", "present")
    )
    result: dict[tuple, Slots] = {pair: ([], []) for pair in wanted}
    for kind, stage, angle, present in sorted(
        rows, key=lambda r: (STAGE_ORDER.index(r[1]), ANGLE_ORDER.index(r[2]))
    ):
        result[(kind, stage)][0 if present else 1].append(Slot(stage, angle))
    return result


def photo_slots(case: RenovationCase, kind: str, stage: str) -> Slots:
    """(present, missing) of the required `kind` slots of `stage` (see photo_slots_of)."""
    return photo_slots_of(case, [(kind, stage)])[(kind, stage)]


def completion_visit(
    case: RenovationCase, inspection=None, *, just_loaded: bool = False
) -> Inspection | None:
    """The completion-check visit the case is judged on: the one given, else the house's
    latest completion visit with an appraisal made after the entry appraisal.

    just_loaded: the case was loaded by renovation.selectors.case_detail_queryset in this
    request, so its `latest_completion_visit_id` is current: no visit costs no query. (A
    case object kept while visits are recorded would hold a stale id: not by default.)"""
    if inspection is not None:
        return inspection
    if just_loaded and hasattr(case, "latest_completion_visit_id"):
        if case.latest_completion_visit_id is None:
            return None
        visits = Inspection.objects.filter(pk=case.latest_completion_visit_id)
    else:
        after = case.entry_appraisal.inspection.started_at
        visits = completion_visits(house_id=case.house_id, after=after)
    return visits.select_related("appraisal", "inspector").first()
