"""A synthetic demo county: regions, households, houses, family members and demo users.

Everything is drawn from `random.Random(seed)` and `numpy.random.default_rng(seed)`, never
from the global generators, the clock or database ids, so one seed always gives the same
county. Geometry is made with shapely: the county is a noisy circle, townships are Voronoi
cells clipped to it and villages Voronoi cells clipped to their township, so the villages
tile the county exactly. Households, houses and members are written in batches of plain rows:
COPY on PostgreSQL, bulk_create elsewhere (see _RowWriter).
"""

import contextlib
import datetime
import importlib
import itertools
import queue
import random
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import shapely
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.gis.geos import GEOSGeometry
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Role, User
from accounts.services import user_create
from housing import idnumbers
from housing.history import CREATED, history_snapshot
from housing.models import (
    DisabilityLevel,
    FamilyMember,
    House,
    Household,
    KeyGroup,
    LocationSource,
    Region,
    RegionLevel,
    Relation,
    RenovationStatus,
    SafetyGrade,
    StructureType,
)
from housing.signals import households_changed

PROVINCE = ("52", "贵州省")
CITY = ("5203", "遵义市")
COUNTY = ("520399", "安居示范县")  # not a real code: Zunyi's counties stop at 520382
DEMO_URL = "http://127.0.0.1:8000/"
# Ages are counted from this fixed day, not from today, so a seed gives the same people forever.
REFERENCE_DATE = datetime.date(2025, 6, 30)
TOWNSHIPS = 10
VILLAGES = 100
# Households per write: a batch is drawn while the one before is written (see _ahead).
BATCH = 5000
# The change reason on the history rows of what the seeder bulk-creates.
HISTORY_REASON = "seed_demo"
# Key groups that shape a household: people in dispersed care live alone; a disabled family
# has a disabled member.
ALONE_GROUP = "extremely_poor_dispersed"
DISABLED_GROUP = "poor_disabled_family"

# The outline: a noisy ellipse around the centre, inside lon 107.6-108.2, lat 27.0-27.5.
CENTRE = (107.9, 27.25)
HALF_AXES = (0.29, 0.24)

# username, role, region code (None: all, as an administrator), family name, given name
DEMO_USERS = [
    ("inspector", Role.INSPECTOR, COUNTY[0] + "100", "李", "明"),
    ("township", Role.TOWNSHIP_OFFICIAL, COUNTY[0] + "100", "王", "芳"),
    ("county", Role.COUNTY_OFFICIAL, COUNTY[0], "陈", "刚"),
    # A second county official: separation of duties keeps `county`, who makes the formal
    # completion visits, from passing them (demo.cases).
    ("county2", Role.COUNTY_OFFICIAL, COUNTY[0], "赵", "敏"),
    ("auditor", Role.AUDITOR, COUNTY[0], "刘", "洋"),
    ("admin", Role.ADMINISTRATOR, None, "", ""),
]

_PLACE_FIRST = (
    "青白黑红黄龙凤石金银松柏桃杨柳花竹茶新老大小上中下东南西北高长平安兴丰和乐马牛鹿云星月沙泉桥"
)
_PLACE_SECOND = "山坝沟湾坪岩寨溪河田坡塘林冲关口水堡场台岭庄园坳垭洞井"
# Common surnames with weights, roughly as in northern Guizhou (令狐 is frequent around Zunyi).
# fmt: off
_SURNAMES = {
    "王": 8, "李": 8, "张": 7, "刘": 7, "陈": 6, "杨": 7, "黄": 4, "赵": 4, "吴": 4, "周": 3,
    "徐": 3, "孙": 2, "马": 2, "胡": 3, "朱": 2, "郭": 2, "何": 3, "罗": 4, "高": 2, "林": 2,
    "郑": 2, "梁": 2, "谢": 2, "宋": 2, "唐": 3, "许": 2, "韩": 2, "冯": 2, "邓": 2, "曹": 2,
    "彭": 2, "曾": 3, "田": 3, "龙": 3, "冉": 2, "蒋": 2, "袁": 2, "潘": 2, "余": 2, "石": 2,
    "付": 2, "令狐": 2,
}
# fmt: on
_MALE_GIVEN = "伟刚勇军强明华平建国志永兵超磊涛斌辉鹏飞杰浩宇俊峰文武德福贵富荣发学成林山海龙"
_FEMALE_GIVEN = "芳丽娟敏静秀英华兰琴燕霞玲梅艳红萍莉婷雪倩丹慧淑珍凤翠桂琳娜"
# fmt: off
_PHONE_PREFIXES = [
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
    "156", "157", "158", "159", "177", "180", "182", "183", "185", "186", "187", "188", "189",
    "199",
]
# fmt: on

