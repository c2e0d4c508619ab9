"""Demo photo evidence for seed_demo: inspections with photos drawn by Pillow.

A share of the demo county's households gets a safety appraisal with photos taken "before
works"; houses under renovation also get a works-progress visit, and renovated ones a
completion check with "after" photos. Each photo is a house-like picture drawn for that
household (its colours and proportions come from the household's own random generator, so
no two houses look alike), with EXIF capture time inside the visit and a GPS position a
few metres from the house, written as a phone would (DMS rationals, hemisphere refs).

The photos go through the real pipeline (inspections.photos.photo_upload, then
photo_process, the service the Celery task runs), so their flags are the real ones. Drawing
lives in demo.pictures. A few problems
are planted so that the flags show in the demo: a photo reused for another household (the
same bytes), a re-encoded, slightly cropped copy of another household's photo, a photo
taken 2 km from the house and one without GPS.

Everything is drawn from random generators seeded with the demo seed and from dates fixed
relative to demo.registry.REFERENCE_DATE, never from the clock: a seed gives the same
images, byte for byte.
"""

import datetime
import importlib
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.auth.hashers import make_password
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import Role, User
from demo.pictures import ZONE, draw_photo, house_look, jpeg_with_exif, offset_point, recropped
from demo.registry import COUNTY, REFERENCE_DATE, PhaseClock
from housing import idnumbers
from housing.models import House, Household, Region, RegionLevel, RenovationStatus
from inspections.grading import active_rule, derive_grade
from inspections.models import (
    MEMBERS,
    InspectionKind,
    MemberRating,
    Photo,
    PhotoAngle,
    PhotoStage,
    RequiredPhotoSlot,
    SiteHazard,
)
from inspections.photos import photo_upload
from inspections.processing import photo_process
from inspections.selectors import required_slots
from inspections.services import inspection_submit

# At most this many households are photographed, whatever the county's size: photos are
# the slow part of seeding (about 35 ms of CPU each through the pipeline, ~12 a household),
# and `make run` seeds 2,000 households in well under a minute with this many.
DEFAULT_PHOTOGRAPHED = 80
# The share of the other (not renovated) appraised households that get an appraisal visit,
# and the part of the cap kept for them when the renovated houses alone would fill it.
SHARE = 0.05
OTHERS_SHARE_OF_CAP = 0.15
# The demo inspector covers this township; the others get a field inspector of their own.
DEMO_INSPECTOR = ("inspector", COUNTY[0] + "100")
COMPLETION_CHECKER = "county"  # the county makes the formal completion check (DOMAIN.md)
PHONES = [
    ("HUAWEI", "ELS-AN00"),
    ("Xiaomi", "M2012K11AC"),
    ("OPPO", "PEGM00"),
    ("vivo", "V2055A"),
    ("HONOR", "ANY-AN00"),
]
FAR_AWAY_M = 2000.0
# Planted problems, in the order of the photographed households they are planted in.
PLANTED = ("duplicate", "near_duplicate", "far_away", "no_gps")


@dataclass
class PhotoSummary:
    households: int = 0
    inspections: int = 0
    photos: int = 0
    flagged: int = 0
    flags: Counter = field(default_factory=Counter)
    planted: dict = field(default_factory=dict)  # problem -> archive number of the household


def field_inspector_usernames() -> list[str]:
    """The usernames of the per-township field inspectors the demo creates."""
    return [f"inspector-{code[-3:]}" for code in township_codes() if code != DEMO_INSPECTOR[1]]


def slots_ensure() -> None:
    """In a database without the data migration (tests), the default required slots."""
    if not RequiredPhotoSlot.objects.exists():
        defaults = importlib.import_module("inspections.migrations.0002_default_configuration")
        RequiredPhotoSlot.objects.bulk_create(
            RequiredPhotoSlot(kind=kind, stage=stage, angle=angle)
            for kind, stages in defaults.SLOTS.items()
            for stage, angles in stages.items()
            for angle in angles
        )


def field_inspectors_taken() -> list[str]:
    return sorted(
        User.objects.filter(username__in=field_inspector_usernames()).values_list(
            "username", flat=True
        )
    )


def problem_label(problem: str) -> str:
    return {
        "duplicate": _("a photo reused from another household"),
        "near_duplicate": _("an edited copy of another household's photo"),
        "far_away": _("a photo taken 2 km from the house"),
        "no_gps": _("a photo without GPS"),
    }[problem]


