"""What a case's steps are judged on: the house's photo slots, its completion check, and
the evidence flags of the photos a step relies on.

Plain reads, shared by the workflow's evidence checks (renovation.workflow), the services
(renovation.services: a step that relies on flagged photos needs each flag acknowledged)
and the evidence checklist the pages and the API show (renovation.selectors.case_evidence).
"""

import uuid
from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils.translation import gettext as _

from inspections.evidence import flag_detail
from inspections.models import (
    Inspection,
    InspectionKind,
    Photo,
    PhotoFlag,
    PhotoStatus,
    RequiredPhotoSlot,
)
from inspections.selectors import ANGLE_ORDER, STAGE_ORDER, Slot
from renovation.models import CaseEvent, CaseEventKind, RenovationCase

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


# ---------------------------------------------------------------------------------------
# Evidence flags: which photos an approving step relies on, and which of their flags an
# official has acknowledged on this case (a CaseEvent of kind ACKNOWLEDGE each).

# The steps that approve on the strength of photos, and what they read:
#   county_approve   the entry appraisal visit's photos (the house judged C or D)
#   start_works      the before-photos of the required appraisal slots
#   finish_works     the after-photos of the required completion slots
#   pass_completion  the after-photos, and the photos of the completion visit judged
FLAG_STEPS = ("county_approve", "start_works", "finish_works", "pass_completion")


def _usable() -> QuerySet[Photo]:
    return Photo.objects.exclude(status=PhotoStatus.FAILED)


def _in_required_slots(case: RenovationCase, kind: str, stage: str) -> Q:
    required = RequiredPhotoSlot.objects.filter(kind=kind, stage=stage, angle=OuterRef("angle"))
    return Q(inspection__house_id=case.house_id, stage=stage) & Q(Exists(required))


def step_photos(case: RenovationCase, step_name: str, inspection=None) -> QuerySet[Photo]:
    """The usable photos the step relies on (none for a step that reads no photos)."""
    if step_name == "county_approve":
        which = Q(inspection_id=case.entry_appraisal.inspection_id)
    elif step_name == "start_works":
        which = _in_required_slots(case, InspectionKind.APPRAISAL, "before")
    elif step_name == "finish_works":
        which = _in_required_slots(case, InspectionKind.COMPLETION, "after")
    elif step_name == "pass_completion":
        which = _in_required_slots(case, InspectionKind.COMPLETION, "after")
        visit = completion_visit(case, inspection)
        if visit is not None:
            which |= Q(inspection_id=visit.pk)
    else:
        return Photo.objects.none()
    return _usable().filter(which).order_by("inspection__started_at", "stage", "angle", "id")


def acknowledgements_of(case: RenovationCase) -> dict[tuple[str, str], CaseEvent]:
    """The case's acknowledged flags: (photo key, flag code) -> the acknowledging event.
    A flag acknowledged once stays acknowledged for the case."""
    events = (
        CaseEvent.objects.filter(case=case, kind=CaseEventKind.ACKNOWLEDGE)
        .select_related("actor")
        .order_by("id")
    )
    found: dict[tuple[str, str], CaseEvent] = {}
    for event in events:
        found.setdefault((str(event.data.get("photo")), str(event.data.get("flag"))), event)
    return found


def flag_label(code: str) -> str:
    return str(PhotoFlag(code).label) if code in PhotoFlag.values else code


@dataclass
class FlagCheck:
    """One evidence flag (by its code) of one photo, and its acknowledgement on the case."""

    photo: Photo
    code: str
    details: list[str] = field(default_factory=list)
    acknowledgement: CaseEvent | None = None

    @property
    def key(self) -> str:
        return str(self.photo.key)

    @property
    def label(self) -> str:
        return flag_label(self.code)

    @property
    def detail(self) -> str:
        return " ".join(d for d in self.details if d)

    @property
    def acknowledged(self) -> bool:
        return self.acknowledgement is not None

    def named(self) -> str:
        """How a message names it: the photo's slot, its key and the flag."""
        return _("%(angle)s (%(stage)s), photo %(key)s: %(flag)s") % {
            "angle": self.photo.get_angle_display(),
            "stage": self.photo.get_stage_display(),
            "key": self.key,
            "flag": self.label,
        }


def flag_checks(photos, acknowledged: dict[tuple[str, str], CaseEvent]) -> list[FlagCheck]:
    """A FlagCheck for each distinct flag code of each photo, in the photos' order."""
    checks = []
    for photo in photos:
        by_code: dict[str, FlagCheck] = {}
        for flag in photo.flags or []:
            code = str(flag.get("code", ""))
            if not code:
                continue
            if code not in by_code:
                by_code[code] = FlagCheck(
                    photo=photo, code=code, acknowledgement=acknowledged.get((str(photo.key), code))
                )
                checks.append(by_code[code])
            by_code[code].details.append(flag_detail(flag))
    return checks


def step_flag_checks(case: RenovationCase, step_name: str, inspection=None) -> list[FlagCheck]:
    """The flags of the photos the step relies on, each with its acknowledgement (if any)."""
    if step_name not in FLAG_STEPS:
        return []
    photos = list(step_photos(case, step_name, inspection).exclude(flags=[]))
    if not photos:
        return []
    return flag_checks(photos, acknowledgements_of(case))


def unacknowledged_flags(case: RenovationCase, step_name: str, inspection=None) -> list[FlagCheck]:
    """What an official must acknowledge, with a reason, before taking the step."""
    return [c for c in step_flag_checks(case, step_name, inspection) if not c.acknowledged]


def photo_key(value) -> str | None:
    """A photo key as stored (canonical UUID text), or None for anything else."""
    try:
        return str(uuid.UUID(str(value).strip()))
    except (TypeError, ValueError, AttributeError):
        return None
