"""Evidence flags on real uploaded files, and the banded near-duplicate lookup."""

import datetime
import math
import random
import uuid

import pytest

from inspections import evidence, imaging
from inspections.models import Photo
from inspections.processing import photo_process
from tests.factories import HouseFactory, HouseholdFactory
from tests.inspections import images
from tests.inspections.factories import InspectionFactory, flag_summary, upload_photo

pytestmark = pytest.mark.django_db

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
HOUSE_LON, HOUSE_LAT = 107.905, 27.205  # HouseholdFactory's location
START = datetime.datetime(2026, 5, 1, 9, 0, tzinfo=SHANGHAI)
END = datetime.datetime(2026, 5, 1, 10, 0, tzinfo=SHANGHAI)


def visit(house=None, **kwargs):
    """An inspection on 1 May 2026, 09:00–10:00 Beijing time."""
    return InspectionFactory(
        house=house or HouseFactory(), started_at=START, ended_at=END, **kwargs
    )


def exif(
    *, taken_at=START + datetime.timedelta(minutes=20), lat=HOUSE_LAT + 0.0001, lon=HOUSE_LON, **kw
):
    return images.make_exif(taken_at=taken_at, lat=lat, lon=lon, **kw)


def codes(photo):
    return [flag["code"] for flag in photo.flags]


def meridian_arc_m(lat1: float, lat2: float) -> float:
    """Distance along a meridian on the WGS84 ellipsoid (midpoint radius: exact to < 1 cm here)."""
    a, e2 = 6378137.0, 6.69437999014e-3
    phi = math.radians((lat1 + lat2) / 2)
    radius = a * (1 - e2) / (1 - e2 * math.sin(phi) ** 2) ** 1.5
    return radius * math.radians(abs(lat2 - lat1))


# --- where --------------------------------------------------------------------------------


def test_a_photo_near_the_house_and_in_time_has_no_flags():
    photo, _ = upload_photo(visit(), images.jpeg(exif=exif()))
    assert photo.status == "ready"
    assert flag_summary(photo.flags) == []


def test_a_photo_without_gps_is_flagged():
    photo, _ = upload_photo(visit(), images.jpeg(exif=exif(lat=None, lon=None)))
    assert flag_summary(photo.flags) == [
        {"code": "no_gps", "detail": "The photo carries no GPS position in its EXIF data."}
    ]


def test_a_photo_taken_2_km_away_is_flagged_with_the_geodesic_distance():
    lat = HOUSE_LAT + 0.018
    photo, _ = upload_photo(visit(), images.jpeg(exif=exif(lat=lat, accuracy=5)))
    expected = meridian_arc_m(HOUSE_LAT, lat)
    assert round(expected) == 1995  # on a sphere it would be 2,002 m
    [flag] = photo.flags
    assert flag["code"] == "far_from_house"
    assert flag["distance_m"] == pytest.approx(expected, abs=1.0)
    assert flag["detail"] == "GPS is 1,995 m from the house (limit 150 m; GPS accuracy 5 m)."


def test_a_flag_is_worded_in_the_readers_language():
    from django.utils import translation

    from inspections.evidence import flag_detail

    photo, _ = upload_photo(visit(), images.jpeg(exif=exif(lat=HOUSE_LAT + 0.018)))
    [flag] = photo.flags
    with translation.override("zh-hans"):
        assert flag_detail(flag) == "GPS 位置距房屋 1995 米（上限 150 米）。"
    assert flag_detail(flag) == "GPS is 1,995 m from the house (limit 150 m)."


def test_the_distance_limit_is_a_setting(settings):
    settings.ANJU_PHOTO_MAX_DISTANCE_M = 5000
    photo, _ = upload_photo(visit(), images.jpeg(exif=exif(lat=HOUSE_LAT + 0.018)))
    assert flag_summary(photo.flags) == []
    settings.ANJU_PHOTO_MAX_DISTANCE_M = 10
    photo, _ = upload_photo(visit(), images.jpeg(exif=exif(lat=HOUSE_LAT + 0.0002), seed=2))
    assert flag_summary(photo.flags) == [
        {
            "code": "far_from_house",
            "detail": "GPS is 22 m from the house (limit 10 m).",
            "distance_m": 22.2,
        }
    ]


