"""What the field page keeps on a phone for offline use: the villages a user may download and,
per household, the context an inspector wants at the door.

The context of a household is about its current house (as the household file's photo grid):
the grade of that house and the day of the appraisal that gave it, the last visit to it, and
the latest processed photo of each stage × angle. A village's bundle costs the same few
queries whatever its size: the region, the households with their grade and last visit as
correlated subqueries, and the photos of the village in one pass.
"""

import datetime
import uuid
from dataclasses import dataclass, field

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.scoping import code_visible, scope
from housing.bounds import ID_MAX
from housing.models import CODE_LENGTHS, House, Household, Region, RegionLevel
from inspections.models import (
    Appraisal,
    Inspection,
    InspectionKind,
    Photo,
    PhotoStatus,
)
from inspections.selectors import Slot


@dataclass(frozen=True)
class LastVisit:
    date: datetime.date
    kind: str

    @property
    def kind_label(self) -> str:
        return InspectionKind(self.kind).label


@dataclass(frozen=True)
class SlotPhoto(Slot):
    """The latest processed photo of one stage × angle of a house."""

    key: uuid.UUID
    taken_at: datetime.datetime | None


@dataclass
class HouseholdContext:
    id: int
    archive_no: str
    head_name: str
    village: Region
    grade: str | None  # "A".."D"; None when the current house is not appraised (or none)
    lon: float | None
    lat: float | None
    graded_on: datetime.date | None
    last_visit: LastVisit | None
    photos: dict[str, SlotPhoto] = field(default_factory=dict)  # "stage/angle" -> photo


@dataclass
class VillageBundle:
    village: Region
    households: list[HouseholdContext]


def field_village_list(*, user) -> QuerySet[Region]:
    """The villages in the user's regions, by code, each with its township (`parent`) and
    `household_count`. One query."""
    villages = Region.objects.filter(level=RegionLevel.VILLAGE).select_related("parent")
    return (
        scope(villages, user, "code")
        .defer("boundary", "parent__boundary")
        .annotate(household_count=Count("households"))
        .order_by("code")
    )


def _local_date(value: datetime.datetime | None) -> datetime.date | None:
    return None if value is None else timezone.localdate(value)


def _with_context(households: QuerySet[Household]) -> QuerySet[Household]:
    """Households annotated with their current house's grade, the time of the appraisal that
    gave it, and the time and kind of the last visit to that house."""
    current = House.objects.filter(household=OuterRef("pk"), is_current=True)
    # The order that decides the house's grade (services.house_grade_follow_latest).
    appraisals = Appraisal.objects.filter(
        inspection__house__household=OuterRef("pk"), inspection__house__is_current=True
    ).order_by("-inspection__started_at", "-inspection__created_at", "-id")
    visits = Inspection.objects.filter(
        house__household=OuterRef("pk"), house__is_current=True
    ).order_by("-started_at", "-created_at", "-id")
    return (
        households.select_related("village")
        .defer("village__boundary")
        .annotate(
            grade=Subquery(current.values("safety_grade")[:1]),
            graded_at=Subquery(appraisals.values("inspection__started_at")[:1]),
            last_visit_at=Subquery(visits.values("started_at")[:1]),
            last_visit_kind=Subquery(visits.values("kind")[:1]),
        )
        .order_by("archive_no")
    )


def _latest_photos(photos: QuerySet[Photo]) -> dict[int, dict[str, SlotPhoto]]:
    """household id -> "stage/angle" -> the newest processed photo of that slot of the
    household's current house, in one query (newest first by visit, then upload)."""
    rows = (
        photos.filter(status=PhotoStatus.READY, inspection__house__is_current=True)
        .exclude(thumbnail="")
        .order_by(
            "inspection__house__household_id",
            "stage",
            "angle",
            "-inspection__started_at",
            "-created_at",
            "-id",
        )
        .values_list("inspection__house__household_id", "key", "stage", "angle", "taken_at")
    )
    latest: dict[int, dict[str, SlotPhoto]] = {}
    for household_id, key, stage, angle, taken_at in rows:
        slots = latest.setdefault(household_id, {})
        slot = f"{stage}/{angle}"
        if slot not in slots:
            slots[slot] = SlotPhoto(key=key, stage=stage, angle=angle, taken_at=taken_at)
    return latest


def _context(household: Household, photos: dict[str, SlotPhoto]) -> HouseholdContext:
    location = household.location
    visit_at = household.last_visit_at
    return HouseholdContext(
        id=household.pk,
        archive_no=household.archive_no,
        head_name=household.head_name,
        village=household.village,
        grade=household.grade or None,
        lon=None if location is None else location.x,
        lat=None if location is None else location.y,
        graded_on=_local_date(household.graded_at) if household.grade else None,
        last_visit=(
            None
            if visit_at is None
            else LastVisit(date=_local_date(visit_at), kind=household.last_visit_kind)
        ),
        photos=photos,
    )


def field_village_bundle(*, user, code: str) -> VillageBundle:
    """A village's households with their context, or 404 when the village is absent, not a
    village, or outside the user's regions. Three queries (and the user's regions once)."""
    # Only 12 ASCII digits can be a village's code; anything else (a NUL byte, which
    # PostgreSQL refuses in a query) is not found without asking the database.
    if not (len(code) == CODE_LENGTHS[RegionLevel.VILLAGE] and code.isascii() and code.isdigit()):
        raise Http404(_("No such village."))
    village = (
        Region.objects.select_related("parent")
        .defer("boundary", "parent__boundary")
        .filter(code=code, level=RegionLevel.VILLAGE)
        .first()
    )
    if village is None or not code_visible(user, village.code):
        raise Http404(_("No such village."))
    households = list(_with_context(Household.objects.filter(village=village)))
    photos = _latest_photos(Photo.objects.filter(inspection__house__household__village=village))
    return VillageBundle(
        village=village,
        households=[_context(h, photos.get(h.pk, {})) for h in households],
    )


def field_household_context(*, user, pk: int) -> HouseholdContext:
    """One household's context, or 404 when absent or outside the user's regions."""
    if not 1 <= pk <= ID_MAX:
        raise Http404(_("No such household."))
    households = scope(Household.objects.filter(pk=pk), user, "village__code")
    household = _with_context(households).first()
    if household is None:
        raise Http404(_("No such household."))
    photos = _latest_photos(Photo.objects.filter(inspection__house__household_id=pk))
    return _context(household, photos.get(pk, {}))
