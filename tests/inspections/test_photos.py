"""The photo pipeline on real files: upload checks, storage, idempotency, processing."""

import datetime
import io
import threading
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone
from PIL import Image

from inspections.errors import IdempotencyConflict, InspectionRefused
from inspections.models import Photo, PhotoStatus
from inspections.photos import PhotoRejected, photo_upload
from inspections.processing import photo_process
from tests.factories import UserFactory
from tests.inspections import images
from tests.inspections.factories import InspectionFactory, flag_summary, stored_files, upload_photo

pytestmark = pytest.mark.django_db


@pytest.fixture
def inspection():
    return InspectionFactory()


def near_now_exif(**kwargs):
    taken = timezone.localtime(timezone.now() - datetime.timedelta(minutes=20))
    return images.make_exif(taken_at=taken, lat=27.2051, lon=107.9051, accuracy=5, **kwargs)


# --- accepted files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "fmt"),
    [
        (images.jpeg, "JPEG"),
        (images.png, "PNG"),
        (images.webp, "WEBP"),
        (images.heic, "HEIF"),
    ],
)
def test_each_accepted_format_is_stored_under_a_uuid_key_and_processed(inspection, make, fmt):
    data = make()
    # The name and content type lie; only the content counts.
    photo, created = upload_photo(inspection, data, name="x.txt", content_type="text/plain")
    assert created is True
    assert (photo.original_format, photo.status, photo.byte_size) == (fmt, "ready", len(data))
    assert (photo.width, photo.height) == (800, 600)
    key = str(photo.key)
    assert uuid.UUID(key)
    assert photo.original.name == f"photos/original/{key}"
    assert photo.display.name == f"photos/display/{key}.jpg"
    assert photo.thumbnail.name == f"photos/thumb/{key}.jpg"
    assert stored_files() == sorted(
        [f"photos/original/{key}", f"photos/display/{key}.jpg", f"photos/thumb/{key}.jpg"]
    )
    with photo.original.open("rb") as handle:
        assert handle.read() == data
    assert Image.open(photo.display).size == (800, 600)
    assert Image.open(photo.thumbnail).size == (320, 240)
    assert photo.phash is not None and -(1 << 63) <= photo.phash < 1 << 63


def test_exif_time_gps_accuracy_and_device_are_read_from_a_jpeg(inspection):
    taken = datetime.datetime(
        2026, 5, 1, 10, 15, tzinfo=datetime.timezone(datetime.timedelta(hours=8))
    )
    exif = images.make_exif(
        taken_at=taken, lat=-27.2051, lon=-107.9049, accuracy=4.5, make="Huawei", model="P40"
    )
    photo, _ = upload_photo(inspection, images.jpeg(exif=exif))
    photo.refresh_from_db()
    assert photo.taken_at == taken
    assert (photo.gps.x, photo.gps.y) == (pytest.approx(-107.9049), pytest.approx(-27.2051))
    assert (photo.gps_accuracy, photo.camera_make, photo.camera_model) == (4.5, "Huawei", "P40")


def test_heic_exif_is_read_too(inspection):
    exif = near_now_exif(make="Apple", model="iPhone 15")
    photo, _ = upload_photo(inspection, images.heic(exif=exif))
    assert (photo.original_format, photo.camera_make, photo.camera_model) == (
        "HEIF",
        "Apple",
        "iPhone 15",
    )
    assert (photo.gps.x, photo.gps.y) == (pytest.approx(107.9051), pytest.approx(27.2051))
    assert photo.taken_at is not None


def test_published_copies_have_no_exif_or_gps_while_the_original_keeps_them(inspection):
    photo, _ = upload_photo(inspection, images.jpeg(exif=near_now_exif(), comment=b"note"))
    for field in (photo.display, photo.thumbnail):
        with field.open("rb") as handle:
            data = handle.read()
        assert dict(Image.open(io.BytesIO(data)).getexif()) == {}
        assert b"Exif\x00\x00" not in data and b"Huawei" not in data and b"note" not in data
    with photo.original.open("rb") as handle:
        assert b"Exif\x00\x00" in handle.read()