def township_codes() -> list[str]:
    from demo.registry import TOWNSHIPS

    towns = TOWNSHIPS - TOWNSHIPS // 3
    return [f"{COUNTY[0]}{100 + i}" for i in range(towns)] + [
        f"{COUNTY[0]}{200 + i}" for i in range(TOWNSHIPS - towns)
    ]


def field_inspectors_ensure(*, rnd: random.Random) -> dict[str, User]:
    """township code -> the inspector who visits it: the demo inspector for their township,
    a field inspector (no password: an author of demo records, not a login) elsewhere."""
    from demo.registry import People

    people = People(rnd)
    inspectors = {DEMO_INSPECTOR[1]: User.objects.get(username=DEMO_INSPECTOR[0])}
    for township in Region.objects.filter(
        code__startswith=COUNTY[0], level=RegionLevel.TOWNSHIP
    ).order_by("code"):
        if township.code in inspectors:
            continue
        user = User(
            username=f"inspector-{township.code[-3:]}",
            role=Role.INSPECTOR,
            last_name=people.surname(),
            first_name=people.given(idnumbers.SEX_MALE),
            password=make_password(None),  # unusable
        )
        user.full_clean(exclude=["password"])
        user.save()
        user.regions.set([township])
        inspectors[township.code] = user
    return inspectors


# --- inspections --------------------------------------------------------------------------


def ratings_for(*, grade: str, rnd: random.Random, rule) -> tuple[dict, list]:
    """Member ratings and site hazards that the rule grades `grade`, as an inspector finds."""
    names = [name for name, _label in MEMBERS]
    ratings = dict.fromkeys(names, MemberRating.SOUND.value)
    hazards: list[str] = []
    d_members = [n for n in names if n in rule.d_members]
    local = [n for n in names if n not in rule.d_members]
    if grade in ("B", "C", "D"):
        for name in rnd.sample(names, rnd.randint(1, 2)):
            ratings[name] = MemberRating.DAMAGED.value
    if grade == "C" and local:
        ratings[rnd.choice(local)] = MemberRating.DANGEROUS.value
    if grade == "D":
        if d_members and rnd.random() < 0.85:
            ratings[rnd.choice(d_members)] = MemberRating.DANGEROUS.value
        else:
            hazards.append(rnd.choice(SiteHazard.values))
    return ratings, hazards


def appraisal_payload(*, grade: str, rnd: random.Random, rule) -> dict:
    ratings, hazards = ratings_for(grade=grade, rnd=rnd, rule=rule)
    record = {**ratings, "site_hazards": hazards}
    if derive_grade(ratings=ratings, site_hazards=hazards, rule=rule) != grade:
        # An administrator's own rule may not give this grade from these ratings.
        record.update(grade=grade, override_reason="Demo data: the grade recorded in the registry.")
    return record


def _visit(
    day: datetime.date, rnd: random.Random, minutes: int
) -> tuple[datetime.datetime, datetime.datetime]:
    start = datetime.datetime.combine(day, datetime.time(8, 30), tzinfo=ZONE) + datetime.timedelta(
        minutes=rnd.randint(0, 7 * 60)
    )
    return start, start + datetime.timedelta(minutes=minutes)


@dataclass
class Plan:
    household: Household
    visits: list  # [(kind, the grade its appraisal gives, or None for no appraisal)]


