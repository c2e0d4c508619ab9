"""Every user-facing read of the registry. Each takes the user and applies region scoping."""

from dataclasses import dataclass

from django.contrib.gis.db.models.functions import Distance
from django.contrib.gis.geos import Point
from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Substr
from django.http import Http404

from accounts.scoping import code_visible, scope
from housing import idnumbers
from housing.models import (
    CODE_LENGTHS,
    FamilyMember,
    House,
    Household,
    Region,
    SafetyGrade,
)


@dataclass(frozen=True)
class HouseholdFilters:
    q: str = ""  # name (contains), archive number (prefix), ID number (exact; admins only)
    region: str = ""  # region code: that region and everything under it
    grade: str | None = None  # "A".."D", or "" for not yet appraised; None = any
    key_group: str = ""  # KeyGroup.code, or "none" for households in no key group
    renovation_status: str = ""


def region_list(*, user) -> QuerySet[Region]:
    return scope(Region.objects.all(), user, "code")


def region_get(*, user, code: str) -> Region:
    """The region with this code, or 404 when it does not exist or is out of scope."""
    region = Region.objects.select_related("parent").filter(code=code).first()
    if region is None or not code_visible(user, region.code):
        raise Http404("No such region.")
    return region


def region_roots(*, user) -> QuerySet[Region]:
    """The top regions a user sees: their own regions (pruned), or the top level for admins."""
    from accounts.scoping import user_region_codes

    codes = user_region_codes(user)
    if codes is None:
        top = Region.objects.filter(parent__isnull=True)
        return top
    return Region.objects.filter(code__in=codes)


def region_breadcrumbs(*, user, region: Region) -> list[Region]:
    """The region's ancestors the user may see, top first."""
    codes = [region.code[:n] for n in sorted(CODE_LENGTHS.values()) if n < len(region.code)]
    ancestors = Region.objects.filter(code__in=codes).order_by("code")
    return [r for r in ancestors if code_visible(user, r.code)]


def household_list(*, user, filters: HouseholdFilters | None = None) -> QuerySet[Household]:
    filters = filters or HouseholdFilters()
    qs = Household.objects.select_related("village", "key_group")
    qs = scope(qs, user, "village__code")
    if filters.region:
        qs = qs.filter(village__code__startswith=filters.region)
    if filters.q:
        term = filters.q.strip()
        normalized = idnumbers.normalize(term)
        if idnumbers.looks_like_id_number(term):
            # The forms refuse such a search with a message; this is the last line.
            if idnumbers.id_search_refused(user, term):
                return qs.none()
            qs = qs.filter(
                Q(head_id_number=normalized)
                | Q(pk__in=FamilyMember.objects.filter(id_number=normalized).values("household"))
            )
        else:
            qs = qs.filter(Q(head_name__contains=term) | Q(archive_no__startswith=term))
    house_filter = {}
    if filters.grade is not None:
        house_filter["safety_grade"] = filters.grade
    if filters.renovation_status:
        house_filter["renovation_status"] = filters.renovation_status
    if house_filter:
        qs = qs.filter(
            pk__in=House.objects.filter(is_current=True, **house_filter).values("household")
        )
    if filters.key_group == "none":
        qs = qs.filter(key_group__isnull=True)
    elif filters.key_group:
        qs = qs.filter(key_group__code=filters.key_group)
    return qs.prefetch_related(
        Prefetch("houses", queryset=House.objects.filter(is_current=True), to_attr="current_houses")
    ).order_by("archive_no")


def household_get(*, user, pk: int) -> Household:
    """One household with its houses and members, or 404 when absent or out of scope."""
    qs = scope(Household.objects.all(), user, "village__code")
    household = (
        qs.select_related("village__parent", "key_group")
        .prefetch_related(
            Prefetch("houses", queryset=House.objects.order_by("-is_current", "-id")),
            "members",
        )
        .filter(pk=pk)
        .first()
    )
    if household is None:
        raise Http404("No such household.")
    return household


def family_member_list(*, user, household_id: int | None = None) -> QuerySet[FamilyMember]:
    qs = scope(FamilyMember.objects.select_related("household"), user, "household__village__code")
    if household_id is not None:
        qs = qs.filter(household_id=household_id)
    return qs.order_by("household_id", "id")


GRADE_KEYS = ["A", "B", "C", "D", ""]


def region_children_grade_counts(*, user, region: Region) -> list[dict]:
    """For each child region: household counts by the current house's grade.

    One GROUP BY on the code prefix of the village, not a loop over households.
    Rows: {"region": Region, "total": n, "A": n, ..., "": n (not appraised)}.
    """
    children = list(region_list(user=user).filter(parent=region).order_by("code"))
    if not children:
        return []
    child_len = len(children[0].code)
    houses = scope(
        House.objects.filter(is_current=True, household__village__code__startswith=region.code),
        user,
        "household__village__code",
    )
    rows = (
        houses.annotate(child_code=Substr("household__village__code", 1, child_len))
        .values("child_code", "safety_grade")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[str, dict] = {c.code: dict.fromkeys(GRADE_KEYS, 0) for c in children}
    for row in rows:
        if row["child_code"] in counts:
            counts[row["child_code"]][row["safety_grade"]] = row["n"]
    result = []
    for child in children:
        c = counts[child.code]
        result.append({"region": child, "total": sum(c.values()), **c})
    return result


def grade_label(grade: str) -> str:
    return SafetyGrade(grade).label


def household_nearby(*, user, lon: float, lat: float, limit: int = 10) -> QuerySet[Household]:
    """The households in the user's regions nearest to (lon, lat), WGS84, nearest first.

    Each carries `distance` (a Distance measure, metres via `.m`) and `grade` (its current
    house's). Distance and order are computed in SQL: on a geographic column GeoDjango's
    Distance is ST_DistanceSphere on PostGIS and a great-circle ST_Distance on SpatiaLite,
    within 0.5 % of the ellipsoid, plenty to say which house is the nearest.
    """
    here = Point(lon, lat, srid=4326)
    grade = House.objects.filter(household=OuterRef("pk"), is_current=True).values("safety_grade")[
        :1
    ]
    qs = scope(Household.objects.select_related("village"), user, "village__code")
    return (
        qs.filter(location__isnull=False)
        .annotate(distance=Distance("location", here), grade=Subquery(grade))
        .order_by("distance", "id")[:limit]
    )
