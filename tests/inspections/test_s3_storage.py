"""The photo pipeline on S3: moto's server over HTTP (tests/s3.py), not a mock.

Upload through the API, processing, the photo views (a presigned URL on S3) and a store that
refuses writes.
"""

import datetime
import io
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient
from storages.backends.s3 import S3Storage

from accounts.models import Role
from inspections.models import Photo
from inspections.photos import PhotoStorageUnavailable
from inspections.processing import photo_process
from tests import s3 as s3_module
from tests.inspections import images
from tests.inspections.factories import InspectionFactory, upload_photo
from tests.s3 import fetch

pytestmark = pytest.mark.django_db


@pytest.fixture
def inspector(make_user, regions):
    return make_user(Role.INSPECTOR, [regions["township1"]], username="inspector1")


@pytest.fixture
def inspection(households, inspector):
    return InspectionFactory(house=households["village1"].houses.get(), inspector=inspector)


@pytest.fixture
def original_bytes():
    taken = timezone.localtime(timezone.now() - datetime.timedelta(minutes=20))
    exif = images.make_exif(taken_at=taken, lat=27.2051, lon=107.9051, accuracy=5)
    return images.jpeg(images.house_picture(3, size=(400, 300)), exif=exif)


def upload(client, inspection, data: bytes, client_uuid=None):
    from django.core.files.uploadedfile import SimpleUploadedFile

    form = {
        "client_uuid": str(client_uuid or uuid.uuid4()),
        "stage": "before",
        "angle": "front",
        "file": SimpleUploadedFile("IMG_0001.jpg", data, content_type="image/jpeg"),
    }
    return client.post(
        f"/api/inspections/{inspection.client_uuid}/photos/", form, format="multipart"
    )


def api_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def keys_of(photo) -> list[str]:
    return sorted(
        [
            f"photos/display/{photo.key}.jpg",
            f"photos/original/{photo.key}",
            f"photos/thumb/{photo.key}.jpg",
        ]
    )