def test_a_landscape_jpeg_tagged_orientation_6_is_published_as_portrait(inspection):
    data = images.jpeg(images.two_colour_landscape(), exif=images.make_exif(orientation=6))
    photo, _ = upload_photo(inspection, data)
    assert (photo.width, photo.height) == (200, 400)
    display = Image.open(photo.display).convert("RGB")
    assert display.size == (200, 400)
    assert display.getpixel((100, 20))[0] > 200  # the red half is on top


def test_upload_queues_processing_after_commit(inspection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        photo, _created = photo_upload(
            user=inspection.inspector,
            inspection=inspection,
            client_uuid=uuid.uuid4(),
            stage="before",
            angle="front",
            file=SimpleUploadedFile("a.jpg", images.jpeg()),
        )
        assert Photo.objects.get(pk=photo.pk).status == PhotoStatus.PENDING
    assert len(callbacks) == 1
    assert Photo.objects.get(pk=photo.pk).status == PhotoStatus.READY


def test_the_same_bytes_uploaded_twice_get_two_keys(inspection):
    data = images.jpeg()
    first, _ = upload_photo(inspection, data, process=False)
    second, _ = upload_photo(inspection, data, process=False)
    assert first.key != second.key
    assert first.original.name != second.original.name
    assert stored_files() == sorted([first.original.name, second.original.name])


# --- refused files leave nothing -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code", "status"),
    [
        (b"", "empty", 400),
        (images.html_page(), "unsupported_format", 415),
        (images.corrupt_jpeg(), "corrupt", 400),
        (images.png_html_polyglot(), "corrupt", 400),
        (images.png_bomb(), "decompression_bomb", 400),
    ],
    ids=["empty", "html", "corrupt-jpeg", "png-html-polyglot", "bomb"],
)
def test_a_refused_file_raises_a_clear_error_and_stores_nothing(inspection, data, code, status):
    with pytest.raises(PhotoRejected) as caught:
        upload_photo(inspection, data)
    assert (caught.value.code, caught.value.status) == (code, status)
    assert str(caught.value.message)
    assert Photo.objects.count() == 0
    assert stored_files() == []


def test_a_file_over_the_size_limit_is_refused_with_413_and_the_limit(inspection, settings):
    settings.ANJU_PHOTO_MAX_BYTES = 100_000
    data = images.noisy_jpeg(100_001)
    with pytest.raises(PhotoRejected) as caught:
        upload_photo(inspection, data)
    assert (caught.value.code, caught.value.status) == ("too_large", 413)
    assert str(caught.value.message) == (
        f"The file is {len(data):,} bytes, larger than the limit of 0.0953674 MB (100,000 bytes)."
    )
    assert Photo.objects.count() == 0
    assert stored_files() == []


def test_a_stream_without_a_size_is_cut_at_the_limit(inspection, settings):
    settings.ANJU_PHOTO_MAX_BYTES = 25 * 1024 * 1024
    stream = io.BytesIO(images.jpeg() + b"\x00" * (25 * 1024 * 1024))
    with pytest.raises(PhotoRejected) as caught:
        photo_upload(
            user=inspection.inspector,
            inspection=inspection,
            client_uuid=uuid.uuid4(),
            stage="before",
            angle="front",
            file=stream,
        )
    assert str(caught.value.message) == (
        "The file is larger than the limit of 25 MB (26,214,400 bytes)."
    )
    assert stored_files() == []


def test_a_bad_stage_is_refused_before_anything_is_stored(inspection):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        upload_photo(inspection, images.jpeg(), stage="someday")
    assert caught.value.message_dict == {"stage": ["Value 'someday' is not a valid choice."]}
    assert stored_files() == []


def test_only_the_visits_inspector_may_upload(inspection):
    with pytest.raises(InspectionRefused) as caught:
        upload_photo(inspection, images.jpeg(), user=UserFactory())
    assert str(caught.value.message) == "Only the inspector who made this visit may add its photos."
    assert stored_files() == []


# --- idempotency ---------------------------------------------------------------------------


