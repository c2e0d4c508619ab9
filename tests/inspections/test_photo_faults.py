"""Every acknowledged photo finishes, whatever fails on the way (issue 11), in this process:

- storage full (ENOSPC) and read-only (EROFS): a real tmpfs mounted for the test, filled up
  or remounted read-only, so every error is a real OSError from a real filesystem. An
  upload that cannot store its original answers 503 and keeps nothing; a photo whose copies
  cannot be written stays pending with no file left behind; the sweep finishes them all
  once the storage is back, with no orphan and no duplicate;
- the sweep (photos_requeue) and a replay of a pending photo queue it again;
- a bomb-like PNG (tiny file, huge dimensions) is refused before decoding, with the memory
  of a separate process measured.

The faults with real processes (broker, worker, PostgreSQL) are in test_photo_faults_live.py.
"""

import contextlib
import datetime
import errno
import io
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from accounts.models import Role
from inspections.models import Photo, PhotoStatus
from inspections.tasks import requeue_pending_photos
from tests.inspections import images
from tests.inspections.factories import InspectionFactory, stored_files, upload_photo

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def inspection(households, make_user, regions):
    """A visit the API lets its inspector reach (an inspector of its township)."""
    inspector = make_user(Role.INSPECTOR, [regions["township1"]])
    return InspectionFactory(house=households["village1"].houses.get(), inspector=inspector)


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A real small filesystem at ``path`` for the test (needs root, as on every machine of
    this project and in CI); unmounted after."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        pytest.skip(f"cannot mount a tmpfs here (root needed): {error}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path, leave: int = 0) -> None:
    """Fill the filesystem holding ``path`` until a write fails with ENOSPC, then free
    ``leave`` bytes."""
    with open(path, "wb") as handle:
        block = b"\0" * 65536
        try:
            while True:
                handle.write(block)
                handle.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC
    if leave:
        size = path.stat().st_size
        os.truncate(path, max(0, size - leave))


def client_for(inspection) -> APIClient:
    client = APIClient()
    client.force_login(inspection.inspector)
    return client


def post_photo(client, inspection, client_uuid, data, *, angle="front"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        f"/api/inspections/{inspection.client_uuid}/photos/",
        {
            "client_uuid": str(client_uuid),
            "stage": "before",
            "angle": angle,
            "file": SimpleUploadedFile("IMG.jpg", data, content_type="image/jpeg"),
        },
        format="multipart",
    )


def referenced_files() -> list[str]:
    names = []
    for photo in Photo.objects.all():
        names += [f.name for f in (photo.original, photo.display, photo.thumbnail) if f]
    return sorted(names)


STORAGE_DOWN = (
    "The photo could not be stored: the server's file storage is full or unavailable. "
    "Nothing was kept; send the photo again later."
)