@pytest.fixture
def photo(s3, inspection, original_bytes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(api_client(inspection.inspector), inspection, original_bytes)
    assert response.status_code == 201, response.content
    photo = Photo.objects.get()
    assert photo.status == "ready"
    return photo


# --- storing ----------------------------------------------------------------------------------


def test_an_uploaded_photo_and_its_processed_copies_are_stored_in_the_bucket(
    s3, photo, original_bytes
):
    assert isinstance(default_storage._wrapped, S3Storage)
    assert isinstance(photo.original.storage._wrapped, S3Storage)
    assert s3.keys() == keys_of(photo)
    assert s3.read(f"photos/original/{photo.key}") == original_bytes
    display = s3.read(f"photos/display/{photo.key}.jpg")
    thumbnail = s3.read(f"photos/thumb/{photo.key}.jpg")
    assert Image.open(io.BytesIO(display)).size == (400, 300)
    assert Image.open(io.BytesIO(thumbnail)).size == (320, 240)
    assert s3.head(f"photos/display/{photo.key}.jpg")["ContentType"] == "image/jpeg"
    assert s3.head(f"photos/thumb/{photo.key}.jpg")["ContentType"] == "image/jpeg"


# --- serving ----------------------------------------------------------------------------------


def file_url(photo, variant):
    return reverse("inspections:photo_file", args=[photo.key, variant])


@pytest.mark.parametrize(
    ("variant", "key", "disposition"),
    [
        ("display", "photos/display/{key}.jpg", 'inline; filename="{key}-display.jpg"'),
        ("original", "photos/original/{key}", 'attachment; filename="{key}.jpg"'),
    ],
)
def test_an_authorised_user_is_sent_to_a_short_lived_presigned_url_of_the_right_file(
    s3, client, make_user, regions, photo, variant, key, disposition
):
    # Originals are for administrators; the copies for anyone who sees the household.
    if variant == "original":
        user = make_user(Role.ADMINISTRATOR, username="admin")
    else:
        user = make_user(Role.TOWNSHIP_OFFICIAL, [regions["township1"]], username="township1")
    client.force_login(user)

    response = client.get(file_url(photo, variant))

    assert response.status_code == 302
    assert response["Cache-Control"] == "private, no-store"
    location = urlsplit(response["Location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}" == s3.endpoint_url
    assert location.path == f"/{s3_module.BUCKET}/{key.format(key=photo.key)}"
    assert query["X-Amz-Expires"] == ["300"]
    status, headers, body = fetch(response["Location"])
    assert status == 200
    assert body == s3.read(key.format(key=photo.key))
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["Content-Disposition"] == disposition.format(key=photo.key)


def test_a_thumbnail_is_streamed_from_the_store_not_redirected(
    s3, client, make_user, regions, photo
):
    # The field page fetches thumbnails into IndexedDB for offline villages: a redirect to
    # the store's origin would be refused by the page's connect-src (and CORS).
    user = make_user(Role.TOWNSHIP_OFFICIAL, [regions["township1"]], username="township1")
    client.force_login(user)

    response = client.get(file_url(photo, "thumb"))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == s3.read(f"photos/thumb/{photo.key}.jpg")
    assert response["Content-Type"] == "image/jpeg"
    assert "private" in response["Cache-Control"]


@pytest.mark.parametrize("variant", ["display", "thumb", "original"])
def test_an_official_of_another_region_gets_404_and_no_url(
    s3, client, make_user, regions, photo, variant
):
    other = make_user(Role.COUNTY_OFFICIAL, [regions["township2"]], username="elsewhere")
    client.force_login(other)

    response = client.get(file_url(photo, variant))

    assert response.status_code == 404
    assert "Location" not in response
    assert s3.endpoint_url.encode() not in response.content


def test_the_inspector_may_not_have_the_original(s3, client, photo):
    client.force_login(photo.uploaded_by)

    assert client.get(file_url(photo, "original")).status_code == 403
    assert client.get(file_url(photo, "display")).status_code == 302


# --- a store that refuses ---------------------------------------------------------------------


@pytest.fixture
def missing_bucket(s3, settings):
    """The storage names a bucket the store does not have: every write is refused (404)."""
    settings.AWS_STORAGE_BUCKET_NAME = "anju-no-such-bucket"
    settings.STORAGES = {**settings.STORAGES}  # forget the storage built for the old bucket
    return s3


@pytest.fixture
def stopped_server(s3, settings):
    """The storage's server is down: every request is refused at the connection."""
    server = s3_module.start()
    server.server.stop()
    settings.AWS_S3_ENDPOINT_URL = server.endpoint_url
    # Refused at once, not after boto3's retries with back-off (seconds).
    settings.AWS_S3_CLIENT_CONFIG = Config(
        signature_version="s3v4", retries={"max_attempts": 1}, connect_timeout=2
    )
    settings.STORAGES = {**settings.STORAGES}
    return s3


@pytest.mark.parametrize("store", ["missing_bucket", "stopped_server"])
def test_an_upload_the_store_refuses_answers_503_and_leaves_no_row_and_no_file(
    request, s3, inspection, original_bytes, store
):
    request.getfixturevalue(store)

    response = upload(api_client(inspection.inspector), inspection, original_bytes)

    assert response.status_code == 503
    assert response.json() == {"detail": str(PhotoStorageUnavailable.default_message)}
    assert not Photo.objects.exists()
    assert s3.keys() == []


@pytest.mark.parametrize(
    ("store", "actions"),
    [
        # S3 answers a HEAD or a DELETE in a missing bucket with a bare 404, as for a missing
        # key: only the write tells the bucket is missing.
        ("missing_bucket", ["save"]),
        ("stopped_server", ["save", "open", "exists", "delete"]),
    ],
)
def test_the_storage_fails_as_a_disk_does_with_oserror(request, s3, store, actions):
    request.getfixturevalue(store)
    storage = Photo._meta.get_field("original").storage
    calls = {
        "save": lambda: storage.save("photos/original/x", ContentFile(b"x")),
        "open": lambda: storage.open("photos/original/x", "rb"),
        "exists": lambda: storage.exists("photos/original/x"),
        "delete": lambda: storage.delete("photos/original/x"),
    }

    for action in actions:
        with pytest.raises(OSError) as failed:
            calls[action]()
        assert isinstance(failed.value.__cause__, ClientError | BotoCoreError), action
        # A store that refuses is not a missing file: only a 404 is FileNotFoundError.
        assert not isinstance(failed.value, FileNotFoundError), action


def test_a_file_missing_from_the_bucket_is_file_not_found(s3):
    with pytest.raises(FileNotFoundError):
        default_storage.open("photos/original/nothing-here", "rb")
    assert default_storage.exists("photos/original/nothing-here") is False


# --- processing from and into the bucket ------------------------------------------------------


def test_a_photo_whose_original_left_the_bucket_fails_with_the_reason(
    s3, inspection, original_bytes
):
    photo, _created = upload_photo(inspection, original_bytes, process=False)
    s3.empty()

    photo = photo_process(photo_id=photo.pk)

    assert photo.status == "failed"
    assert [flag["detail"] for flag in photo.flags] == [
        "The photo could not be processed: the original file cannot be read."
    ]
    assert s3.keys() == []


def test_processing_with_the_store_down_raises_and_leaves_the_photo_pending(
    request, s3, inspection, original_bytes
):
    photo, _created = upload_photo(inspection, original_bytes, process=False)
    request.getfixturevalue("stopped_server")

    with pytest.raises(OSError):
        photo_process(photo_id=photo.pk)

    photo.refresh_from_db()
    assert (photo.status, photo.display.name, photo.thumbnail.name) == ("pending", "", "")
    assert s3.keys() == [f"photos/original/{photo.key}"]


def test_a_store_refusing_the_thumbnail_leaves_no_display_copy_behind(
    s3, settings, inspection, original_bytes
):
    photo, _created = upload_photo(inspection, original_bytes, process=False)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "tests.s3.ThumbnailRefusingS3Storage"},
    }

    with pytest.raises(OSError):
        photo_process(photo_id=photo.pk)

    photo.refresh_from_db()
    assert photo.status == "pending"
    assert s3.keys() == [f"photos/original/{photo.key}"]
