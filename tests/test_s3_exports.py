"""Exports on S3: moto's server over HTTP (tests/s3.py), not a mock.

A finished export is stored in the bucket and downloaded through /exports/<id>/download/ (a
presigned URL) with the SHA-256 it was issued with; the photo archive and the household
file read their photos from the bucket; a store that refuses leaves a failed export and no
file. Small rows of their own, not the package's demo county: these tests are about storage.
"""

import csv
import datetime
import hashlib
import io
import zipfile
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from renovation.models import CaseEvent
from reports.archive import MANIFEST
from reports.models import Export, ExportStatus
from tests import s3 as s3_module
from tests.inspections import images
from tests.inspections.factories import InspectionFactory, upload_photo
from tests.reports.conftest import run_export
from tests.reports.test_documents import image_count
from tests.s3 import fetch

pytestmark = pytest.mark.django_db


@pytest.fixture
def photo(s3, households, make_user, regions):
    """A photo of village 1's household, uploaded and processed into the bucket."""
    inspector = make_user(Role.INSPECTOR, [regions["township1"]], username="inspector1")
    inspection = InspectionFactory(house=households["village1"].houses.get(), inspector=inspector)
    taken = timezone.localtime(timezone.now() - datetime.timedelta(minutes=20))
    exif = images.make_exif(taken_at=taken, lat=27.2051, lon=107.9051, accuracy=5)
    photo, _created = upload_photo(
        inspection, images.jpeg(images.house_picture(4, size=(400, 300)), exif=exif)
    )
    assert photo.status == "ready"
    return photo


def test_an_export_is_stored_in_the_bucket_and_downloaded_with_its_sha256(
    s3, client, households, county_official, make_user, regions
):
    export = run_export(county_official, "households", "csv", filters={})

    assert export.status == ExportStatus.DONE, export.error
    key = f"exports/{export.created_at:%Y/%m}/{export.number}-households.csv"
    assert (export.file, s3.keys()) == (key, [key])
    assert export.content_type == "text/csv; charset=utf-8"
    assert s3.head(key)["ContentType"] == export.content_type

    client.force_login(county_official)
    response = client.get(reverse("reports:export_download", args=[export.pk]))

    assert response.status_code == 302
    assert response["X-Content-SHA256"] == export.sha256
    assert response["Cache-Control"] == "private, no-store"
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{s3.endpoint_url}/{s3_module.BUCKET}/{key}"
    )
    assert parse_qs(location.query)["X-Amz-Expires"] == ["300"]
    status, headers, body = fetch(response["Location"])
    assert status == 200
    assert hashlib.sha256(body).hexdigest() == export.sha256
    assert len(body) == export.size
    assert headers["Content-Type"] == export.content_type
    assert (
        headers["Content-Disposition"] == f'attachment; filename="{export.number}-households.csv"'
    )
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert len(rows) == 1 + len(households)

    # Someone else's export is not theirs to download: 404, and no URL.
    client.force_login(make_user(Role.COUNTY_OFFICIAL, [regions["county"]], username="other"))
    refused = client.get(reverse("reports:export_download", args=[export.pk]))
    assert refused.status_code == 404
    assert "Location" not in refused


def test_an_export_whose_file_is_gone_from_the_bucket_is_404(s3, client, county_official):
    export = run_export(county_official, "households", "csv", filters={})
    s3.empty()
    client.force_login(county_official)

    response = client.get(reverse("reports:export_download", args=[export.pk]))

    assert response.status_code == 404
    assert "Location" not in response


def test_the_photo_archive_copies_the_originals_from_the_bucket(s3, photo, administrator):
    export = run_export(administrator, "photos", "zip", region="520399")

    assert export.status == ExportStatus.DONE, export.error
    archive = zipfile.ZipFile(io.BytesIO(s3.read(export.file)))
    rows = list(csv.DictReader(io.StringIO(archive.read(MANIFEST).decode("utf-8-sig"))))
    assert [row["Photo key"] for row in rows] == [str(photo.key)]
    entry = rows[0]["Path in the archive"]
    assert entry.endswith(f"/{photo.key}.jpg")
    original = s3.read(f"photos/original/{photo.key}")
    assert archive.read(entry) == original
    assert rows[0]["SHA-256 of the file in the archive"] == photo.sha256
    assert rows[0]["Note"] == ""


def test_the_household_file_prints_its_photo_from_the_bucket(
    s3, photo, county_official, households
):
    export = run_export(
        county_official, "household_file", "pdf", household=households["village1"].pk
    )

    assert export.status == ExportStatus.DONE, export.error
    data = s3.read(export.file)
    assert data.startswith(b"%PDF-")
    assert image_count(data) == 1


def test_an_export_the_store_refuses_fails_with_the_reason_and_leaves_no_file(
    s3, settings, county_official, households
):
    events = CaseEvent.objects.count()
    settings.AWS_STORAGE_BUCKET_NAME = "anju-no-such-bucket"
    settings.STORAGES = {**settings.STORAGES}  # forget the storage built for the old bucket

    export = run_export(county_official, "households", "csv", filters={})

    assert export.status == ExportStatus.FAILED
    key = f"exports/{export.created_at:%Y/%m}/{export.number}-households.csv"
    assert export.error == (
        f"The export stopped: OSError: S3 write {key}: An error occurred (NoSuchBucket) when "
        "calling the PutObject operation: The specified bucket does not exist"
    )
    assert export.file == ""
    assert CaseEvent.objects.count() == events
    assert s3.keys() == []
    assert Export.objects.get().event is None
