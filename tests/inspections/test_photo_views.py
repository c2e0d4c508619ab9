"""Photo files through photo_file: who may see which copy, and how the file is sent."""

import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from tests.inspections import images
from tests.inspections.factories import InspectionFactory, upload_photo

pytestmark = pytest.mark.django_db


@pytest.fixture
def inspector(make_user, regions):
    return make_user(Role.INSPECTOR, [regions["township1"]], username="inspector1")


@pytest.fixture
def original_bytes():
    taken = timezone.localtime(timezone.now() - datetime.timedelta(minutes=20))
    exif = images.make_exif(taken_at=taken, lat=27.2051, lon=107.9051, accuracy=5)
    return images.jpeg(images.house_picture(3, size=(400, 300)), exif=exif)


@pytest.fixture
def photo(households, inspector, original_bytes):
    inspection = InspectionFactory(house=households["village1"].houses.get(), inspector=inspector)
    photo, _created = upload_photo(inspection, original_bytes)
    assert photo.status == "ready"
    return photo


def url(photo, variant):
    return reverse("inspections:photo_file", args=[photo.key, variant])


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def stored(file) -> bytes:
    with file.open("rb") as handle:
        return handle.read()


# --- who may see which copy ------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["display", "thumb", "original"])
def test_anonymous_user_is_sent_to_the_login_page(client, photo, variant):
    response = client.get(url(photo, variant))

    assert response.status_code == 302
    assert response.url == f"/login/?next={url(photo, variant)}"


@pytest.mark.parametrize("variant", ["display", "thumb", "original"])
def test_an_official_of_another_region_gets_404(client, make_user, regions, photo, variant):
    other = make_user(Role.COUNTY_OFFICIAL, [regions["township2"]], username="elsewhere")
    client.force_login(other)

    assert client.get(url(photo, variant)).status_code == 404


@pytest.mark.parametrize(
    ("variant", "field", "filename"),
    [("display", "display", "display"), ("thumb", "thumbnail", "thumb")],
)
def test_an_official_of_the_region_gets_the_published_copies_inline(
    client, township_official, photo, variant, field, filename
):
    client.force_login(township_official)

    response = client.get(url(photo, variant))

    assert response.status_code == 200
    assert body(response) == stored(getattr(photo, field))
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"] == f'inline; filename="{photo.key}-{filename}.jpg"'
    assert response["Cache-Control"] == "private, max-age=86400"
    assert response["ETag"] == f'"{photo.key.hex}-{variant}"'
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_non_administrator_may_not_download_the_original(client, county_official, photo):
    client.force_login(county_official)

    assert client.get(url(photo, "original")).status_code == 403


def test_an_administrator_downloads_the_original_bytes_as_an_attachment(
    client, administrator, photo, original_bytes
):
    client.force_login(administrator)

    response = client.get(url(photo, "original"))

    assert response.status_code == 200
    assert body(response) == original_bytes
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"] == f'attachment; filename="{photo.key}.jpg"'
    # The original keeps its GPS position: no cache may keep it.
    assert response["Cache-Control"] == "private, no-store, max-age=0"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_png_original_is_sent_with_its_own_type(client, administrator, households, inspector):
    inspection = InspectionFactory(house=households["village1"].houses.get(), inspector=inspector)
    photo, _created = upload_photo(inspection, images.png(images.house_picture(4, (200, 150))))
    client.force_login(administrator)

    response = client.get(url(photo, "original"))

    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == f'attachment; filename="{photo.key}.png"'


# --- states and protocol -----------------------------------------------------------------------


def test_a_photo_not_processed_yet_has_no_copies_but_its_original(
    client, administrator, households, inspector, original_bytes
):
    inspection = InspectionFactory(house=households["village1"].houses.get(), inspector=inspector)
    pending, _created = upload_photo(inspection, original_bytes, process=False)
    client.force_login(administrator)

    assert pending.status == "pending"
    assert client.get(url(pending, "display")).status_code == 404
    assert client.get(url(pending, "thumb")).status_code == 404
    assert body(client.get(url(pending, "original"))) == original_bytes


def test_an_unknown_variant_or_key_is_404(client, administrator, photo):
    client.force_login(administrator)

    assert client.get(url(photo, "large")).status_code == 404
    assert client.get(f"/photos/{'0' * 32}/display/").status_code == 404


def test_a_matching_etag_answers_304_with_the_same_headers(client, township_official, photo):
    client.force_login(township_official)
    etag = f'"{photo.key.hex}-display"'

    response = client.get(url(photo, "display"), headers={"if-none-match": etag})

    assert response.status_code == 304
    assert response.content == b""
    assert (response["ETag"], response["Cache-Control"]) == (etag, "private, max-age=86400")


def test_only_get_and_head_are_allowed(client, township_official, photo):
    client.force_login(township_official)

    assert client.head(url(photo, "thumb")).status_code == 200
    assert client.post(url(photo, "thumb")).status_code == 405


def test_with_s3_storage_the_browser_is_sent_to_a_short_lived_presigned_url(
    client, settings, administrator, photo
):
    # A real S3 storage object: presigning is computed locally, no request leaves.
    settings.AWS_STORAGE_BUCKET_NAME = "anju-test"
    settings.AWS_S3_ENDPOINT_URL = "http://127.0.0.1:9000"
    settings.AWS_S3_REGION_NAME = "us-east-1"
    settings.AWS_ACCESS_KEY_ID = "test-key"
    settings.AWS_SECRET_ACCESS_KEY = "test-secret"
    settings.AWS_QUERYSTRING_AUTH = True
    settings.AWS_S3_SIGNATURE_VERSION = "s3v4"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage"},
    }
    client.force_login(administrator)

    display = client.get(url(photo, "display"))
    original = client.get(url(photo, "original"))

    assert display.status_code == 302
    location = urlsplit(display["Location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"http://127.0.0.1:9000/anju-test/photos/display/{photo.key}.jpg"
    )
    assert query["X-Amz-Expires"] == ["300"]
    assert query["response-content-type"] == ["image/jpeg"]
    assert query["response-content-disposition"] == [f'inline; filename="{photo.key}-display.jpg"']
    assert "X-Amz-Signature" in query
    assert display["Cache-Control"] == "private, no-store"
    original_query = parse_qs(urlsplit(original["Location"]).query)
    assert urlsplit(original["Location"]).path == f"/anju-test/photos/original/{photo.key}"
    assert original_query["response-content-disposition"] == [
        f'attachment; filename="{photo.key}.jpg"'
    ]