# How often a key-group household is in each group; groups not named here weigh 1.
_KEY_GROUP_WEIGHTS = {
    "minimum_income": 30,
    "registered_poor": 20,
    "at_risk_of_poverty": 15,
    "minimum_income_marginal": 10,
    "extremely_poor_dispersed": 8,
    "poor_disabled_family": 8,
    "other_left_poverty": 5,
    "sudden_hardship": 4,
}
# Structure types by era of construction: (years, share of houses, {structure: weight}).
_STRUCTURES = [
    StructureType.EARTH_WOOD,
    StructureType.TIMBER,
    StructureType.BRICK_WOOD,
    StructureType.STONE,
    StructureType.MASONRY,
    StructureType.CONCRETE_FRAME,
    StructureType.OTHER,
]
_ERAS = [
    ((1950, 1989), [45, 25, 15, 10, 0, 0, 5]),
    ((1990, 2009), [15, 10, 40, 5, 28, 2, 0]),
    ((2010, 2024), [0, 5, 10, 0, 55, 30, 0]),
]
# Added to a house's danger score: old earth and timber houses are the dangerous ones.
_STRUCTURE_RISK = np.array([1.2, 0.9, 0.6, 0.7, 0.0, -0.4, 0.5])
_STOREYS = np.array(
    [
        [65, 35, 0, 0],
        [55, 45, 0, 0],
        [60, 40, 0, 0],
        [80, 20, 0, 0],
        [35, 45, 20, 0],
        [5, 45, 40, 10],
        [90, 10, 0, 0],
    ],
    dtype=float,
)
_SOURCES = [
    LocationSource.SURVEYED,
    LocationSource.PHONE_GPS,
    LocationSource.GCJ02_MAP,
    LocationSource.IMPORTED,
]


@dataclass(frozen=True)
class SeedSummary:
    townships: int
    villages: int
    households: int
    houses: int
    members: int


def demo_county_exists() -> bool:
    return Region.objects.filter(code=COUNTY[0]).exists()


def key_groups_ensure() -> list[KeyGroup]:
    """The active key groups; in a database without the data migration, create them first."""
    if not KeyGroup.objects.exists():
        groups = importlib.import_module("housing.migrations.0002_key_groups").GROUPS
        created = KeyGroup.objects.bulk_create(
            KeyGroup(code=code, name=name, in_2017_list=y17, in_2021_list=y21, sort_order=order)
            for order, (code, name, y17, y21) in enumerate(groups)
        )
        _history(KeyGroup, created)
    return list(KeyGroup.objects.filter(active=True).order_by("sort_order", "code"))


# --- geometry -------------------------------------------------------------------------------


