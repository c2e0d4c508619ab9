"""The photo archive from the demo county: the ZIP's entries against its manifest and the
stored files, originals for administrators and display copies for everyone else, the
folders, the scope, and photos that cannot be included."""

import csv
import hashlib
import io
import zipfile

import pytest
from django.core.files.storage import default_storage

from inspections.models import Photo, PhotoStatus
from renovation.models import RenovationCase
from reports.archive import MANIFEST
from reports.models import ExportStatus
from tests.reports.conftest import DEMO_PHOTOGRAPHED, export_bytes, run_export

COUNTY = "520399"
TOWNSHIP = "520399100"  # the demo township user's township
OTHER_TOWNSHIP = "520399101"

PATH = "Path in the archive"
KEY = "Photo key"
SHA = "SHA-256 of the file in the archive"
ORIGINAL_SHA = "SHA-256 of the original as uploaded"
NOTE = "Note"


def open_archive(export) -> tuple[zipfile.ZipFile, list[dict]]:
    data = export_bytes(export)
    archive = zipfile.ZipFile(io.BytesIO(data))
    raw = archive.read(MANIFEST)
    assert raw.startswith(b"\xef\xbb\xbf"), "the manifest starts with a UTF-8 byte-order mark"
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    return archive, rows


def stored_bytes(name: str) -> bytes:
    with default_storage.open(name, "rb") as handle:
        return handle.read()


def photos_under(code: str):
    return Photo.objects.filter(
        inspection__house__household__village__code__startswith=code
    ).select_related("inspection__house__household__village")


def expected_path(photo: Photo, extension: str) -> str:
    household = photo.inspection.house.household
    return (
        f"{household.village.name}/{household.archive_no}/{photo.stage}/{photo.angle}/"
        f"{photo.key}.{extension}"
    )