def _plans(*, seed: int, limit: int) -> list[Plan]:
    """Which households are photographed, and which visits each gets.

    Chosen from (id, status) pairs of the county's appraised houses, then only the chosen
    households are loaded: a benchmark county of 300,000 households costs one light query.
    """
    rnd = random.Random(f"anju-demo-photos:{seed}")
    rows = (
        House.objects.filter(
            is_current=True,
            household__village__code__startswith=COUNTY[0],
            household__location__isnull=False,
            safety_grade__in=["A", "B", "C", "D"],
        )
        .order_by("household__archive_no")
        .values_list("household_id", "renovation_status")
    )
    renovated, others, rest = [], [], []
    for household_id, status in rows.iterator(chunk_size=5000):
        if status in (RenovationStatus.IN_PROGRESS, RenovationStatus.COMPLETED):
            renovated.append(household_id)
        elif rnd.random() < SHARE:
            others.append(household_id)
        else:
            rest.append(household_id)
    # A small county still gets a household for each planted problem, and one to copy from.
    wanted = min(limit, len(PLANTED) + 1)
    if len(renovated) + len(others) < wanted:
        others += rnd.sample(rest, min(len(rest), wanted - len(renovated) - len(others)))
    chosen = renovated + others
    if len(chosen) > limit:
        # Renovated houses first (their before and after photos are the point), and a few
        # others, so that the demo also shows plain appraisals.
        room = min(len(others), max(1, round(limit * OTHERS_SHARE_OF_CAP)))
        chosen = rnd.sample(renovated, min(limit - room, len(renovated)))
        chosen += rnd.sample(others, min(len(others), limit - len(chosen)))
    households = (
        Household.objects.filter(pk__in=chosen)
        .select_related("village__parent")
        .prefetch_related("houses")
        .order_by("archive_no")
    )
    plans = []
    for household in households:
        house = household.current_house
        if house.renovation_status == RenovationStatus.COMPLETED:
            # A repaired C keeps its structure; a rebuilt D is a recent masonry or concrete
            # house. (The works-progress visit is left out here: it would cost time and
            # show nothing the houses in progress do not.)
            rebuilt = (house.year_built or 0) >= 2016 and house.structure_type in (
                "masonry",
                "concrete_frame",
            )
            visits = [
                (InspectionKind.APPRAISAL, "D" if rebuilt else "C"),
                (InspectionKind.COMPLETION, house.safety_grade),
            ]
        elif house.renovation_status == RenovationStatus.IN_PROGRESS:
            visits = [
                (InspectionKind.APPRAISAL, house.safety_grade),
                (InspectionKind.PROGRESS, None),
            ]
        else:
            visits = [(InspectionKind.APPRAISAL, house.safety_grade)]
        plans.append(Plan(household=household, visits=visits))
    return plans


def demo_photos_create(
    *,
    seed: int,
    limit: int = DEFAULT_PHOTOGRAPHED,
    on_progress: Callable[[int, int], None] | None = None,
    before_visit: Callable[..., None] | None = None,
    clock: PhaseClock | None = None,
) -> PhotoSummary:
    """Appraisals, progress visits and completion checks with photos for up to `limit`
    households of the demo county (which must exist), through the real services.

    `before_visit(household=, house=, kind=, day=)` is called before each visit after the
    first: the renovation-case demo (demo.cases) takes a case through its
    approval steps there, before the completion check grades the house A or B. `clock`, if
    given, collects the seconds of each phase (drawing, uploads, processing...).
    """
    clock = clock or PhaseClock()
    summary = PhotoSummary()
    if limit <= 0:
        return summary
    slots_ensure()
    slots = required_slots()
    rule = active_rule()
    # One transaction for the whole demo: a commit per photo costs more than the photo on
    # SQLite (each commit waits for the disk). So each photo is processed right after its
    # upload by the service the task runs; the task queued for after the commit then finds
    # the photo done (processing is idempotent).
    with transaction.atomic():
        inspectors = field_inspectors_ensure(rnd=random.Random(f"anju-demo-inspectors:{seed}"))
        checker = User.objects.get(username=COMPLETION_CHECKER)
        with clock.phase("photo_plans"):
            plans = _plans(seed=seed, limit=limit)
        # The first household's photos are the ones the planted problems copy; the next
        # four households get one problem each.
        problems = dict(zip((plan.household.pk for plan in plans[1:]), PLANTED, strict=False))
        source: dict[tuple[str, str], bytes] = {}
        for index, plan in enumerate(plans):
            problem = problems.get(plan.household.pk)
            photograph(
                plan=plan,
                seed=seed,
                rule=rule,
                slots=slots,
                inspector=inspectors[plan.household.village.parent.code],
                checker=checker,
                problem=problem,
                source=source if index == 0 else None,
                copies=source,
                summary=summary,
                before_visit=before_visit,
                clock=clock,
            )
            if problem:
                summary.planted[problem] = plan.household.archive_no
            if on_progress:
                on_progress(index + 1, len(plans))
    summary.households = len(plans)
    photos = Photo.objects.filter(inspection__house__household__in=[p.household for p in plans])
    for flags in photos.values_list("flags", flat=True):
        if flags:
            summary.flagged += 1
            summary.flags.update(flag["code"] for flag in flags)
    return summary


# The slot each planted problem takes: the duplicate and the near-duplicate copy the photo
# of the first household in that slot.
PROBLEM_SLOTS = {
    "duplicate": (PhotoStage.BEFORE, PhotoAngle.FRONT),
    "near_duplicate": (PhotoStage.BEFORE, PhotoAngle.LEFT),
    "far_away": (PhotoStage.BEFORE, PhotoAngle.BACK),
    "no_gps": (PhotoStage.BEFORE, PhotoAngle.INTERIOR),
}