def county_outline(*, rng: np.random.Generator) -> shapely.Polygon:
    """A star-shaped, hence simple, polygon: a radius made of a few random harmonics."""
    theta = np.linspace(0.0, 2 * np.pi, 256, endpoint=False)
    radius = np.ones_like(theta)
    for k in range(2, 10):
        radius += rng.uniform(0.0, 0.25 / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    # Smoothed small wiggles, like a boundary following ridges and streams.
    wiggle = np.convolve(np.tile(rng.standard_normal(theta.size), 3), np.ones(5) / 5, "same")
    radius += 0.03 * wiggle[theta.size : 2 * theta.size]
    radius /= radius.max()
    x = CENTRE[0] + HALF_AXES[0] * radius * np.cos(theta)
    y = CENTRE[1] + HALF_AXES[1] * radius * np.sin(theta)
    return shapely.Polygon(np.column_stack([x, y]))


def uniform_points(*, area, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points drawn uniformly inside `area`, as an (n, 2) array."""
    shapely.prepare(area)
    minx, miny, maxx, maxy = area.bounds
    found = np.empty((0, 2))
    while len(found) < n:
        xs, ys = rng.uniform(minx, maxx, 4 * n + 8), rng.uniform(miny, maxy, 4 * n + 8)
        keep = shapely.contains_xy(area, xs, ys)
        found = np.vstack([found, np.column_stack([xs[keep], ys[keep]])])
    return found[:n]


def _polygons(geometry) -> shapely.MultiPolygon:
    """The polygonal parts of an overlay result (dropping stray lines and points)."""
    parts = [p for p in shapely.get_parts(geometry) if p.geom_type == "Polygon" and not p.is_empty]
    return shapely.MultiPolygon(parts)


def partition(*, area, n: int, rng: np.random.Generator, relax: int = 3) -> list:
    """Split `area` into n cells that tile it: Voronoi cells of random points, clipped.

    A few Lloyd steps (moving each point to its cell's centroid) even out the cell sizes.
    """
    points = uniform_points(area=area, n=n, rng=rng)
    frame = shapely.box(*area.bounds).buffer(1.0)
    for step in range(relax + 1):
        seeds = shapely.multipoints(points)
        voronoi = shapely.voronoi_polygons(seeds, extend_to=frame, ordered=True)
        cells = shapely.intersection(shapely.get_parts(voronoi), area)
        if step == relax:
            break
        centroids = shapely.get_coordinates(shapely.centroid(cells))
        inside = shapely.contains_xy(area, centroids[:, 0], centroids[:, 1])
        surface = shapely.get_coordinates(shapely.point_on_surface(cells))
        points = np.where(inside[:, None], centroids, surface)
    return [_polygons(cell) for cell in cells]


def clustered_points(*, area, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n points in hamlets inside `area`: (coordinates (n, 2), hamlet number from 1).

    Each hamlet is a centre with points scattered around it normally; points falling outside
    the area are dropped and drawn again, tighter each round so that small villages fill too.
    """
    hamlets = int(rng.integers(3, 8))
    centres = uniform_points(area=area, n=hamlets, rng=rng)
    weights = rng.dirichlet(np.full(hamlets, 2.0))
    spread = rng.uniform(0.002, 0.006, hamlets)  # degrees: a few hundred metres
    coords, groups = np.empty((0, 2)), np.empty(0, dtype=int)
    while len(coords) < n:
        want = 2 * (n - len(coords)) + 8
        which = rng.choice(hamlets, size=want, p=weights)
        xy = np.round(centres[which] + rng.standard_normal((want, 2)) * spread[which, None], 6)
        keep = shapely.contains_xy(area, xy[:, 0], xy[:, 1])
        coords, groups = np.vstack([coords, xy[keep]]), np.concatenate([groups, which[keep] + 1])
        spread *= 0.7
    return coords[:n], groups[:n]


def _geos(geometry) -> GEOSGeometry:
    return GEOSGeometry(memoryview(shapely.to_wkb(geometry)), srid=4326)


# --- regions --------------------------------------------------------------------------------


def _region(*, code: str, name: str, level: str, parent: Region | None, boundary=None) -> Region:
    """A validated, unsaved region. Unique codes are the database's job (one query, not 110)."""
    region = Region(code=code, name=name, level=level, parent=parent, boundary=boundary)
    region.full_clean(validate_unique=False, validate_constraints=False)
    return region


def _saved(region: Region) -> Region:
    region.save()
    return region


def regions_create(
    *, rnd: random.Random, rng: np.random.Generator
) -> list[tuple[Region, shapely.MultiPolygon]]:
    """Province and city (kept if they exist), the county, townships and villages.

    Returns the villages with their shapely boundaries, in code order.
    """
    province = Region.objects.filter(code=PROVINCE[0]).first() or _saved(
        _region(code=PROVINCE[0], name=PROVINCE[1], level=RegionLevel.PROVINCE, parent=None)
    )
    city = Region.objects.filter(code=CITY[0]).first() or _saved(
        _region(code=CITY[0], name=CITY[1], level=RegionLevel.CITY, parent=province)
    )
    outline = county_outline(rng=rng)
    county = _saved(
        _region(
            code=COUNTY[0],
            name=COUNTY[1],
            level=RegionLevel.COUNTY,
            parent=city,
            boundary=_geos(shapely.MultiPolygon([outline])),
        )
    )
    township_shapes = partition(area=outline, n=TOWNSHIPS, rng=rng)
    # Villages per township follow its area; at least four each.
    areas = np.array([t.area for t in township_shapes])
    counts = np.maximum(4, np.round(areas / areas.sum() * VILLAGES)).astype(int)
    # Names are unique in the county, across both levels.
    pool = [a + b for a in _PLACE_FIRST for b in _PLACE_SECOND if a != b]
    names = iter(rnd.sample(pool, TOWNSHIPS + int(counts.sum())))
    # Statistical codes: 1xx for towns (镇), 2xx for rural townships (乡), 2xx for villages.
    town_count = TOWNSHIPS - TOWNSHIPS // 3
    townships, villages = [], []
    for index, (t_shape, v_count) in enumerate(zip(township_shapes, counts, strict=True)):
        is_town = index < town_count
        code = f"{COUNTY[0]}{100 + index if is_town else 200 + index - town_count}"
        township = _region(
            code=code,
            name=next(names) + ("镇" if is_town else "乡"),
            level=RegionLevel.TOWNSHIP,
            parent=county,
            boundary=_geos(t_shape),
        )
        townships.append(township)
        for v_index, v_shape in enumerate(partition(area=t_shape, n=int(v_count), rng=rng)):
            village = _region(
                code=f"{code}{200 + v_index}",
                name=next(names) + "村",
                level=RegionLevel.VILLAGE,
                parent=township,
                boundary=_geos(v_shape),
            )
            villages.append((village, v_shape))
    Region.objects.bulk_create(townships)
    Region.objects.bulk_create([village for village, _shape in villages])
    _history(Region, townships + [village for village, _shape in villages])
    return sorted(villages, key=lambda pair: pair[0].code)


# --- people ---------------------------------------------------------------------------------


# ISO 7064 MOD 11-2, as in housing.idnumbers: weight 2^(17-i) mod 11 for the i-th digit.
_ID_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]
_ID_CHECK = "10X98765432"
# The weighted sums of the last three digits (the sequence), 000-999.
_SEQUENCE_SUMS = [
    sum(int(d) * w for d, w in zip(f"{s:03d}", _ID_WEIGHTS[14:], strict=True)) for s in range(1000)
]


class People:
    """Names, phones and unique, valid ID numbers, all from one random.Random."""

    def __init__(self, rnd: random.Random):
        self.rnd = rnd
        self.used: set[str] = set()
        self.names = list(_SURNAMES)
        self.cum = list(itertools.accumulate(_SURNAMES.values()))
        self._days: dict[int, tuple[str, int]] = {}

    def surname(self) -> str:
        return self.rnd.choices(self.names, cum_weights=self.cum)[0]

    def given(self, sex: str) -> str:
        chars = _MALE_GIVEN if sex == idnumbers.SEX_MALE else _FEMALE_GIVEN
        return "".join(self.rnd.choices(chars, k=1 if self.rnd.random() < 0.4 else 2))

    def phone(self) -> str:
        return self.rnd.choice(_PHONE_PREFIXES) + f"{self.rnd.randrange(10**8):08d}"

    def number(self, day: int, sequence: int) -> str:
        """idnumbers.make(COUNTY[0], date.fromordinal(day), sequence), with the first 14
        digits and their weighted sum kept per day: a 300,000-household county draws a
        million numbers."""
        known = self._days.get(day)
        if known is None:
            first14 = f"{COUNTY[0]}{datetime.date.fromordinal(day):%Y%m%d}"
            total = sum(int(d) * w for d, w in zip(first14, _ID_WEIGHTS, strict=False))
            known = self._days[day] = (first14, total)
        first14, total = known
        check = _ID_CHECK[(total + _SEQUENCE_SUMS[sequence]) % 11]
        return f"{first14}{sequence:03d}{check}"

    def id_number(self, *, age: float, sex: str) -> tuple[str, datetime.date]:
        """A valid number no one else has, for someone `age` years old on REFERENCE_DATE."""
        day = REFERENCE_DATE.toordinal() - int(age * 365.2425) - self.rnd.randrange(1, 365)
        first = 1 if sex == idnumbers.SEX_MALE else 2
        while True:
            for _attempt in range(20):
                number = self.number(day, self.rnd.randrange(first, 1000, 2))
                if number not in self.used:
                    self.used.add(number)
                    return number, datetime.date.fromordinal(day)
            day -= 1


def family(*, rnd: random.Random, alone: bool) -> list[tuple[str, str, float]]:
    """(relation, sex, age in years) for everyone in a household, the head first."""
    male, female = idnumbers.SEX_MALE, idnumbers.SEX_FEMALE
    other = {male: female, female: male}
    head_sex = male if rnd.random() < 0.82 else female
    if alone:  # dispersed care: elderly people living on their own
        return [(Relation.HEAD, head_sex, rnd.uniform(60, 92))]
    head_age = min(max(rnd.gauss(54, 13), 23), 90)
    people = [(Relation.HEAD, head_sex, head_age)]
    p_spouse = 0.35 if head_sex == female else 0.9 if head_age < 65 else 0.7
    mother_age = head_age if head_sex == female else None
    if rnd.random() < p_spouse:
        spouse_age = max(20.0, head_age + (2.5 if head_sex == female else -2.5) + rnd.gauss(0, 3))
        people.append((Relation.SPOUSE, other[head_sex], spouse_age))
        mother_age = spouse_age if head_sex == male else head_age
    mother_age = mother_age or head_age - 2
    if head_age < 35:
        n_children = rnd.choices([0, 1, 2], [25, 45, 30])[0]
    elif head_age < 60:
        n_children = rnd.choices([0, 1, 2, 3], [8, 35, 40, 17])[0]
    else:  # most grown-up children have left
        n_children = rnd.choices([0, 1, 2], [45, 35, 20])[0]
    children = []
    for _child in range(n_children):
        age = mother_age - rnd.uniform(20, 38)
        if age > 0.2:
            children.append((Relation.CHILD, rnd.choice([male, female]), age))
    people += children
    married = [c for c in children if c[2] >= 22]
    if head_age >= 48 and married and rnd.random() < 0.5:
        _rel, child_sex, child_age = married[0]
        in_law_age = max(20.0, child_age + rnd.gauss(0, 2))
        people.append((Relation.CHILD_IN_LAW, other[child_sex], in_law_age))
        for _grandchild in range(rnd.choice([1, 1, 2])):
            age = child_age - rnd.uniform(20, 32)
            if age > 0.2:
                people.append((Relation.GRANDCHILD, rnd.choice([male, female]), age))
    if head_age < 58 and rnd.random() < 0.35:
        for sex in rnd.choice([[male], [female], [male, female]]):
            age = head_age + rnd.uniform(22, 32)
            if age < 96:
                people.append((Relation.PARENT, sex, age))
    return people


# --- houses ---------------------------------------------------------------------------------


@dataclass
class _Houses:
    """Every house's attributes as arrays, drawn together so grade shares hold county-wide."""

    year: np.ndarray
    structure: np.ndarray
    storeys: np.ndarray
    area: np.ndarray
    grade: np.ndarray
    status: np.ndarray


def houses_draw(*, n: int, key: np.ndarray, rng: np.random.Generator) -> _Houses:
    era_p = np.where(key[:, None], [0.6, 0.3, 0.1], [0.38, 0.37, 0.25])
    era = (rng.random(n)[:, None] > np.cumsum(era_p, axis=1)).sum(axis=1)
    year = np.empty(n, dtype=int)
    structure = np.empty(n, dtype=int)
    for e, ((first, last), weights) in enumerate(_ERAS):
        mask = era == e
        year[mask] = rng.integers(first, last + 1, mask.sum())
        p = np.array(weights, dtype=float) / sum(weights)
        structure[mask] = rng.choice(len(_STRUCTURES), size=mask.sum(), p=p)
    storeys_p = _STOREYS[structure] / _STOREYS[structure].sum(axis=1, keepdims=True)
    storeys = (rng.random(n)[:, None] > np.cumsum(storeys_p, axis=1)).sum(axis=1) + 1
    per_storey = rng.lognormal(np.log(np.where(key, 60.0, 80.0)), 0.25)
    area = per_storey * (1 + 0.85 * (storeys - 1))
    # Grades by rank of a danger score (age, structure, poverty, luck) among appraised houses.
    risk = (2025 - year) * 0.035 + _STRUCTURE_RISK[structure] + 0.6 * key + rng.normal(0, 0.8, n)
    appraised = rng.random(n) < np.where(key, 0.985, 0.9)
    grade = np.full(n, SafetyGrade.NOT_APPRAISED.value, dtype=object)
    ranked = np.flatnonzero(appraised)[np.argsort(-risk[appraised], kind="stable")]
    cuts = np.round(np.array([0.065, 0.23, 0.6]) * len(ranked)).astype(int)
    for label, part in zip("DCBA", np.split(ranked, cuts), strict=True):
        grade[part] = label
    # Renovation targets key groups (only they are eligible); some others are in the works too.
    dangerous = (grade == "C") | (grade == "D")
    u = rng.random(n)
    done, doing, planned = (np.where(key, t, o) for t, o in ((0.35, 0.02), (0.5, 0.04), (0.7, 0.1)))
    status = np.full(n, RenovationStatus.NONE.value, dtype=object)
    status[dangerous & (u < planned)] = RenovationStatus.PLANNED
    status[dangerous & (u < doing)] = RenovationStatus.IN_PROGRESS
    status[dangerous & (u < done)] = RenovationStatus.COMPLETED
    # A completed house passed its completion check, so it is safe now (A or B): a repaired C
    # keeps its structure; a rebuilt D is a new masonry or concrete house.
    completed = status == RenovationStatus.COMPLETED
    repaired, rebuilt = completed & (grade == "C"), completed & (grade == "D")
    grade[repaired] = np.where(rng.random(repaired.sum()) < 0.7, "B", "A")
    grade[rebuilt] = np.where(rng.random(rebuilt.sum()) < 0.8, "A", "B")
    year[rebuilt] = rng.integers(2016, 2025, rebuilt.sum())
    structure[rebuilt] = np.where(rng.random(rebuilt.sum()) < 0.7, 4, 5)  # masonry, concrete
    storeys[rebuilt] = np.where(rng.random(rebuilt.sum()) < 0.6, 1, 2)
    area[rebuilt] = rng.uniform(40, 90, rebuilt.sum())
    return _Houses(year, structure, storeys, np.round(area, 2), grade, status)


# --- the county -----------------------------------------------------------------------------


class PhaseClock:
    """Seconds spent in each phase of seeding, in the order the phases first ran."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def add(self, key: str, seconds: float) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds

    @contextlib.contextmanager
    def phase(self, key: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(key, time.perf_counter() - started)


def demo_county_create(
    *,
    households: int,
    seed: int,
    on_progress: Callable[[int, int], None] | None = None,
    clock: PhaseClock | None = None,
) -> SeedSummary:
    """Build the whole demo county in one transaction. The caller checks it is not there yet.

    `clock`, if given, collects the seconds of each phase (see PhaseClock).
    """
    clock = clock or PhaseClock()
    rnd, rng = random.Random(seed), np.random.default_rng(seed)
    # Fail before the long part, not after it (user_create checks it again, per user).
    password_validation.validate_password(settings.ANJU_DEMO_PASSWORD)
    with transaction.atomic():
        with clock.phase("regions"):
            groups = key_groups_ensure()
            villages = regions_create(rnd=rnd, rng=rng)
        summary = _households_create(
            n=households,
            villages=villages,
            groups=groups,
            rnd=rnd,
            rng=rng,
            on_progress=on_progress,
            clock=clock,
        )
        with clock.phase("statistics"):
            # The map refresh below, and the photo and case demos after it, plan their
            # queries on these tables: without statistics the planner takes them for empty.
            _analyze(Household, House, FamilyMember)
        with clock.phase("users"):
            demo_users_create(password=settings.ANJU_DEMO_PASSWORD)
        with clock.phase("map"):
            households_changed.send(sender=Household, ids=None)
        committing = time.perf_counter()
    # PostgreSQL checks the deferred foreign keys of every row written at the commit.
    clock.add("commit", time.perf_counter() - committing)
    return summary


def _households_create(
    *,
    n: int,
    villages: list[tuple[Region, shapely.MultiPolygon]],
    groups: list[KeyGroup],
    rnd: random.Random,
    rng: np.random.Generator,
    on_progress: Callable[[int, int], None] | None,
    clock: PhaseClock,
) -> SeedSummary:
    """Households with one current house and their members, village by village.

    Everything drawn with numpy (places, key groups, houses) is drawn for all households at
    once; names and families come from `rnd` per household, written in batches as plain
    rows (no model instances: at 300,000 households, Model.__init__ alone took a minute).
    """
    drawing = time.perf_counter()
    shapes = [shape for _village, shape in villages]
    # Households per village: by area, with some villages more crowded than others.
    weight = np.array([s.area for s in shapes]) * rng.lognormal(0, 0.35, len(shapes))
    per_village = rng.multinomial(n, weight / weight.sum())
    village_of = np.repeat(np.arange(len(villages)), per_village)
    parts = [
        clustered_points(area=shape, n=int(count), rng=rng)
        for shape, count in zip(shapes, per_village, strict=True)
        if count
    ]
    coords = np.vstack([xy for xy, _g in parts])
    hamlet = np.concatenate([g for _xy, g in parts])
    # Poverty clusters: some villages have far more key-group households than others.
    poverty = rng.lognormal(0, 0.5, len(villages))
    key = rng.random(n) < np.clip(0.2 * poverty / np.mean(poverty), 0.02, 0.6)[village_of]
    if not groups:
        key[:] = False
    group_p = np.array([_KEY_GROUP_WEIGHTS.get(g.code, 1) for g in groups], dtype=float)
    group_of = rng.choice(len(groups), size=n, p=group_p / group_p.sum()) if groups else None
    relocated = rng.random(n) < np.where(key, 0.05, 0.004)
    source = rng.choice(len(_SOURCES), size=n, p=[0.45, 0.4, 0.1, 0.05])
    houses = houses_draw(n=n, key=key, rng=rng)
    # Every location at once, as hex EWKB: exact, and what PostGIS reads from COPY.
    locations = shapely.to_wkb(
        shapely.set_srid(shapely.points(coords), 4326), hex=True, include_srid=True
    ).tolist()
    # The per-household loop reads plain Python values, not numpy scalars.
    village_of, hamlet = village_of.tolist(), hamlet.tolist()
    group_of = group_of.tolist() if group_of is not None else None
    key, relocated, source = key.tolist(), relocated.tolist(), source.tolist()
    structures = [_STRUCTURES[s] for s in houses.structure.tolist()]
    storeys, years = houses.storeys.tolist(), houses.year.tolist()
    areas = [f"{a:.2f}" for a in houses.area.tolist()]
    grades, statuses = houses.grade.tolist(), houses.status.tolist()

    def batches() -> Iterator[tuple[_Batch, int]]:
        """(batch, households drawn so far), from `rnd`, household after household."""
        people = People(rnd)
        batch = _Batch()
        seq: dict[int, int] = {}
        door: dict[tuple[int, int], int] = {}
        for i in range(n):
            v = village_of[i]
            village = villages[v][0]
            seq[v] = seq.get(v, 0) + 1
            group_no = hamlet[i]
            door[v, group_no] = door.get((v, group_no), 0) + 1
            group = groups[group_of[i]] if key[i] else None
            rows = _people_rows(
                people=people,
                rnd=rnd,
                members=family(rnd=rnd, alone=group is not None and group.code == ALONE_GROUP),
                disabled=group is not None and group.code == DISABLED_GROUP,
            )
            phone = people.phone() if rnd.random() > 0.06 else ""
            head = rows[0]
            at = len(batch.households)
            batch.households.append(
                (
                    f"{village.code}-{seq[v]:04d}",
                    village.pk,
                    head[0],
                    head[2],
                    phone,
                    f"{village.name}{group_no}组{door[v, group_no]}号",
                    locations[i],
                    _SOURCES[source[i]],
                    group.pk if group is not None else None,
                    relocated[i],
                )
            )
            batch.houses.append(
                (True, structures[i], storeys[i], areas[i], years[i], grades[i], statuses[i])
            )
            for index, (name, relation, number, sex, birth, disability) in enumerate(rows):
                batch.members.append(
                    (
                        at,
                        name,
                        relation,
                        number,
                        sex,
                        birth,
                        disability or DisabilityLevel.NONE,
                        phone if index == 0 else (people.phone() if rnd.random() < 0.15 else ""),
                    )
                )
            if len(batch.households) >= BATCH or i == n - 1:
                yield batch, i + 1
                batch = _Batch()

    clock.add("households", time.perf_counter() - drawing)
    writer = _RowWriter()
    totals = [0, 0]
    for batch, done in _ahead(batches(), clock=clock, phase="households"):
        totals[0] += len(batch.houses)
        totals[1] += len(batch.members)
        writer.write(batch, clock=clock)
        if on_progress:
            on_progress(done, n)
    townships = len({village.parent_id for village, _shape in villages})
    return SeedSummary(townships, len(villages), n, totals[0], totals[1])


def _ahead(items: Iterator, *, clock: PhaseClock, phase: str) -> Iterator:
    """`items`, made in a thread one step ahead of the caller.

    The households are drawn in Python while the database writes the previous batch (the
    caller waits for it, and a waiting thread leaves the interpreter to this one): at
    300,000 households, about 19 s of drawing of which the caller waited 3 s. `items` is
    still consumed in order, by one thread, so the same seed draws the same county. `clock`
    gets the time the caller waited for an item, under `phase`.
    """
    handoff: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    end = object()

    def hand(item) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand((item, None)):
                    return
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
            hand((end, error))
        else:
            hand((end, None))

    thread = threading.Thread(target=produce, name="seed-demo-draw", daemon=True)
    thread.start()
    try:
        while True:
            waited = time.perf_counter()
            item, error = handoff.get()
            clock.add(phase, time.perf_counter() - waited)
            if error is not None:
                raise error
            if item is end:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _people_rows(*, people: People, rnd: random.Random, members, disabled: bool) -> list:
    """[name, relation, ID number, sex, birth date, disability] per member, the head first.

    Children and grandchildren carry their father's family name; a disabled-family household
    has at least one disabled member.
    """
    surname, spouse_surname = people.surname(), people.surname()
    has_spouse = any(m[0] == Relation.SPOUSE for m in members)
    line = spouse_surname if members[0][1] == idnumbers.SEX_FEMALE and has_spouse else surname
    rows = []
    for relation, sex, age in members:
        if relation == Relation.HEAD or (relation == Relation.PARENT and sex == idnumbers.SEX_MALE):
            family_name = surname
        elif relation == Relation.SPOUSE:
            family_name = spouse_surname
        elif relation in (Relation.CHILD, Relation.GRANDCHILD):
            family_name = line
        else:
            family_name = people.surname()
        number, birth = people.id_number(age=age, sex=sex)
        disability = ""
        if rnd.random() < (0.04 if age > 65 else 0.015):
            disability = rnd.choices("1234", [1, 2, 3, 4])[0]
        rows.append([family_name + people.given(sex), relation, number, sex, birth, disability])
    if disabled and not any(row[5] for row in rows):
        rnd.choice(rows)[5] = rnd.choices("1234", [2, 3, 3, 2])[0]
    return rows


class _Batch:
    """Rows for the next write, as plain tuples in the order of the *_FIELDS below. A member
    row starts with its household's index in the batch (its id is not known yet)."""

    def __init__(self):
        self.households: list[tuple] = []
        self.houses: list[tuple] = []
        self.members: list[tuple] = []


HOUSEHOLD_FIELDS = (
    "archive_no",
    "village_id",
    "head_name",
    "head_id_number",
    "phone",
    "address",
    "location",  # hex EWKB
    "location_source",
    "key_group_id",
    "poverty_relocation",
)
HOUSE_FIELDS = (
    "is_current",
    "structure_type",
    "storeys",
    "floor_area",  # a string with two decimals
    "year_built",
    "safety_grade",
    "renovation_status",
)
MEMBER_FIELDS = (
    "name",
    "relation",
    "id_number",
    "sex",
    "birth_date",
    "disability_level",
    "phone",
)


class _RowWriter:
    """Writes batches of rows and records them in the history.

    On PostgreSQL: COPY, with ids drawn from each table's sequence first (COPY returns
    nothing; the houses and members need their household's id, the history every id), as
    housing.importers.pgcopy does for the importers but from tuples rather than dicts. At
    300,000 households that is 1.5 million rows: per-row dicts or model instances cost more
    than the COPY. Elsewhere (SQLite, SpatiaLite): bulk_create, which returns the ids.
    """

    def __init__(self):
        self.copy = connection.vendor == "postgresql"

    def write(self, batch: _Batch, *, clock: PhaseClock) -> None:
        with clock.phase("writing"):
            ids = self._copy(batch) if self.copy else self._bulk_create(batch)
        with clock.phase("history"):
            for model, pks in zip((Household, House, FamilyMember), ids, strict=True):
                history_snapshot(model, pks, history_type=CREATED, reason=HISTORY_REASON)

    def _copy(self, batch: _Batch) -> tuple[list[int], list[int], list[int]]:
        now = timezone.now()
        with connection.cursor() as cursor:
            household_ids = _new_ids(cursor, Household, len(batch.households))
            house_ids = _new_ids(cursor, House, len(batch.houses))
            member_ids = _new_ids(cursor, FamilyMember, len(batch.members))
            _copy_rows(
                cursor,
                Household,
                HOUSEHOLD_FIELDS,
                zip(household_ids, batch.households, strict=True),
                now=now,
            )
            _copy_rows(
                cursor,
                House,
                ("household_id", *HOUSE_FIELDS),
                (
                    (pk, (household, *row))
                    for pk, household, row in zip(
                        house_ids, household_ids, batch.houses, strict=True
                    )
                ),
                now=now,
            )
            _copy_rows(
                cursor,
                FamilyMember,
                ("household_id", *MEMBER_FIELDS),
                (
                    (pk, (household_ids[row[0]], *row[1:]))
                    for pk, row in zip(member_ids, batch.members, strict=True)
                ),
                now=now,
            )
        return household_ids, house_ids, member_ids

    def _bulk_create(self, batch: _Batch) -> tuple[list[int], list[int], list[int]]:
        households = []
        for row in batch.households:
            values = dict(zip(HOUSEHOLD_FIELDS, row, strict=True))
            values["location"] = GEOSGeometry(values["location"])
            households.append(Household(**values))
        Household.objects.bulk_create(households, batch_size=BATCH)
        if households and households[0].pk is None:
            # Houses and members need the new ids: PostgreSQL and SQLite >= 3.35 return them.
            raise RuntimeError("The database did not return the ids of bulk-created households.")
        houses = []
        for household, row in zip(households, batch.houses, strict=True):
            values = dict(zip(HOUSE_FIELDS, row, strict=True))
            values["floor_area"] = Decimal(values["floor_area"])
            houses.append(House(household=household, **values))
        House.objects.bulk_create(houses, batch_size=BATCH)
        members = [
            FamilyMember(
                household=households[row[0]], **dict(zip(MEMBER_FIELDS, row[1:], strict=True))
            )
            for row in batch.members
        ]
        FamilyMember.objects.bulk_create(members, batch_size=BATCH)
        return tuple([obj.pk for obj in objects] for objects in (households, houses, members))


def _new_ids(cursor, model, n: int) -> list[int]:
    """n new ids from the table's own sequence, in increasing order."""
    cursor.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, %s)) AS id FROM generate_series(1, %s) "
        "ORDER BY id",
        [connection.ops.quote_name(model._meta.db_table), model._meta.pk.column, n],
    )
    return [pk for (pk,) in cursor.fetchall()]