@pytest.mark.usefixtures("demo_county")
class TestPhotoArchive:
    def test_the_auditor_gets_every_display_copy_as_the_manifest_says(self, demo_county):
        export = run_export(demo_county.auditor, "photos", "zip", region=COUNTY)
        assert export.status == ExportStatus.DONE, export.error
        photos = {str(p.key): p for p in photos_under(COUNTY)}
        assert photos and export.total == export.done == len(photos)
        archive, rows = open_archive(export)

        assert sorted(r[KEY] for r in rows) == sorted(photos)
        assert sorted(archive.namelist()) == sorted([MANIFEST, *(r[PATH] for r in rows)])
        households = {p.inspection.house.household_id for p in photos.values()}
        assert len(households) >= DEMO_PHOTOGRAPHED
        for row in rows:
            photo = photos[row[KEY]]
            assert row[PATH] == expected_path(photo, "jpg")
            assert row["File"] == "display copy"
            data = archive.read(row[PATH])
            assert data == stored_bytes(photo.display.name)
            assert row[SHA] == hashlib.sha256(data).hexdigest()
            assert row["Size (bytes)"] == str(len(data))
            assert row[ORIGINAL_SHA] == photo.sha256
            assert row["Archive number"] == photo.inspection.house.household.archive_no
            assert row["Status"] == "Ready"
            assert archive.getinfo(row[PATH]).compress_type == zipfile.ZIP_STORED

    def test_the_manifest_has_capture_gps_distance_and_flags_in_words(self, demo_county):
        export = run_export(demo_county.auditor, "photos", "zip", region=COUNTY)
        _archive, rows = open_archive(export)
        row = next(r for r in rows if r["Stage"] == "Before works" and r["Angle"] == "Front")
        photo = Photo.objects.get(key=row[KEY])
        assert row["Taken at"].startswith(f"{photo.taken_at:%Y}-")
        assert float(row["GPS longitude"]) == pytest.approx(photo.gps.x, abs=1e-6)
        assert float(row["GPS latitude"]) == pytest.approx(photo.gps.y, abs=1e-6)
        assert float(row["Distance to the house (m)"]) < 1000
        # The demo plants a photo taken 2 km from the house and one reused for another.
        flagged = [r["Evidence flags"] for r in rows if r["Evidence flags"]]
        assert any(f.startswith("Taken far from the house (GPS is ") for f in flagged)
        assert any("Exact copy of another photo (Same file as the " in f for f in flagged)

    def test_an_administrator_gets_the_originals_byte_for_byte(self, demo_county):
        export = run_export(demo_county.admin, "photos", "zip", region=TOWNSHIP)
        assert export.status == ExportStatus.DONE, export.error
        archive, rows = open_archive(export)
        photos = {str(p.key): p for p in photos_under(TOWNSHIP)}
        assert photos and sorted(r[KEY] for r in rows) == sorted(photos)
        for row in rows:
            photo = photos[row[KEY]]
            assert row[PATH] == expected_path(photo, "jpg")
            assert row["File"] == "original"
            data = archive.read(row[PATH])
            assert data == stored_bytes(photo.original.name)
            assert row[SHA] == row[ORIGINAL_SHA] == hashlib.sha256(data).hexdigest()
            assert row[NOTE] == ""

    def test_the_township_user_gets_only_their_township(self, demo_county):
        export = run_export(demo_county.township, "photos", "zip", region=TOWNSHIP)
        assert export.status == ExportStatus.DONE, export.error
        _archive, rows = open_archive(export)
        assert rows
        assert sorted(r[KEY] for r in rows) == sorted(
            str(k) for k in photos_under(TOWNSHIP).values_list("key", flat=True)
        )
        assert {r["Village code"][:9] for r in rows} == {TOWNSHIP}

    def test_a_region_outside_the_users_regions_fails_with_no_file(self, demo_county):
        export = run_export(demo_county.township, "photos", "zip", region=OTHER_TOWNSHIP)
        assert export.status == ExportStatus.FAILED
        assert export.error == f"There is no region {OTHER_TOWNSHIP} among your regions."
        assert not export.file

    def test_a_funding_year_keeps_the_photos_of_that_years_cases(self, demo_county):
        year = (
            RenovationCase.objects.filter(house__inspections__photos__isnull=False)
            .values_list("funding_year", flat=True)
            .order_by("funding_year")
            .first()
        )
        export = run_export(demo_county.auditor, "photos", "zip", region=COUNTY, funding_year=year)
        assert export.status == ExportStatus.DONE, export.error
        _archive, rows = open_archive(export)
        houses = RenovationCase.objects.filter(funding_year=year).values("house")
        expected = photos_under(COUNTY).filter(inspection__house__in=houses)
        assert 0 < expected.count() < photos_under(COUNTY).count()
        assert sorted(r[KEY] for r in rows) == sorted(
            str(k) for k in expected.values_list("key", flat=True)
        )

    def test_a_missing_file_is_a_manifest_row_not_a_failure(self, demo_county):
        photo = photos_under(COUNTY).order_by("pk").first()
        Photo.objects.filter(pk=photo.pk).update(display="photos/display/gone.jpg")
        export = run_export(demo_county.auditor, "photos", "zip", region=COUNTY)
        assert export.status == ExportStatus.DONE, export.error
        archive, rows = open_archive(export)
        row = next(r for r in rows if r[KEY] == str(photo.key))
        assert row[PATH] == row[SHA] == row["File"] == ""
        assert row[NOTE] == "The file is missing from storage: photos/display/gone.jpg"
        assert len(archive.namelist()) == len(rows)  # the others, and the manifest

    def test_an_unprocessed_photo_is_listed_for_non_administrators(self, demo_county):
        photo = photos_under(COUNTY).order_by("pk").first()
        Photo.objects.filter(pk=photo.pk).update(display="", status=PhotoStatus.PENDING)
        export = run_export(demo_county.county, "photos", "zip", region=COUNTY)
        archive, rows = open_archive(export)
        row = next(r for r in rows if r[KEY] == str(photo.key))
        assert row[PATH] == ""
        assert row["Status"] == "Processing"
        assert row[NOTE] == "Not processed yet: there is no display copy to include."
        assert not [n for n in archive.namelist() if str(photo.key) in n]

        admin_export = run_export(demo_county.admin, "photos", "zip", region=COUNTY)
        admin_archive, admin_rows = open_archive(admin_export)
        admin_row = next(r for r in admin_rows if r[KEY] == str(photo.key))
        assert admin_archive.read(admin_row[PATH]) == stored_bytes(photo.original.name)

    def test_folders_keep_the_codes_and_the_manifest_words_them_in_the_language(self, demo_county):
        export = run_export(
            demo_county.auditor, "photos", "zip", language="zh-hans", region=TOWNSHIP
        )
        archive, _rows = open_archive(export)
        with archive.open(MANIFEST) as handle:
            lines = list(csv.reader(io.TextIOWrapper(handle, encoding="utf-8-sig")))
        photo = photos_under(TOWNSHIP).filter(stage="before", angle="front").first()
        row = next(r for r in lines[1:] if r[6] == str(photo.key))
        assert row[0] == expected_path(photo, "jpg")  # .../before/front/<key>.jpg
        assert (row[4], row[5]) == ("改造前", "正面")