def test_storage_full_leaves_no_orphan_and_the_sweep_finishes_every_acknowledged_photo(
    inspection, settings, tmp_path, django_capture_on_commit_callbacks
):
    mount = tmp_path / "fs"
    with tmpfs(mount, "2m"):
        settings.MEDIA_ROOT = mount / "media"
        client = client_for(inspection)
        angles = ["front", "back", "left", "right"]
        sent = {angle: (uuid.uuid4(), images.jpeg(seed=n + 10)) for n, angle in enumerate(angles)}

        # Two photos arrive while there is room; their processing is held back.
        with django_capture_on_commit_callbacks(execute=False) as held:
            for angle in angles[:2]:
                response = post_photo(client, inspection, *sent[angle], angle=angle)
                assert response.status_code == 201, response.content
        # The disk fills up with a few KB left: less than a published copy takes, so the
        # copy's write fails half-way (a partial file that must not stay).
        fill(mount / "filler", leave=8192)
        for callback in held:
            callback()  # what the worker does: fails, the photo stays pending
        assert set(Photo.objects.values_list("status", flat=True)) == {PhotoStatus.PENDING}
        assert stored_files() == referenced_files()
        assert len(stored_files()) == 2  # the two originals, nothing else

        # A new upload while the disk is full: 503, nothing kept, no row.
        (mount / "filler").write_bytes(b"")
        fill(mount / "filler", leave=4096)
        with django_capture_on_commit_callbacks(execute=True):
            response = post_photo(client, inspection, *sent["left"], angle="left")
        assert response.status_code == 503
        assert response.json() == {"detail": STORAGE_DOWN}
        assert Photo.objects.count() == 2
        assert stored_files() == referenced_files()

        # Room again: the sweep finishes the pending ones, the client resends the refused one
        # and sends the last; nothing is stored twice.
        (mount / "filler").unlink()
        out = io.StringIO()
        call_command("photos_requeue", older_than=0, stdout=out)
        assert out.getvalue() == "2 pending photos processed: 2 ready, 0 failed, 0 still pending.\n"
        with django_capture_on_commit_callbacks(execute=True):
            for angle in ("left", "right"):
                assert post_photo(client, inspection, *sent[angle], angle=angle).status_code == 201
            assert post_photo(client, inspection, *sent["front"]).status_code == 200
        photos = Photo.objects.order_by("angle")
        assert [(p.angle, p.status) for p in photos] == [
            (angle, PhotoStatus.READY) for angle in sorted(angles)
        ]
        assert sorted(str(p.client_uuid) for p in photos) == sorted(
            str(u) for u, _data in sent.values()
        )
        assert stored_files() == referenced_files()
        assert len(stored_files()) == 3 * 4


def test_read_only_storage_leaves_photos_pending_and_the_sweep_finishes_them(
    inspection, settings, tmp_path, django_capture_on_commit_callbacks
):
    mount = tmp_path / "fs"
    with tmpfs(mount, "4m"):
        settings.MEDIA_ROOT = mount / "media"
        client = client_for(inspection)
        first, second = (uuid.uuid4(), images.jpeg(seed=21)), (uuid.uuid4(), images.jpeg(seed=22))
        with django_capture_on_commit_callbacks(execute=False) as held:
            assert post_photo(client, inspection, *first).status_code == 201
        _mount("-o", "remount,ro", str(mount))
        try:
            for callback in held:
                callback()
            # The client did not hear back and sends the photo again: it is still pending,
            # so it is queued again (and fails again, harmlessly, on read-only storage).
            with django_capture_on_commit_callbacks(execute=True) as replayed:
                response = post_photo(client, inspection, *first)
            assert response.status_code == 200
            assert response.json()["status"] == "pending"
            assert len(replayed) == 1
            with django_capture_on_commit_callbacks(execute=True):
                response = post_photo(client, inspection, *second, angle="back")
            assert response.status_code == 503
            assert response.json() == {"detail": STORAGE_DOWN}
            with pytest.raises(CommandError) as caught:
                call_command("photos_requeue", older_than=0, stdout=io.StringIO())
            assert str(caught.value) == (
                "Some photos are still pending: a fault remains (see the log); run again later."
            )
        finally:
            _mount("-o", "remount,rw", str(mount))
        assert Photo.objects.get().status == PhotoStatus.PENDING
        assert (
            stored_files() == referenced_files() == [f"photos/original/{Photo.objects.get().key}"]
        )

        out = io.StringIO()
        call_command("photos_requeue", older_than=0, stdout=out)
        assert out.getvalue() == "1 pending photo processed: 1 ready, 0 failed, 0 still pending.\n"
        with django_capture_on_commit_callbacks(execute=True):
            assert post_photo(client, inspection, *second, angle="back").status_code == 201
        assert list(Photo.objects.values_list("status", flat=True)) == [PhotoStatus.READY] * 2
        assert stored_files() == referenced_files()
        assert len(stored_files()) == 6


