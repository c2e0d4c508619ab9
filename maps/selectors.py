"""Reads for the maps and the dashboard: figures per region from MapCell in one GROUP BY,
and the popup card of one household."""

from dataclasses import dataclass, field

from django.contrib.gis.db.models.functions import PointOnSurface
from django.contrib.gis.geos import Point
from django.db.models import Count, F, QuerySet, Sum
from django.db.models.functions import Substr

from accounts.scoping import scope
from housing.models import Household, Region
from housing.selectors import region_list
from inspections.models import Photo, PhotoStatus
from maps.filters import MapFilters
from maps.legend import GRADE_KEY, GRADES, STAGE_OF_STATE, STAGES
from maps.models import MapCell, MapPoint
from renovation import money
from renovation.models import CaseState, RenovationCase
from renovation.money import Money
from renovation.rules import overdue_cases


@dataclass
class RegionFigures:
    """Counts for one region (or a whole parent): households by grade and by case stage."""

    region: Region | None
    households: int = 0
    located: int = 0
    grades: dict[str, int] = field(default_factory=dict)  # legend key -> n
    stages: dict[str, int] = field(default_factory=dict)  # legend key -> n
    states: dict[str, int] = field(default_factory=dict)  # CaseState value -> n
    overdue: int = 0

    @property
    def dilapidated(self) -> int:
        return self.grades.get("C", 0) + self.grades.get("D", 0)

    @property
    def appraised(self) -> int:
        return self.households - self.grades.get("none", 0)

    @property
    def dilapidated_share(self) -> float | None:
        return self.dilapidated / self.appraised if self.appraised else None

    @property
    def cases(self) -> int:
        """Households whose latest case is open or done (rejected and withdrawn left out)."""
        return sum(n for key, n in self.stages.items() if key not in ("none", "closed"))

    @property
    def completed(self) -> int:
        return self.stages.get("completed", 0)

    @property
    def completion(self) -> float | None:
        return self.completed / self.cases if self.cases else None

    def add(self, other: "RegionFigures") -> None:
        self.households += other.households
        self.located += other.located
        self.overdue += other.overdue
        for mine, theirs in (
            (self.grades, other.grades),
            (self.stages, other.stages),
            (self.states, other.states),
        ):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n


def _empty(region: Region | None) -> RegionFigures:
    return RegionFigures(
        region=region,
        grades={c.key: 0 for c in GRADES},
        stages={c.key: 0 for c in STAGES},
        states={s: 0 for s, _label in CaseState.choices},
    )


def child_regions(*, user, region: Region) -> list[Region]:
    return list(region_list(user=user).filter(parent=region).order_by("code"))


def region_label_points(regions: list[Region]) -> dict[int, Point]:
    """Where each region's name goes on a map: a point inside its boundary (ST_PointOnSurface,
    never outside it as a centroid may be for a crescent-shaped township), by region id.
    One query; regions without a boundary are left out. The regions are the caller's, already
    scoped."""
    ids = [r.pk for r in regions if r.boundary is not None and not r.boundary.empty]
    if not ids:
        return {}
    rows = (
        Region.objects.filter(pk__in=ids)
        .annotate(label_point=PointOnSurface("boundary"))
        .values_list("pk", "label_point")
    )
    return {pk: point for pk, point in rows if point is not None}


