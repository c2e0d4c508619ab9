"""Every user-facing read of the registry. Each takes the user and applies region scoping."""

import base64
import hashlib
import json
import math
from dataclasses import asdict, dataclass

from django.contrib.gis.db.models.functions import Distance
from django.contrib.gis.geos import Point
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Substr
from django.http import Http404

from accounts.scoping import code_visible, scope, user_region_codes
from housing import idnumbers
from housing.models import (
    CODE_LENGTHS,
    FamilyMember,
    House,
    Household,
    KeyGroup,
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


# --- the household list's pages: keyset paging and a cached total -------------------------
#
# OFFSET reads and throws away every row before the page, and COUNT(*) reads them all: at
# 300,000 households the last page took a quarter of a second. A page is read instead from
# where the previous one ended (the sort key and id of its last row, an index range scan of
# PAGE + 1 rows wherever it is), and the last page backwards from the end. The total that the
# list shows (and its page count) is counted once per scope, filters and data version and
# then cached: the version is the newest history row of the tables a filter reads, so any
# recorded change (every write of the registry leaves a history row, bulk writes through
# housing.history) makes a new key, and the cache's timeout bounds anything else.

HOUSEHOLD_SORTS = {
    # name -> the ordering: sort key first, id last, a total order for the cursor.
    "archive_no": ("archive_no", "id"),
    "head_name": ("head_name", "id"),
}
DEFAULT_SORT = "archive_no"
COUNT_CACHE_SECONDS = 600


@dataclass(frozen=True)
class Cursor:
    """Where a page starts or ends: the sort key and id of a row (of sort ``sort``)."""

    sort: str
    key: str
    pk: int

    def encode(self) -> str:
        raw = json.dumps([self.sort, self.key, self.pk], ensure_ascii=False, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, sort: str) -> "Cursor | None":
        """The cursor in ``text``, or None when it is not one of this sort (then: page 1)."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            name, key, pk = json.loads(raw.decode())
        except (ValueError, TypeError, UnicodeDecodeError):
            return None
        # Only what a row can hold: a text PostgreSQL accepts (no NUL) and a BIGINT id (not
        # a bool, which is an int to Python); anything else is not a cursor of ours.
        if name != sort or not isinstance(key, str) or "\x00" in key:
            return None
        if type(pk) is not int or not 0 < pk < 2**63:
            return None
        return cls(sort=sort, key=key, pk=pk)

    @classmethod
    def of(cls, household: Household, sort: str) -> "Cursor":
        field = HOUSEHOLD_SORTS[sort][0]
        return cls(sort=sort, key=getattr(household, field), pk=household.pk)


@dataclass
class HouseholdPage:
    """One page of the list: its rows, its number, and the cursors of its neighbours."""

    households: list[Household]
    number: int
    num_pages: int
    count: int
    sort: str
    has_previous: bool
    has_next: bool

    @property
    def previous_cursor(self) -> str:
        return Cursor.of(self.households[0], self.sort).encode() if self.households else ""

    @property
    def next_cursor(self) -> str:
        return Cursor.of(self.households[-1], self.sort).encode() if self.households else ""


def registry_version() -> tuple[str, ...]:
    """The newest history row (id and date) of each table the list's filters read.

    Any write adds a history row, so the tuple changes with it. Both figures, from their
    indexes: an id alone can come again on SQLite after a rolled-back write, a date alone
    can be given (history_snapshot's ``at``).
    """
    quote = connection.ops.quote_name
    selects = []
    for model in (Household, House, FamilyMember, KeyGroup, Region):
        table = quote(model.history.model._meta.db_table)
        selects += [f"(SELECT MAX({name}) FROM {table})" for name in ("history_id", "history_date")]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(selects)}")
        return tuple(str(value) for value in cursor.fetchone())


def household_count(*, user, filters: HouseholdFilters | None = None) -> int:
    """How many households the list shows for these filters: counted once per data version.

    A search by a whole ID number is not cached (its key would keep a hash of the number); it
    finds a household or two, which is cheap to count anyway.
    """
    filters = filters or HouseholdFilters()
    qs = household_list(user=user, filters=filters)
    if filters.q and idnumbers.looks_like_id_number(filters.q.strip()):
        return qs.count()
    codes = user_region_codes(user)
    material = json.dumps(
        {
            "scope": "*" if codes is None else codes,
            "filters": asdict(filters),
            "version": registry_version(),
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    key = "anju:households:count:" + hashlib.sha256(material.encode()).hexdigest()
    count = cache.get(key)
    if count is None:
        count = qs.count()
        cache.set(key, count, COUNT_CACHE_SECONDS)
    return count


def _after(field: str, cursor: Cursor) -> Q:
    # "key >= k AND (key > k OR id > pk)": the first half is an index range that starts at the
    # cursor; the row comparison written as an OR alone would not use the index.
    return Q(**{f"{field}__gte": cursor.key}) & (
        Q(**{f"{field}__gt": cursor.key}) | Q(pk__gt=cursor.pk)
    )


def _before(field: str, cursor: Cursor) -> Q:
    return Q(**{f"{field}__lte": cursor.key}) & (
        Q(**{f"{field}__lt": cursor.key}) | Q(pk__lt=cursor.pk)
    )


def household_page(
    *,
    user,
    filters: HouseholdFilters | None = None,
    sort: str = DEFAULT_SORT,
    size: int = 50,
    after: str = "",
    before: str = "",
    page: str | int | None = None,
) -> HouseholdPage:
    """A page of household_list in ``sort`` order, by cursor or by number.

    ``after`` (the next page) or ``before`` (the previous one) is a cursor from a page's
    links, and ``page`` then only names its number; without a cursor, ``page`` is a number:
    1 (or nothing, or not a number) is the first page, the last page number or beyond is the
    last page, read backwards from the end; a page in between is read by OFFSET (a typed or
    old link: the links this list makes carry cursors).
    """
    sort = sort if sort in HOUSEHOLD_SORTS else DEFAULT_SORT
    field, _id = HOUSEHOLD_SORTS[sort]
    qs = household_list(user=user, filters=filters)
    forward = qs.order_by(field, "id")
    backward = qs.order_by(f"-{field}", "-id")
    count = household_count(user=user, filters=filters)
    num_pages = max(1, math.ceil(count / size))
    try:
        number = int(page) if page not in (None, "") else 1
    except (TypeError, ValueError):
        number = 1
    number = min(max(number, 1), num_pages)

    cursor_after = Cursor.decode(after, sort) if after else None
    cursor_before = Cursor.decode(before, sort) if before and not cursor_after else None
    if cursor_after is not None:
        rows = list(forward.filter(_after(field, cursor_after))[: size + 1])
        if rows:
            number = max(number, 2)
            return _page(rows[:size], number, num_pages, count, sort, True, len(rows) > size)
        number = num_pages  # past the end (rows deleted since): the last page
    elif cursor_before is not None:
        rows = list(backward.filter(_before(field, cursor_before))[: size + 1])
        if len(rows) > size:
            rows = rows[:size][::-1]
            number = min(max(number, 2), max(2, num_pages - 1))
            return _page(rows, number, num_pages, count, sort, True, True)
        number = 1  # reached the start: the first page, in full
    if number == 1:
        rows = list(forward[: size + 1])
        return _page(rows[:size], 1, num_pages, count, sort, False, len(rows) > size)
    if number == num_pages:
        # The last page holds what is left after the full pages before it.
        rest = count - size * (num_pages - 1)
        rows = list(backward[: rest + 1])
        has_previous = len(rows) > rest
        return _page(rows[:rest][::-1], number, num_pages, count, sort, has_previous, False)
    start = (number - 1) * size
    rows = list(forward[start : start + size + 1])
    return _page(rows[:size], number, num_pages, count, sort, True, len(rows) > size)


def _page(rows, number, num_pages, count, sort, has_previous, has_next) -> HouseholdPage:
    return HouseholdPage(
        households=rows,
        number=number,
        num_pages=num_pages,
        count=count,
        sort=sort,
        has_previous=has_previous,
        has_next=has_next,
    )


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
