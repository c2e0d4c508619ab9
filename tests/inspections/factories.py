"""Factories for inspections, appraisals and photos (shared by the inspections tests)."""

import datetime
import hashlib
import uuid

import factory
from django.utils import timezone

from inspections.models import (
    Appraisal,
    Inspection,
    InspectionKind,
    MemberRating,
    Photo,
    PhotoAngle,
    PhotoStage,
)
from tests.factories import HouseFactory, UserFactory

# Every structural member of an appraisal rated sound: grade A by the default rule.
SOUND_MEMBERS = {
    "foundation": "sound",
    "load_bearing_walls": "sound",
    "columns_beams": "sound",
    "roof_structure": "sound",
    "floors_slabs": "sound",
    "envelope": "sound",
}
# The same, as an appraisal payload: no site hazards either.
SOUND = {**SOUND_MEMBERS, "site_hazards": []}


class InspectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Inspection

    client_uuid = factory.LazyFunction(uuid.uuid4)
    house = factory.SubFactory(HouseFactory)
    inspector = factory.SubFactory(UserFactory)
    kind = InspectionKind.APPRAISAL
    started_at = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(hours=1))
    ended_at = factory.LazyFunction(timezone.now)
    payload_digest = ""


class AppraisalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Appraisal

    inspection = factory.SubFactory(InspectionFactory)
    site_hazards = factory.LazyFunction(list)
    foundation = MemberRating.SOUND
    load_bearing_walls = MemberRating.SOUND
    columns_beams = MemberRating.SOUND
    roof_structure = MemberRating.SOUND
    floors_slabs = MemberRating.SOUND
    envelope = MemberRating.SOUND
    derived_grade = "A"
    grade = "A"
    override_reason = ""
    rule_version = "default-2026"


class PhotoFactory(factory.django.DjangoModelFactory):
    """A photo row with a placeholder original (no real image): for lists and permissions.

    Tests of the pipeline upload real images through inspections.photos.photo_upload.
    """

    class Meta:
        model = Photo

    client_uuid = factory.LazyFunction(uuid.uuid4)
    inspection = factory.SubFactory(InspectionFactory)
    stage = PhotoStage.BEFORE
    angle = PhotoAngle.FRONT
    uploaded_by = factory.LazyAttribute(lambda o: o.inspection.inspector)
    original = factory.django.FileField(filename="original", data=b"not an image")
    original_format = "JPEG"
    byte_size = 12
    sha256 = factory.LazyAttribute(
        lambda o: hashlib.sha256(str(o.client_uuid).encode()).hexdigest()
    )
    status = "ready"
    flags = factory.LazyFunction(list)
    payload_digest = ""


def upload_photo(
    inspection,
    data: bytes,
    *,
    stage=PhotoStage.BEFORE,
    angle=PhotoAngle.FRONT,
    client_uuid=None,
    user=None,
    name="IMG_0001.jpg",
    content_type="image/jpeg",
    process=True,
):
    """Upload real image bytes through the service, then process them as the task would.

    Tests run inside a transaction that never commits, so on_commit never fires: processing
    is called directly (``process=False`` to leave the photo pending).
    Returns (photo, created).
    """
    from django.core.files.uploadedfile import SimpleUploadedFile

    from inspections.photos import photo_upload
    from inspections.processing import photo_process

    photo, created = photo_upload(
        user=user or inspection.inspector,
        inspection=inspection,
        client_uuid=client_uuid or uuid.uuid4(),
        stage=stage,
        angle=angle,
        file=SimpleUploadedFile(name, data, content_type=content_type),
    )
    if process and created:
        photo = photo_process(photo_id=photo.pk)
    return photo, created


def stored_files() -> list[str]:
    """Every file under MEDIA_ROOT (a fresh folder per test), as sorted relative paths."""
    from pathlib import Path

    from django.conf import settings

    root = Path(settings.MEDIA_ROOT)
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def flag_summary(flags) -> list[dict]:
    """Flags as a reader sees them: without the stored message and raw params."""
    return [{k: v for k, v in flag.items() if k not in ("message", "params")} for flag in flags]