def test_no_distance_flag_when_the_household_has_no_location():
    house = HouseFactory(household=HouseholdFactory(location=None))
    photo, _ = upload_photo(visit(house), images.jpeg(exif=exif(lat=HOUSE_LAT + 0.5)))
    assert flag_summary(photo.flags) == []


# --- when ----------------------------------------------------------------------------------


def test_a_photo_without_a_capture_time_is_flagged():
    photo, _ = upload_photo(visit(), images.jpeg(exif=exif(taken_at=None)))
    assert flag_summary(photo.flags) == [
        {"code": "no_time", "detail": "The photo carries no capture time (EXIF DateTimeOriginal)."}
    ]


def test_a_photo_taken_before_the_visit_is_flagged_with_the_gap():
    taken = START - datetime.timedelta(hours=3, minutes=5)
    photo, _ = upload_photo(visit(), images.jpeg(exif=exif(taken_at=taken)))
    assert flag_summary(photo.flags) == [
        {
            "code": "outside_window",
            "detail": "Taken at 2026-05-01 05:55, 3 h 5 min before the inspection started at "
            "2026-05-01 09:00 (tolerance 30 min).",
        }
    ]


def test_a_photo_taken_days_after_the_visit_is_flagged():
    taken = END + datetime.timedelta(days=3, hours=2)
    photo, _ = upload_photo(visit(), images.jpeg(exif=exif(taken_at=taken)))
    assert flag_summary(photo.flags) == [
        {
            "code": "outside_window",
            "detail": "Taken at 2026-05-04 12:00, 3 d 2 h after the inspection ended at "
            "2026-05-01 10:00 (tolerance 30 min).",
        }
    ]


def test_a_photo_within_the_tolerance_is_not_flagged():
    for minutes, seed in ((-29, 1), (89, 2)):
        taken = START + datetime.timedelta(minutes=minutes)
        photo, _ = upload_photo(visit(), images.jpeg(exif=exif(taken_at=taken), seed=seed))
        assert flag_summary(photo.flags) == [], minutes


def test_a_photo_from_the_future_is_flagged(settings):
    inspection = visit()
    photo, _ = upload_photo(inspection, images.jpeg(exif=exif(taken_at="2099:01:01 08:00:00")))
    [flag] = photo.flags
    assert flag["code"] == "in_future"
    assert flag["detail"].startswith("Taken at 2099-01-01 08:00, ")
    assert " after the server received it (" in flag["detail"]


# --- same file -----------------------------------------------------------------------------


def test_the_same_file_for_another_household_flags_both_photos():
    first_visit, second_visit = visit(), visit()
    data = images.jpeg(exif=exif())
    first, _ = upload_photo(first_visit, data)
    second, _ = upload_photo(second_visit, data)
    first.refresh_from_db()
    first_archive = first_visit.house.household.archive_no
    second_archive = second_visit.house.household.archive_no
    [flag] = flag_summary(second.flags)
    assert flag == {
        "code": "duplicate",
        "detail": f"Same file as the Before works · Front photo of household {first_archive} "
        f"uploaded {first.created_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}.",
        "other": str(first.key),
    }
    [back] = flag_summary(first.flags)
    assert back["code"] == "duplicate" and back["from_other"] is True
    assert back["other"] == str(second.key)
    assert f"photo of household {second_archive} uploaded" in back["detail"]


def test_the_same_file_twice_in_one_household_is_flagged():
    inspection = visit()
    data = images.jpeg(exif=exif())
    upload_photo(inspection, data, angle="front")
    second, _ = upload_photo(inspection, data, angle="left")
    assert codes(second) == ["duplicate"]
    assert second.flags[0]["detail"].startswith(
        "Same file as the Before works · Front photo of this household uploaded "
    )


# --- looks the same ------------------------------------------------------------------------


def test_a_recropped_reencoded_copy_of_another_households_photo_is_flagged():
    original_visit, copy_visit = visit(), visit()
    data = images.jpeg(exif=exif(), seed=7)
    original, _ = upload_photo(original_visit, data)
    copy = images.reencoded_crop(data)
    assert copy != data
    suspect, _ = upload_photo(copy_visit, copy)
    distance = imaging.hamming(original.phash, suspect.phash)
    assert 0 < distance <= 8
    archive = original_visit.house.household.archive_no
    assert flag_summary(suspect.flags)[-1] == {
        "code": "near_duplicate_other",
        "detail": f"Looks like the Before works · Front photo of household {archive} uploaded "
        f"{original.created_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M} (hash distance "
        f"{distance} of 64 bits, limit 8).",
        "other": str(original.key),
    }
    # The re-encoded copy lost the EXIF: also no GPS and no time.
    assert codes(suspect) == ["no_gps", "no_time", "near_duplicate_other"]
    original.refresh_from_db()
    assert [(f["code"], f["other"], f["from_other"]) for f in original.flags] == [
        ("near_duplicate_other", str(suspect.key), True)
    ]