def test_a_replay_returns_the_same_photo_and_stores_nothing_new(inspection):
    client_uuid = uuid.uuid4()
    data = images.jpeg()
    photo, created = upload_photo(inspection, data, client_uuid=client_uuid)
    files = stored_files()
    again, created_again = upload_photo(inspection, data, client_uuid=client_uuid)
    assert (created, created_again) == (True, False)
    assert again.pk == photo.pk and again.key == photo.key
    assert Photo.objects.count() == 1
    assert stored_files() == files


def test_the_same_uuid_with_other_bytes_is_a_conflict(inspection):
    client_uuid = uuid.uuid4()
    upload_photo(inspection, images.jpeg(seed=1), client_uuid=client_uuid)
    files = stored_files()
    with pytest.raises(IdempotencyConflict) as caught:
        upload_photo(inspection, images.jpeg(seed=2), client_uuid=client_uuid)
    assert str(caught.value.message) == (
        f"Photo {client_uuid} was already received with different content (another file, "
        "inspection, stage or angle); give a new client UUID for a new photo."
    )
    assert stored_files() == files


def test_the_same_uuid_and_bytes_in_another_slot_is_a_conflict(inspection):
    client_uuid = uuid.uuid4()
    data = images.jpeg()
    upload_photo(inspection, data, client_uuid=client_uuid, angle="front")
    with pytest.raises(IdempotencyConflict):
        upload_photo(inspection, data, client_uuid=client_uuid, angle="back")


# --- processing ----------------------------------------------------------------------------


def test_processing_twice_changes_nothing(inspection):
    photo, _ = upload_photo(inspection, images.jpeg(exif=near_now_exif()))
    files = stored_files()
    again = photo_process(photo_id=photo.pk)
    assert (again.display.name, again.flags, again.phash) == (
        photo.display.name,
        photo.flags,
        photo.phash,
    )
    assert stored_files() == files


def test_an_original_that_no_longer_decodes_ends_failed_with_the_reason(inspection):
    photo, _ = upload_photo(inspection, images.jpeg(), process=False)
    with open(photo.original.path, "wb") as handle:  # damaged in storage after the upload
        handle.write(images.corrupt_jpeg())
    photo = photo_process(photo_id=photo.pk)
    assert photo.status == PhotoStatus.FAILED
    assert flag_summary(photo.flags) == [
        {
            "code": "processing_failed",
            "detail": "The photo could not be processed: the image cannot be decoded "
            "(image file is truncated (52 bytes not processed)).",
        }
    ]
    assert not photo.display and not photo.thumbnail


def test_a_missing_original_ends_failed(inspection):
    photo, _ = upload_photo(inspection, images.jpeg(), process=False)
    photo.original.storage.delete(photo.original.name)
    photo = photo_process(photo_id=photo.pk)
    assert photo.status == PhotoStatus.FAILED
    assert flag_summary(photo.flags) == [
        {
            "code": "processing_failed",
            "detail": "The photo could not be processed: the original file cannot be read.",
        }
    ]


# --- concurrency ---------------------------------------------------------------------------


@pytest.mark.postgis_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_of_one_uuid_make_exactly_one_photo():
    inspection = InspectionFactory()
    client_uuid = uuid.uuid4()
    data = images.jpeg(exif=near_now_exif())
    barrier = threading.Barrier(2)
    results, errors = [], []

    def send():
        try:
            barrier.wait(timeout=10)
            results.append(
                photo_upload(
                    user=inspection.inspector,
                    inspection=inspection,
                    client_uuid=client_uuid,
                    stage="before",
                    angle="front",
                    file=SimpleUploadedFile("a.jpg", data),
                )
            )
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert Photo.objects.filter(client_uuid=client_uuid).count() == 1
    photo = Photo.objects.get(client_uuid=client_uuid)
    assert sorted(created for _p, created in results) == [False, True]
    assert {p.pk for p, _c in results} == {photo.pk}
    # The losing thread's file was deleted: one original (and its two copies) remain.
    assert [name for name in stored_files() if name.startswith("photos/original/")] == [
        photo.original.name
    ]
    assert photo.status == PhotoStatus.READY