def _copy_rows(cursor, model, names: tuple, rows, *, now) -> None:
    """COPY (id, row) pairs into the model's table; `names` are the attnames of a row's
    values. The other fields take their defaults (auto_now fields: `now`)."""
    quote = connection.ops.quote_name
    given = {model._meta.get_field(name).column for name in names}
    rest = [f for f in model._meta.concrete_fields if not f.primary_key and f.column not in given]
    tail = []
    for f in rest:
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            tail.append(now)
        elif f.has_default() and callable(f.default):
            # One value per row (a uuid4, say) cannot be shared: nothing here has one.
            raise ValueError(f"{model.__name__}.{f.name} has a per-row default; give it a value.")
        else:
            tail.append(f.get_db_prep_save(f.get_default(), connection))
    tail = tuple(tail)
    columns = [model._meta.pk.column, *(model._meta.get_field(n).column for n in names)]
    columns += [f.column for f in rest]
    sql = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    with cursor.copy(sql) as copy:
        write = copy.write_row
        for pk, row in rows:
            write((pk, *row, *tail))


def _analyze(*models) -> None:
    """Fresh planner statistics for tables just bulk-loaded (PostgreSQL; inside the
    transaction, so its later queries see them)."""
    if connection.vendor != "postgresql":
        return
    tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in models)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}")