def test_a_different_house_picture_for_another_household_is_not_flagged():
    upload_photo(visit(), images.jpeg(exif=exif(), seed=7))
    other, _ = upload_photo(visit(), images.jpeg(exif=exif(), seed=8))
    assert flag_summary(other.flags) == []


def test_an_after_photo_like_the_before_photo_of_the_same_house_is_flagged():
    house = HouseFactory()
    data = images.jpeg(exif=exif(), seed=3)
    before, _ = upload_photo(visit(house), data, stage="before")
    after, _ = upload_photo(
        visit(house, kind="completion"), images.reencoded_crop(data), stage="after"
    )
    assert codes(after)[-1] == "near_duplicate_stage"
    assert after.flags[-1]["detail"].startswith(
        "Looks like the Before works · Front photo of this house uploaded "
    )
    before.refresh_from_db()
    assert flag_summary(before.flags) == []


def test_the_after_photo_is_flagged_even_when_the_before_photo_is_uploaded_later():
    house = HouseFactory()
    data = images.jpeg(exif=exif(), seed=3)
    after, _ = upload_photo(visit(house, kind="completion"), data, stage="after")
    before, _ = upload_photo(visit(house), images.reencoded_crop(data), stage="before")
    assert "near_duplicate_stage" not in codes(before)
    after.refresh_from_db()
    assert [(f["code"], f["other"]) for f in after.flags] == [
        ("near_duplicate_stage", str(before.key))
    ]


def test_two_shots_of_one_stage_of_the_same_house_are_not_flagged():
    inspection = visit()
    data = images.jpeg(exif=exif(), seed=3)
    upload_photo(inspection, data, angle="front")
    second, _ = upload_photo(inspection, images.reencoded_crop(data), angle="front")
    assert codes(second) == ["no_gps", "no_time"]  # the copy lost its EXIF; nothing else


def test_reprocessing_keeps_flags_from_other_photos_without_repeating_them():
    data = images.jpeg(exif=exif(), seed=4)
    first, _ = upload_photo(visit(), data)
    upload_photo(visit(), images.reencoded_crop(data))
    first.refresh_from_db()
    flags = list(first.flags)
    Photo.objects.filter(pk=first.pk).update(status="pending")
    again = photo_process(photo_id=first.pk)
    assert flag_summary(again.flags) == [
        {k: v for k, v in f.items() if k != "from_other"} for f in flag_summary(flags)
    ]


def test_flags_never_block_an_upload():
    far_and_late = exif(taken_at=END + datetime.timedelta(hours=5), lat=HOUSE_LAT + 0.05)
    photo, created = upload_photo(visit(), images.jpeg(exif=far_and_late))
    assert created is True and photo.status == "ready"
    assert codes(photo) == ["far_from_house", "outside_window"]


# --- the banded lookup ---------------------------------------------------------------------


def _flip(value: int, bits) -> int:
    for bit in bits:
        value ^= 1 << bit
    return value


def _store_hashes(hashes):
    inspection = InspectionFactory()
    rows = []
    for value in hashes:
        bands = imaging.hash_bands(value)
        rows.append(
            Photo(
                client_uuid=uuid.uuid4(),
                inspection=inspection,
                stage="before",
                angle="front",
                uploaded_by=inspection.inspector,
                original="photos/original/none",
                original_format="JPEG",
                byte_size=1,
                sha256=f"{len(rows):064x}",
                phash=imaging.to_signed64(value),
                phash_band0=bands[0],
                phash_band1=bands[1],
                phash_band2=bands[2],
                status="ready",
            )
        )
    return Photo.objects.bulk_create(rows)


