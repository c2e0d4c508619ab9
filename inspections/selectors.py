"""Every user-facing read of inspections and photos. Each takes the user and applies scoping.

Out of the user's regions is a 404 (Http404), never a leak. Lists come with what their
serializers and templates need already joined or prefetched, so rendering costs a fixed
number of queries whatever the number of rows.
"""

import uuid
from dataclasses import dataclass, field

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from accounts.permissions import can_view_household
from accounts.scoping import scope
from housing.models import Household
from inspections.models import (
    Inspection,
    InspectionKind,
    Photo,
    PhotoAngle,
    PhotoStage,
    PhotoStatus,
    RequiredPhotoSlot,
)

INSPECTION_SCOPE = "house__household__village__code"
PHOTO_SCOPE = "inspection__house__household__village__code"

# Stages in the order of the works: the household file shows them left to right.
STAGE_ORDER = [stage for stage, _label in PhotoStage.choices]
ANGLE_ORDER = [angle for angle, _label in PhotoAngle.choices]


def _photos_newest_first() -> QuerySet[Photo]:
    # The photo's own inspection is joined so that serializing a photo (its inspection's
    # client UUID, the permission checks on it) costs no query per photo.
    return Photo.objects.select_related("inspection__house__household__village").order_by(
        "-inspection__started_at", "-created_at", "-id"
    )


def _inspections() -> QuerySet[Inspection]:
    return Inspection.objects.select_related(
        "house__household__village", "inspector", "appraisal"
    ).prefetch_related(Prefetch("photos", queryset=_photos_newest_first()))


def inspection_list(*, user, household_id: int | None = None) -> QuerySet[Inspection]:
    """Inspections in the user's regions, newest visit first; optionally of one household."""
    qs = scope(_inspections(), user, INSPECTION_SCOPE)
    if household_id is not None:
        qs = qs.filter(house__household_id=household_id)
    return qs.order_by("-started_at", "-id")


def inspection_get_by_client_uuid(*, user, client_uuid: uuid.UUID | str) -> Inspection:
    """One inspection by the UUID its phone gave it, or 404 when absent or out of scope."""
    inspection = (
        scope(_inspections(), user, INSPECTION_SCOPE).filter(client_uuid=client_uuid).first()
    )
    if inspection is None:
        raise Http404("No such inspection.")
    return inspection


def photo_list(
    *, user, inspection: Inspection | None = None, household_id: int | None = None
) -> QuerySet[Photo]:
    """Photos in the user's regions, newest first; optionally of one inspection or household."""
    qs = scope(_photos_newest_first(), user, PHOTO_SCOPE)
    if inspection is not None:
        qs = qs.filter(inspection=inspection)
    if household_id is not None:
        qs = qs.filter(inspection__house__household_id=household_id)
    return qs


def required_slots() -> dict[str, list[tuple[str, str]]]:
    """Configuration, not scoped: kind -> the (stage, angle) slots it requires, in order.

    Every kind is a key, with an empty list when it requires nothing. One query.
    """
    slots: dict[str, list[tuple[str, str]]] = {kind: [] for kind in InspectionKind.values}
    rows = RequiredPhotoSlot.objects.values_list("kind", "stage", "angle")
    for kind, stage, angle in sorted(
        rows, key=lambda r: (STAGE_ORDER.index(r[1]), ANGLE_ORDER.index(r[2]))
    ):
        slots.setdefault(kind, []).append((stage, angle))
    return slots


def photo_slot_list(*, user) -> dict[str, list[tuple[str, str]]]:
    """The required photo slots per inspection kind (configuration: the same for everyone)."""
    return required_slots()


def covers_slot(photo: Photo) -> bool:
    """A photo fills its slot unless its processing failed (a file we could not read)."""
    return photo.status != PhotoStatus.FAILED


def missing_slots_of(inspection: Inspection, slots: dict[str, list[tuple[str, str]]]):
    """The (stage, angle) slots the inspection's kind requires that its own photos lack.

    Reads the prefetched photos: no query.
    """
    have = {(p.stage, p.angle) for p in inspection.photos.all() if covers_slot(p)}
    return [slot for slot in slots.get(inspection.kind, []) if slot not in have]