def _history(model, created: list) -> None:
    """bulk_create writes no history by itself: record the new rows as created."""
    history_snapshot(
        model, [obj.pk for obj in created], history_type=CREATED, reason=HISTORY_REASON
    )


# --- demo users -----------------------------------------------------------------------------


def demo_users_taken() -> list[str]:
    return sorted(
        User.objects.filter(username__in=[u[0] for u in DEMO_USERS]).values_list(
            "username", flat=True
        )
    )


def demo_users_create(*, password: str) -> list[User]:
    users = []
    for username, role, code, last_name, first_name in DEMO_USERS:
        regions = [Region.objects.get(code=code)] if code else []
        users.append(
            user_create(
                username=username,
                password=password,
                role=role,
                regions=regions,
                last_name=last_name,
                first_name=first_name,
            )
        )
    return users


def demo_logins() -> list[tuple[str, str, str]]:
    """(username, role, regions) of the demo users that exist, in the order of DEMO_USERS."""
    users = {
        u.username: u
        for u in User.objects.filter(username__in=[d[0] for d in DEMO_USERS]).prefetch_related(
            "regions"
        )
    }
    rows = []
    for username, *_rest in DEMO_USERS:
        user = users.get(username)
        if user is None:
            continue
        if user.is_administrator:
            regions = _("all regions")
        else:
            regions = ", ".join(
                f"{r.name} ({r.code})" for r in sorted(user.regions.all(), key=lambda r: r.code)
            )
        rows.append((username, str(Role(user.role).label), regions))
    return rows


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def logins_table(*, rows: list[tuple[str, str, str]], password: str) -> str:
    """The demo logins as a text table, padded for a terminal (Chinese characters are wide)."""
    header = (_("Username"), _("Role"), _("Regions"), _("Password"))
    lines = [header, *((username, role, regions, password) for username, role, regions in rows)]
    widths = [max(_width(line[col]) for line in lines) for col in range(4)]
    text = [
        "  ".join(
            cell + " " * (width - _width(cell)) for cell, width in zip(line, widths, strict=True)
        ).rstrip()
        for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    intro = _("Demo logins (synthetic data, never for production). Open %(url)s and sign in as:")
    return "\n".join([intro % {"url": DEMO_URL}, *text])


def validation_message(error: ValidationError) -> str:
    """A ValidationError as one line for a command's output."""
    if hasattr(error, "message_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
    return " ".join(error.messages)