def test_band_neighbours_are_every_value_within_the_radius():
    values = evidence.band_neighbours(0xBEEF, 2, 16)
    assert len(values) == len(set(values)) == 1 + 16 + 120
    assert all(imaging.hamming(0xBEEF, v) <= 2 for v in values)
    wide = evidence.band_neighbours(0x1ABCDE, 2, 21)
    assert len(wide) == len(set(wide)) == 1 + 21 + 210
    assert all(v < 1 << 21 and imaging.hamming(0x1ABCDE, v) <= 2 for v in wide)


def test_the_banded_lookup_finds_exactly_what_a_full_scan_finds():
    rng = random.Random(2026)
    query = rng.getrandbits(64)
    # Planted neighbours at every distance 0..12, spread over the bands in the worst way
    # (the differing bits shared as evenly as possible), plus random hashes.
    band_starts = (43, 22, 0)  # the lowest bit of each band (imaging.HASH_BAND_BITS)
    planted = []
    for distance in range(13):
        bits = [band_starts[i % 3] + i // 3 for i in range(distance)]
        planted.append(_flip(query, bits))
    planted.append(query | (1 << 63))  # the sign bit
    stored = _store_hashes(planted + [rng.getrandbits(64) for _ in range(300)])
    for max_distance in (0, 3, 4, 8, 10):
        expected = sorted(
            (
                (p.pk, imaging.hamming(query, p.phash))
                for p in stored
                if imaging.hamming(query, p.phash) <= max_distance
            ),
            key=lambda item: (item[1], item[0]),
        )
        assert evidence.near_duplicates(phash=query, max_distance=max_distance) == expected
        assert len(expected) >= max_distance + 1
    signed = imaging.to_signed64(query)
    assert evidence.near_duplicates(phash=signed, max_distance=8) == evidence.near_duplicates(
        phash=query, max_distance=8
    )


def test_the_lookup_excludes_the_photo_itself():
    [photo] = _store_hashes([12345])
    assert evidence.near_duplicates(phash=12345, max_distance=8) == [(photo.pk, 0)]
    assert evidence.near_duplicates(phash=12345, max_distance=8, exclude_photo_id=photo.pk) == []


def test_on_postgresql_only_the_matches_leave_the_database():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if not evidence.hamming_in_sql():
        pytest.skip("bit_count is PostgreSQL 14+; elsewhere the candidates are checked in Python")
    rng = random.Random(7)
    query = rng.getrandbits(64)
    # Candidates: the same top band as the query, the other 43 bits far from it.
    far = [_flip(query, rng.sample(range(43), 20)) for _ in range(40)]
    near = [_flip(query, [0, 17, 33]), _flip(query, [1, 2, 3, 4, 5, 6, 7, 50])]
    stored = _store_hashes(far + near)
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")
        workers = cursor.fetchone()
    with CaptureQueriesContext(connection) as queries:
        found = evidence.near_duplicates(phash=query, max_distance=8)
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")
        # Switched off for the lookup only, not for the rest of the caller's transaction.
        assert cursor.fetchone() == workers
    assert found == [(stored[40].pk, 3), (stored[41].pk, 8)]
    [lookup] = [q for q in queries.captured_queries if "bit_count" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(lookup["sql"])
        rows = cursor.fetchall()
    # Each match comes once per band it shares with the query; no far candidate comes back.
    assert {pk for pk, _distance in rows} == {stored[40].pk, stored[41].pk}
    assert all(distance <= 8 for _pk, distance in rows)


def test_the_migration_to_three_bands_computes_them_as_python_does():
    """inspections 0009 recomputes the stored bands in SQL: the same values as hash_bands,
    for hashes with the sign bit set too, on PostGIS and SpatiaLite."""
    import importlib

    from django.db import connection

    migration = importlib.import_module("inspections.migrations.0009_phash_three_bands")
    rng = random.Random(9)
    values = [0, 1, (1 << 64) - 1, 1 << 63, *(rng.getrandbits(64) for _ in range(50))]
    stored = _store_hashes(values)
    Photo.objects.update(phash_band0=-1, phash_band1=-1, phash_band2=-1)
    with connection.cursor() as cursor:
        cursor.execute(migration.THREE_BANDS.format(table=Photo._meta.db_table))
    for photo, value in zip(
        Photo.objects.filter(pk__in=[p.pk for p in stored]).order_by("pk"), values, strict=True
    ):
        assert (photo.phash_band0, photo.phash_band1, photo.phash_band2) == imaging.hash_bands(
            value
        )
