"""seed_demo's photo evidence: drawn photos through the real pipeline, with planted problems."""

import hashlib
import io
import math
import re
from pathlib import Path

import pytest

# shapely before anything loads Django's GEOS: its bundled GEOS must be the first one loaded,
# or its calls bind to the system library (demo.registry draws the county with shapely).
import shapely  # noqa: F401
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import override_settings
from django.utils import translation
from PIL import ExifTags, Image

from accounts.models import Role, User
from housing.models import House, Household
from inspections.models import Inspection, Photo

N = 60
PHOTOGRAPHED = 6
PASSWORD = "demo-pass-for-tests-26"


@pytest.fixture(autouse=True)
def _demo_settings(settings):
    settings.ANJU_DEMO_PASSWORD = PASSWORD


def seed(**options) -> str:
    out = io.StringIO()
    call_command(
        "seed_demo",
        stdout=out,
        # The photos alone: the renovation cases have their own tests (tests/renovation).
        **{"households": N, "seed": 3, "photos": PHOTOGRAPHED, "no_cases": True, **options},
    )
    return out.getvalue()


def metres(a, b) -> float:
    """Haversine distance between two (lon, lat) points."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


def photos_of(archive_no):
    return Photo.objects.filter(inspection__house__household__archive_no=archive_no)


def codes(photo) -> list[str]:
    return [flag["code"] for flag in photo.flags]


@pytest.fixture(scope="class")
def seeded_once(class_rows, tmp_path_factory) -> tuple[str, Path]:
    """One seed for all the tests of a class (see class_rows): each costs seconds."""
    media = tmp_path_factory.mktemp("demo-media")
    demo_settings = override_settings(
        MEDIA_ROOT=media,
        ANJU_DEMO_PASSWORD=PASSWORD,
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    )
    with demo_settings, translation.override("en"):
        return seed(), media


@pytest.fixture
def seeded(seeded_once, db, settings) -> str:
    out, media = seeded_once
    settings.MEDIA_ROOT = media  # where the seed stored the photos
    return out


class TestOneSeededCounty:
    """What one seed made, checked by tests that only read it and share it."""

    def test_the_summary_and_each_planted_problem_shows_as_its_flag(self, seeded):
        lines = seeded.splitlines()
        summary = re.fullmatch(
            r"Photo evidence in [\d.]+ s: (\d+) households, (\d+) inspections, (\d+) photos, "
            r"(\d+) of them with evidence flags\.",
            lines[1],
        )
        planted = dict(
            part.rsplit(": ", 1)
            for part in lines[2]
            .removeprefix("Planted problems, to see the flags: ")
            .removesuffix(".")
            .split("; ")
        )

        assert summary, lines[1]
        households, inspections, photos, flagged = map(int, summary.groups())
        assert households == PHOTOGRAPHED
        assert Household.objects.filter(houses__inspections__isnull=False).distinct().count() == 6
        assert (inspections, photos) == (Inspection.objects.count(), Photo.objects.count())
        assert flagged == Photo.objects.exclude(flags=[]).count()
        assert lines[3].startswith("Demo logins")
        assert set(Photo.objects.values_list("status", flat=True)) == {"ready"}
        assert list(planted) == [
            "a photo reused from another household",
            "an edited copy of another household's photo",
            "a photo taken 2 km from the house",
            "a photo without GPS",
        ]

        reused = photos_of(planted["a photo reused from another household"]).get(
            stage="before", angle="front"
        )
        assert "duplicate" in codes(reused)
        assert Photo.objects.filter(sha256=reused.sha256).count() == 2
        original = Photo.objects.filter(sha256=reused.sha256).exclude(pk=reused.pk).get()
        assert original.inspection.house_id != reused.inspection.house_id
        assert "duplicate" in codes(original)

        edited = photos_of(planted["an edited copy of another household's photo"]).get(
            stage="before", angle="left"
        )
        assert codes(edited) == ["near_duplicate_other"]
        assert "(hash distance " in edited.flags[0]["detail"]

        far = photos_of(planted["a photo taken 2 km from the house"]).get(
            stage="before", angle="back"
        )
        assert codes(far) == ["far_from_house"]
        assert re.fullmatch(
            r"GPS is (1,99\d|2,0[01]\d) m from the house \(limit 150 m; GPS accuracy \d+ m\)\.",
            far.flags[0]["detail"],
        )

        no_gps = photos_of(planted["a photo without GPS"]).get(stage="before", angle="interior")
        assert codes(no_gps) == ["no_gps"]
        assert no_gps.gps is None

    def test_photos_carry_exif_time_in_the_visit_and_gps_near_the_house(self, seeded):
        planted = {"far_from_house", "no_gps", "duplicate"}
        checked = 0
        for photo in Photo.objects.select_related("inspection__house__household"):
            with Image.open(Path(settings.MEDIA_ROOT) / photo.original.name) as image:
                exif = image.getexif()
                assert image.format == "JPEG" and image.size == (800, 600)
            assert exif[ExifTags.Base.Make] and exif[ExifTags.Base.Model]
            assert photo.sha256 == hashlib.sha256(photo.original.read()).hexdigest()
            if planted & set(codes(photo)):
                continue
            inspection = photo.inspection
            assert inspection.started_at <= photo.taken_at <= inspection.ended_at
            house = inspection.house.household.location
            assert metres(photo.gps.coords, house.coords) <= 31
            assert photo.gps_accuracy is not None
            checked += 1
        assert checked >= 30

    def test_visits_follow_the_renovation_and_keep_the_registry_grades(self, seeded):
        for house in House.objects.filter(inspections__isnull=False).distinct():
            kinds = list(house.inspections.order_by("started_at").values_list("kind", flat=True))
            stages = set(
                Photo.objects.filter(inspection__house=house).values_list("stage", flat=True)
            )
            if house.renovation_status == "completed":
                assert kinds == ["appraisal", "completion"]
                assert stages == {"before", "after"}
                assert house.safety_grade in ("A", "B")
            elif house.renovation_status == "in_progress":
                assert kinds == ["appraisal", "progress"]
                assert stages == {"before", "during"}
            else:
                assert kinds == ["appraisal"]
            latest = house.inspections.filter(appraisal__isnull=False).order_by("-started_at")[0]
            assert house.safety_grade == latest.appraisal.grade

    def test_each_township_has_its_own_field_inspector_who_cannot_log_in(self, seeded):
        inspectors = User.objects.filter(username__startswith="inspector-").prefetch_related(
            "regions"
        )

        assert sorted(u.username for u in inspectors) == [
            "inspector-101",
            "inspector-102",
            "inspector-103",
            "inspector-104",
            "inspector-105",
            "inspector-106",
            "inspector-200",
            "inspector-201",
            "inspector-202",
        ]
        for user in inspectors:
            assert user.role == Role.INSPECTOR
            assert not user.has_usable_password()
            assert [r.code for r in user.regions.all()] == [f"520399{user.username[-3:]}"]
        for inspection in Inspection.objects.select_related(
            "inspector", "house__household__village"
        ):
            township = inspection.house.household.village.code[:9]
            if inspection.kind == "completion":
                assert inspection.inspector.username == "county"
            elif township == "520399100":
                assert inspection.inspector.username == "inspector"
            else:
                assert inspection.inspector.username == f"inspector-{township[-3:]}"


class _Discard(Exception):
    pass


def originals_of_a_fresh_run(seed_value: int) -> list[tuple]:
    assert not Household.objects.exists()
    try:
        with transaction.atomic():
            seed(seed=seed_value)
            rows = [
                (p.inspection.house.household.archive_no, p.stage, p.angle, p.sha256)
                for p in Photo.objects.select_related("inspection__house__household").order_by(
                    "inspection__house__household__archive_no", "stage", "angle"
                )
            ]
            raise _Discard
    except _Discard:
        return rows


@pytest.mark.django_db
def test_the_same_seed_draws_the_same_photos_byte_for_byte():
    first = originals_of_a_fresh_run(3)
    again = originals_of_a_fresh_run(3)

    assert len(first) > 30
    assert first == again
    # Every household's pictures differ: no two originals are the same file but the reused one.
    assert len({row[3] for row in first}) == len(first) - 1


@pytest.mark.django_db
def test_no_photos_makes_no_inspections_and_prints_no_photo_summary():
    out = seed(no_photos=True)

    assert not Inspection.objects.exists()
    assert not User.objects.filter(username__startswith="inspector-").exists()
    assert out.splitlines()[1].startswith("Demo logins")


@pytest.mark.django_db
def test_the_photo_cap_holds_for_a_small_cap():
    seed(photos=2)

    assert Household.objects.filter(houses__inspections__isnull=False).distinct().count() == 2


@pytest.mark.django_db
def test_verbosity_2_adds_the_seconds_of_the_photo_phases(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    with translation.override("en"):
        lines = seed(photos=2, verbosity=2).splitlines()

    start = lines.index("Seconds per phase:")
    end = next(i for i, line in enumerate(lines) if line.startswith("Demo logins"))
    rows = [re.fullmatch(r"  (.+): (\d+\.\d) s", line) for line in lines[start + 1 : end]]
    assert all(rows), lines[start + 1 : end]
    labels = [row[1] for row in rows]
    # After the registry's phases, in the order they first ran; no cases were asked for.
    assert labels[labels.index("Households to photograph chosen") :] == [
        "Households to photograph chosen",
        "Inspections submitted",
        "Photos drawn",
        "Photos uploaded",
        "Photos processed (EXIF, thumbnails, evidence checks)",
        "Photos and cases committed (queued photo tasks)",
        "Total",
    ]
    assert Household.objects.filter(houses__inspections__isnull=False).distinct().count() == 2


@pytest.mark.django_db
def test_a_negative_photo_count_is_refused_before_anything_is_made():
    with pytest.raises(CommandError) as caught:
        seed(photos=-1)

    assert str(caught.value) == "--photos must be 0 or more; got -1."
    assert not Household.objects.exists()


@pytest.mark.django_db
def test_a_taken_field_inspector_username_is_refused(make_user):
    make_user(Role.AUDITOR, username="inspector-201")

    with pytest.raises(CommandError) as caught:
        seed()

    assert str(caught.value) == (
        "The demo users need these usernames, which are already taken: inspector-201. "
        "Rename or delete those users first."
    )
    assert not Household.objects.exists()