@dataclass(frozen=True)
class Slot:
    stage: str
    angle: str

    @property
    def stage_label(self) -> str:
        return PhotoStage(self.stage).label

    @property
    def angle_label(self) -> str:
        return PhotoAngle(self.angle).label


@dataclass
class KindMissingSlots:
    """For one inspection kind the house has had: the required slots with no photo yet."""

    kind: str
    missing: list[Slot]

    @property
    def label(self) -> str:
        return InspectionKind(self.kind).label


@dataclass
class GridCell:
    stage: str
    photos: list[Photo]  # newest first

    @property
    def label(self) -> str:
        return PhotoStage(self.stage).label


@dataclass
class GridRow:
    """One angle; its cells are the stages in order before, during, after."""

    angle: str
    cells: list[GridCell]

    @property
    def label(self) -> str:
        return PhotoAngle(self.angle).label


@dataclass
class HouseholdEvidence:
    """What the household file shows of inspections and photos.

    - inspections: every visit to any of the household's houses, newest first, each with
      `appraisal` joined (access it with getattr(i, "appraisal", None) or hasattr) and
      `photos.all()` prefetched, newest first;
    - photo_grid: the current house's photos, one GridRow per angle that has a photo or a
      missing slot (in PhotoAngle order), each with one GridCell per stage (before, during,
      after), so before and after sit side by side;
    - stages: the stage codes in the grid's column order, for table headers;
    - missing_slots: per inspection kind the current house has had, in kind order, the
      required slots not covered by any photo of the house with that stage × angle (kinds
      with nothing missing are left out);
    - flagged_photos: how many photos of the current house carry at least one flag;
      flag_count: how many flags they carry in all.
    """

    household: Household
    inspections: list[Inspection]
    photo_grid: list[GridRow]
    missing_slots: list[KindMissingSlots]
    flagged_photos: int
    flag_count: int
    stages: list[str] = field(default_factory=lambda: list(STAGE_ORDER))


def household_evidence(*, user, household: Household) -> HouseholdEvidence:
    """The inspections, photo grid, missing slots and flags of one household.

    404 when the household is out of the user's regions. Three queries (inspections with
    their appraisals, their photos, the slot configuration) plus the houses when they were
    not prefetched.
    """
    if not can_view_household(user, household):
        raise Http404("No such household.")
    inspections = list(inspection_list(user=user).filter(house__household=household))
    house = household.current_house
    house_id = house.pk if house is not None else None
    current = [i for i in inspections if i.house_id == house_id]
    photos = [p for i in current for p in i.photos.all()]  # newest inspection first

    by_slot: dict[tuple[str, str], list[Photo]] = {}
    for photo in photos:
        by_slot.setdefault((photo.stage, photo.angle), []).append(photo)

    slots = required_slots()
    covered = {key for key, items in by_slot.items() if any(covers_slot(p) for p in items)}
    kinds_had = {i.kind for i in current}
    missing = []
    for kind in InspectionKind.values:
        if kind not in kinds_had:
            continue
        lacking = [Slot(*slot) for slot in slots.get(kind, []) if slot not in covered]
        if lacking:
            missing.append(KindMissingSlots(kind=kind, missing=lacking))

    missing_angles = {slot.angle for entry in missing for slot in entry.missing}
    grid = [
        GridRow(
            angle=angle,
            cells=[
                GridCell(stage=stage, photos=by_slot.get((stage, angle), []))
                for stage in STAGE_ORDER
            ],
        )
        for angle in ANGLE_ORDER
        if angle in missing_angles or any((stage, angle) in by_slot for stage in STAGE_ORDER)
    ]
    return HouseholdEvidence(
        household=household,
        inspections=inspections,
        photo_grid=grid,
        missing_slots=missing,
        flagged_photos=sum(1 for p in photos if p.flags),
        flag_count=sum(len(p.flags) for p in photos),
    )
