"""What a case's steps are judged on: the house's photo slots and its completion check.

Plain reads, shared by the workflow's evidence checks (renovation.workflow) and the
evidence checklist the pages and the API show (renovation.selectors.case_evidence).
"""

from inspections.models import Inspection, InspectionKind, Photo, PhotoStatus
from inspections.selectors import Slot, required_slots
from renovation.models import RenovationCase


def slot_names(slots) -> str:
    return ", ".join(str(slot.angle_label) for slot in slots)


def photo_slots(case: RenovationCase, kind: str, stage: str) -> tuple[list[Slot], list[Slot]]:
    """(present, missing) of the required `kind` slots of `stage`, from any usable photo of
    the case's house with that stage and angle."""
    required = [Slot(*s) for s in required_slots().get(kind, []) if s[0] == stage]
    have = set(
        Photo.objects.filter(inspection__house_id=case.house_id, stage=stage)
        .exclude(status=PhotoStatus.FAILED)
        .values_list("angle", flat=True)
    )
    present = [s for s in required if s.angle in have]
    missing = [s for s in required if s.angle not in have]
    return present, missing


def completion_visit(case: RenovationCase, inspection=None) -> Inspection | None:
    """The completion-check visit the case is judged on: the one given, else the house's
    latest completion visit with an appraisal made after the entry appraisal."""
    if inspection is not None:
        return inspection
    return (
        Inspection.objects.filter(
            house_id=case.house_id,
            kind=InspectionKind.COMPLETION,
            appraisal__isnull=False,
            started_at__gt=case.entry_appraisal.inspection.started_at,
        )
        .select_related("appraisal", "inspector")
        .order_by("-started_at", "-id")
        .first()
    )