def photograph(
    *,
    plan,
    seed,
    rule,
    slots,
    inspector,
    checker,
    problem,
    source,
    copies,
    summary,
    before_visit=None,
    clock: PhaseClock | None = None,
):
    """The household's visits, each with its photos, through the services.

    `source`: where to keep this household's photo files for later problems to copy (for
    the first household only); `copies`: the files kept so far.
    """
    clock = clock or PhaseClock()
    household = plan.household
    rnd = random.Random(f"anju-demo-photos:{seed}:{household.archive_no}")
    house = household.current_house
    look = house_look(rnd, house.storeys or 1)
    camera = rnd.choice(PHONES)
    lon, lat = household.location.x, household.location.y
    doorplate = household.address[-4:] if household.address else household.archive_no[-4:]
    day = REFERENCE_DATE - datetime.timedelta(days=rnd.randint(300, 540))
    # The slots a planted problem needs are never left out.
    keep = {PROBLEM_SLOTS[p] for p in PLANTED} if source is not None else set()
    keep |= {PROBLEM_SLOTS[problem]} if problem else set()
    for visit, (kind, grade) in enumerate(plan.visits):
        if before_visit is not None and visit > 0:
            with clock.phase("case_steps"):
                before_visit(household=household, house=house, kind=kind, day=day)
        wanted = list(slots.get(kind, []))
        # Some visits come back without a photo or two: the household file shows them missing.
        if len(wanted) > 3 and rnd.random() < 0.2:
            for slot in rnd.sample(wanted, rnd.randint(1, 2)):
                if slot not in keep:
                    wanted.remove(slot)
        start, end = _visit(day, rnd, minutes=20 + 6 * len(wanted) + rnd.randint(0, 30))
        user = checker if kind == InspectionKind.COMPLETION else inspector
        submitting = time.perf_counter()
        inspection, _created = inspection_submit(
            user=user,
            client_uuid=uuid.UUID(int=rnd.getrandbits(128), version=4),
            household=household,
            kind=kind,
            started_at=start,
            ended_at=end,
            location=offset_point(
                lon, lat, metres=rnd.uniform(2, 25), bearing=rnd.uniform(0, 2 * math.pi)
            ),
            accuracy=float(rnd.randint(4, 20)),
            notes="",
            appraisal=None if grade is None else appraisal_payload(grade=grade, rnd=rnd, rule=rule),
        )
        clock.add("inspections", time.perf_counter() - submitting)
        summary.inspections += 1
        for index, slot in enumerate(wanted):
            stage, angle = slot
            taken = start + (end - start) * (index + 1) / (len(wanted) + 1)
            taken += datetime.timedelta(seconds=rnd.randint(-60, 60))
            gps = offset_point(
                lon, lat, metres=rnd.uniform(3, 30), bearing=rnd.uniform(0, 2 * math.pi)
            )
            accuracy = float(rnd.randint(3, 15))
            drawing = time.perf_counter()
            image = draw_photo(rnd=rnd, look=look, stage=stage, angle=angle, doorplate=doorplate)
            planted = problem if problem and slot == PROBLEM_SLOTS[problem] else None
            if planted == "duplicate" and slot in copies:
                data = copies[slot]  # the very same file, reused
            else:
                if planted == "near_duplicate" and slot in copies:
                    image = recropped(copies[slot], rnd=rnd)
                elif planted == "far_away":
                    gps = offset_point(
                        lon, lat, metres=FAR_AWAY_M, bearing=rnd.uniform(0, 2 * math.pi)
                    )
                elif planted == "no_gps":
                    gps = accuracy = None
                data = jpeg_with_exif(
                    image, taken_at=taken, gps=gps, accuracy=accuracy, camera=camera
                )
            if source is not None:
                source[slot] = data
            clock.add("drawing", time.perf_counter() - drawing)
            uploading = time.perf_counter()
            photo, _created = photo_upload(
                user=user,
                inspection=inspection,
                client_uuid=uuid.UUID(int=rnd.getrandbits(128), version=4),
                stage=stage,
                angle=angle,
                file=ContentFile(data, name=f"IMG_{index:04d}.jpg"),
            )
            clock.add("uploads", time.perf_counter() - uploading)
            with clock.phase("processing"):
                photo_process(photo_id=photo.pk)
            summary.photos += 1
        day = min(
            REFERENCE_DATE - datetime.timedelta(days=5),
            day + datetime.timedelta(days=rnd.randint(60, 130)),
        )