def region_figures(
    *, user, region: Region, filters: MapFilters | None = None, today=None
) -> tuple[RegionFigures, list[RegionFigures]]:
    """The region's own figures and its children's, in the user's scope.

    Two GROUP BYs whatever the number of households: MapCell's per-village counts
    (_counted), and overdue cases by child code prefix. A village has no children; its own
    figures come from the same queries.
    """
    filters = filters or MapFilters()
    children = child_regions(user=user, region=region)
    child_len = len(children[0].code) if children else len(region.code)
    by_code = _counted(
        user=user, region=region, children=children, child_len=child_len, filters=filters
    )

    cases = _matching_cases(user=user, region=region, filters=filters)
    overdue = (
        overdue_cases(cases, today=today)
        .annotate(child=Substr("house__household__village__code", 1, child_len))
        .values("child")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in overdue:
        figures = by_code.get(row["child"]) or by_code.setdefault(row["child"], _empty(None))
        figures.overdue += row["n"]

    total = _empty(region)
    for figures in by_code.values():
        total.add(figures)
    listed = [by_code[c.code] for c in children] if children else []
    return total, listed


def _matching_cases(*, user, region: Region, filters: MapFilters) -> QuerySet[RenovationCase]:
    """The user's cases under the region whose household matches the filters (which read
    the household's latest case: every case of a matching household counts)."""
    cases = scope(
        RenovationCase.objects.filter(house__household__village__code__startswith=region.code),
        user,
        "house__household__village__code",
    )
    if filters.active:
        cases = cases.filter(
            house__household_id__in=filters.apply(MapPoint.objects.all()).values("pk")
        )
    return cases


def region_money(
    *,
    user,
    region: Region,
    children: list[RegionFigures],
    filters: MapFilters | None = None,
    today=None,
) -> tuple[Money, list[Money]]:
    """Subsidy allocated, paid and overdue (renovation.money) for the region and for each of
    `children` (region_figures' child rows, in their order), counting the cases of the
    households that match the filters. One query."""
    filters = filters or MapFilters()
    return money.region_money(
        user=user,
        region=region,
        children=[c.region for c in children],
        cases=_matching_cases(user=user, region=region, filters=filters),
        today=today,
    )


def _counted(
    *, user, region: Region, children: list[Region], child_len: int, filters: MapFilters
) -> dict[str, RegionFigures]:
    """Households of each child region (or of the region itself, without children) by
    grade and case state: one GROUP BY on MapCell's region level, where households are
    pre-counted per village, grade, state, key group and year, so it sums a few thousand
    rows however many households there are."""
    cells = scope(
        MapCell.objects.filter(level=MapCell.REGION_LEVEL, region_code__startswith=region.code),
        user,
        "region_code",
    ).filter(filters.cell_q())
    rows = (
        cells.annotate(child=Substr("region_code", 1, child_len))
        .values("child", "grade", "case_state")
        .annotate(households=Sum("n"), with_location=Sum("located"))
        .order_by()
    )
    by_code = {c.code: _empty(c) for c in children} if children else {region.code: _empty(region)}
    for row in rows:
        figures = by_code.get(row["child"])
        if figures is None:  # a village whose township row is missing: count it in the total
            figures = by_code.setdefault(row["child"], _empty(None))
        n = row["households"] or 0
        figures.households += n
        figures.located += row["with_location"] or 0
        figures.grades[GRADE_KEY.get(row["grade"], "none")] += n
        figures.stages[STAGE_OF_STATE.get(row["case_state"], "none")] += n
        if row["case_state"]:
            figures.states[row["case_state"]] = figures.states.get(row["case_state"], 0) + n
    return by_code


MEASURES = ["dilapidated", "dilapidated_share", "cases", "completion"]


def measure_value(figures: RegionFigures, measure: str) -> float | None:
    if measure == "dilapidated_share":
        return figures.dilapidated_share
    if measure == "cases":
        return figures.cases
    if measure == "completion":
        return figures.completion
    return figures.dilapidated


def household_popup(*, user, household: Household) -> dict:
    """What the map's popup shows: the household (already scoped by the caller), its current
    house's grade, its latest case and its latest ready photo's thumbnail."""
    house = household.current_house
    case = (
        RenovationCase.objects.filter(house__household=household)
        .order_by("-created_at", "-id")
        .first()
    )
    photo = (
        Photo.objects.filter(inspection__house__household=household, status=PhotoStatus.READY)
        .exclude(thumbnail="")
        .order_by(F("taken_at").desc(nulls_last=True), "-created_at", "-id")
        .first()
    )
    stage = STAGE_OF_STATE.get(case.state if case else "", "none")
    return {
        "household": household,
        "house": house,
        "case": case,
        "stage": next(c for c in STAGES if c.key == stage),
        "photo": photo,
    }