def test_the_sweep_takes_only_photos_pending_longer_than_the_setting(
    inspection, settings, django_capture_on_commit_callbacks
):
    settings.ANJU_PHOTO_REQUEUE_AFTER_S = 600
    client = client_for(inspection)
    with django_capture_on_commit_callbacks(execute=False):
        for angle in ("front", "back"):
            post_photo(client, inspection, uuid.uuid4(), images.jpeg(seed=31), angle=angle)
    old, new = Photo.objects.order_by("angle")  # back, front
    Photo.objects.filter(pk=old.pk).update(
        created_at=old.created_at - datetime.timedelta(seconds=601)
    )
    assert requeue_pending_photos() == [old.pk]
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.status, new.status) == (PhotoStatus.READY, PhotoStatus.PENDING)
    assert requeue_pending_photos() == []

    out = io.StringIO()
    call_command("photos_requeue", older_than=0, stdout=out)
    assert out.getvalue() == "1 pending photo processed: 1 ready, 0 failed, 0 still pending.\n"


def test_the_sweep_command_refuses_a_negative_age():
    with pytest.raises(CommandError) as caught:
        call_command("photos_requeue", older_than=-1)
    assert str(caught.value) == "--older-than must be 0 or more seconds."


def test_a_leftover_copy_of_a_killed_run_is_replaced_not_kept_beside(inspection, settings):
    photo, _ = upload_photo(inspection, images.jpeg(seed=41), process=False)
    root = Path(settings.MEDIA_ROOT)
    leftover = root / f"photos/display/{photo.key}.jpg"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a jpeg")  # a run killed after writing, before its commit
    call_command("photos_requeue", older_than=0, stdout=io.StringIO())
    photo.refresh_from_db()
    assert photo.status == PhotoStatus.READY
    assert photo.display.name == f"photos/display/{photo.key}.jpg"
    assert leftover.read_bytes()[:3] == b"\xff\xd8\xff"
    assert stored_files() == referenced_files()


# --- bounded decoding ----------------------------------------------------------------------

# Run in a separate process, so that its peak memory (ru_maxrss) is the decode's alone. The
# PNG is made there too, streamed: 7,000 × 7,000 RGBA of zeros, a ~190 kB file that would
# decode to 196 MB (49 MP, under the 52 MP pixel limit). Peak memory only grows, so the
# refused checks are measured first, then the same file within a budget raised for the
# measurement, which shows what the limit spares.
MEASURE = r"""
import resource, struct, zlib
import django
django.setup()
from django.conf import settings
from inspections import imaging

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024

side = 7000
packer = zlib.compressobj(6)
row = b"\0" * (side * 4 + 1)
idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0))
        + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
print(len(data))
for decode in (False, True):  # the upload with a broker, and without
    before = peak_mb()
    try:
        imaging.check_image(data, decode=decode)
        imaging.make_derivatives(data, "PNG")
        print("accepted")
    except imaging.ImageRejected as rejected:
        print(rejected.message)
    print(peak_mb() - before)
settings.ANJU_PHOTO_MAX_DECODED_BYTES = 10**10
before = peak_mb()
imaging.check_image(data, decode=False)
imaging.make_derivatives(data, "PNG")
print(peak_mb() - before)
"""


@pytest.mark.once  # a separate process that touches no database
def test_a_bomb_like_png_is_refused_before_decoding_and_memory_stays_bounded():
    result = subprocess.run(
        [sys.executable, "-c", MEASURE],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    size, *refused, spared_mb = result.stdout.strip().split("\n")
    assert int(size) < 300_000
    message = (
        "The image declares 7000 × 7000 pixels (RGBA); decoding it would take 196 MB of "
        "memory, more than the limit of 157 MB; it is refused as a possible decompression bomb."
    )
    assert refused[0::2] == [message, message]
    assert all(int(grown_mb) < 20 for grown_mb in refused[1::2]), refused
    # What the budget spares: the same file decoded costs well over the refused checks (about
    # 140-600 MB here, depending on how the decoder's buffers are reused and on the resize).
    assert int(spared_mb) > 100
