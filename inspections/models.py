"""Field inspections: visits, safety appraisals and photo evidence.

Records made on a phone carry a client-generated UUID; a repeat of the same record is the
same row (a unique constraint, not check-then-insert), so an offline queue may replay freely.
"""

import uuid

from django.conf import settings
from django.contrib.gis.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from housing.models import House, SafetyGrade, history_without_spatial_index


class InspectionKind(models.TextChoices):
    APPRAISAL = "appraisal", _("Safety appraisal")
    PROGRESS = "progress", _("Works progress")
    COMPLETION = "completion", _("Completion check")


class PhotoStage(models.TextChoices):
    BEFORE = "before", _("Before works")
    DURING = "during", _("During works")
    AFTER = "after", _("After works")


class PhotoAngle(models.TextChoices):
    FRONT = "front", _("Front")
    LEFT = "left", _("Left side")
    RIGHT = "right", _("Right side")
    BACK = "back", _("Back")
    ROOF = "roof", _("Roof")
    INTERIOR = "interior", _("Interior")
    STRUCTURE = "structure", _("Structural detail")
    HOUSEHOLDER = "householder", _("Householder with doorplate")
    OTHER = "other", _("Other")


class MemberRating(models.TextChoices):
    SOUND = "sound", _("Sound")
    DAMAGED = "damaged", _("Damaged")
    DANGEROUS = "dangerous", _("Dangerous")
    NOT_PRESENT = "not_present", _("Not present")


class SiteHazard(models.TextChoices):
    LANDSLIDE = "landslide", _("Landslide")
    FLOOD = "flood", _("Flood")
    ROCKFALL = "rockfall", _("Rockfall")
    SUBSIDENCE = "subsidence", _("Ground subsidence")


# The parts of a house judged in an appraisal, in the order of the form.
MEMBERS = [
    ("foundation", _("Foundation")),
    ("load_bearing_walls", _("Load-bearing walls")),
    ("columns_beams", _("Columns and beams")),
    ("roof_structure", _("Roof structure")),
    ("floors_slabs", _("Floors and roof slabs")),
    ("envelope", _("Envelope")),
]


class Inspection(models.Model):
    """One visit to a house by an inspector."""

    client_uuid = models.UUIDField(
        _("client UUID"),
        unique=True,
        default=uuid.uuid4,
        help_text=_("Made by the phone; a repeat of the same record is the same row."),
    )
    house = models.ForeignKey(
        House, on_delete=models.PROTECT, related_name="inspections", verbose_name=_("house")
    )
    inspector = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="inspections",
        verbose_name=_("inspector"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=InspectionKind.choices)
    started_at = models.DateTimeField(_("started at"))
    ended_at = models.DateTimeField(_("ended at"))
    submitted_location = models.PointField(
        _("submitted from"),
        srid=4326,
        null=True,
        blank=True,
        help_text=_("The browser's location when the record was made, if it gave one."),
    )
    submitted_accuracy = models.FloatField(_("location accuracy (m)"), null=True, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    payload_digest = models.CharField(
        _("payload digest"),
        max_length=64,
        editable=False,
        help_text=_("SHA-256 of the submitted record, to tell a replay from a conflicting one."),
    )
    created_at = models.DateTimeField(_("received at"), auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("inspection")
        verbose_name_plural = _("inspections")
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ended_at__gte=models.F("started_at")),
                name="inspection_ends_after_start",
                violation_error_message=_("An inspection cannot end before it starts."),
            )
        ]

    def __str__(self):
        return f"{self.get_kind_display()} · {self.house.household} · {self.started_at:%Y-%m-%d}"


class Appraisal(models.Model):
    """The safety appraisal (鉴定) made during an inspection."""

    inspection = models.OneToOneField(
        Inspection, on_delete=models.CASCADE, related_name="appraisal", verbose_name=_("inspection")
    )
    site_hazards = models.JSONField(
        _("site hazards"),
        default=list,
        blank=True,
        help_text=_("Codes of the hazards found at the site (landslide, flood, ...)."),
    )
    foundation = models.CharField(_("foundation"), max_length=12, choices=MemberRating.choices)
    load_bearing_walls = models.CharField(
        _("load-bearing walls"), max_length=12, choices=MemberRating.choices
    )
    columns_beams = models.CharField(
        _("columns and beams"), max_length=12, choices=MemberRating.choices
    )
    roof_structure = models.CharField(
        _("roof structure"), max_length=12, choices=MemberRating.choices
    )
    floors_slabs = models.CharField(
        _("floors and roof slabs"), max_length=12, choices=MemberRating.choices
    )
    envelope = models.CharField(_("envelope"), max_length=12, choices=MemberRating.choices)
    derived_grade = models.CharField(
        _("derived grade"),
        max_length=1,
        choices=SafetyGrade.choices,
        help_text=_("What the appraisal rule gives for these ratings."),
    )
    grade = models.CharField(
        _("grade"),
        max_length=1,
        choices=SafetyGrade.choices,
        help_text=_("The grade given: the derived one, or the inspector's override."),
    )
    override_reason = models.TextField(
        _("reason for the override"),
        blank=True,
        help_text=_("Required when the grade differs from the derived grade."),
    )
    rule_version = models.CharField(
        _("rule"), max_length=40, help_text=_("Which appraisal rule derived the grade.")
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("appraisal")
        verbose_name_plural = _("appraisals")

    def __str__(self):
        return _("Grade %(grade)s") % {"grade": self.grade}

    def ratings(self) -> dict[str, str]:
        return {name: getattr(self, name) for name, _label in MEMBERS}


class AppraisalRule(models.Model):
    """How ratings become a grade. The newest active rule applies; admins may add their own.

    Grade D when a site hazard is found (if site_hazard_makes_d) or any member listed in
    d_members is dangerous; C when any other member is dangerous; B when any member is
    damaged; A otherwise.
    """

    name = models.CharField(_("name"), max_length=40, unique=True)
    d_members = models.JSONField(
        _("members whose danger makes the house D"),
        default=list,
        help_text=_("Codes: foundation, load_bearing_walls, columns_beams, roof_structure, ..."),
    )
    site_hazard_makes_d = models.BooleanField(_("a site hazard makes the house D"), default=True)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("appraisal rule")
        verbose_name_plural = _("appraisal rules")
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.name


class RequiredPhotoSlot(models.Model):
    """Configuration: which stage × angle photos an inspection of a kind must have."""

    kind = models.CharField(_("inspection kind"), max_length=20, choices=InspectionKind.choices)
    stage = models.CharField(_("stage"), max_length=10, choices=PhotoStage.choices)
    angle = models.CharField(_("angle"), max_length=20, choices=PhotoAngle.choices)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("required photo slot")
        verbose_name_plural = _("required photo slots")
        ordering = ["kind", "stage", "angle"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "stage", "angle"], name="required_slot_unique")
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.get_stage_display()} · {self.get_angle_display()}"


class PhotoStatus(models.TextChoices):
    PENDING = "pending", _("Processing")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Processing failed")


class PhotoFlag(models.TextChoices):
    NO_GPS = "no_gps", _("No GPS position in the photo")
    FAR_FROM_HOUSE = "far_from_house", _("Taken far from the house")
    OUTSIDE_WINDOW = "outside_window", _("Taken outside the inspection's time")
    IN_FUTURE = "in_future", _("Taken in the future")
    NO_TIME = "no_time", _("No capture time in the photo")
    DUPLICATE = "duplicate", _("Exact copy of another photo")
    NEAR_DUPLICATE_OTHER_HOUSEHOLD = (
        "near_duplicate_other",
        _("Looks like a photo of another household"),
    )
    NEAR_DUPLICATE_EARLIER_STAGE = (
        "near_duplicate_stage",
        _("Looks like a photo of an earlier stage of this house"),
    )
    PROCESSING_FAILED = "processing_failed", _("The photo could not be processed")


def photo_original_key(instance, filename):
    return f"photos/original/{instance.key}"


def photo_display_key(instance, filename):
    return f"photos/display/{instance.key}.jpg"


def photo_thumbnail_key(instance, filename):
    return f"photos/thumb/{instance.key}.jpg"


class Photo(models.Model):
    key = models.UUIDField(
        _("storage key"),
        default=uuid.uuid4,
        unique=True,
        editable=False,
        help_text=_("Files are stored under this key; never overwritten."),
    )
    client_uuid = models.UUIDField(_("client UUID"), unique=True, default=uuid.uuid4)
    inspection = models.ForeignKey(
        Inspection, on_delete=models.PROTECT, related_name="photos", verbose_name=_("inspection")
    )
    stage = models.CharField(_("stage"), max_length=10, choices=PhotoStage.choices)
    angle = models.CharField(_("angle"), max_length=20, choices=PhotoAngle.choices)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="photos",
        verbose_name=_("uploaded by"),
    )
    original = models.FileField(
        _("original"),
        upload_to=photo_original_key,
        max_length=200,
        help_text=_("The file as uploaded. Private: only administrators may download it."),
    )
    original_format = models.CharField(_("format"), max_length=10)
    display = models.FileField(
        _("display copy"), upload_to=photo_display_key, max_length=200, blank=True
    )
    thumbnail = models.FileField(
        _("thumbnail"), upload_to=photo_thumbnail_key, max_length=200, blank=True
    )
    width = models.PositiveIntegerField(_("width"), null=True, blank=True)
    height = models.PositiveIntegerField(_("height"), null=True, blank=True)
    byte_size = models.PositiveIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("SHA-256"), max_length=64, db_index=True)
    phash = models.BigIntegerField(
        _("perceptual hash"),
        null=True,
        blank=True,
        help_text=_("64-bit DCT hash, stored signed."),
    )
    # The hash cut into three bands of 21, 21 and 22 bits (imaging.hash_bands), each indexed:
    # two hashes within distance d share a band within distance d // 3 (pigeonhole), so a
    # near-duplicate lookup probes a few index entries per band instead of scanning every
    # photo (multi-index hashing).
    phash_band0 = models.IntegerField(null=True, blank=True, editable=False)
    phash_band1 = models.IntegerField(null=True, blank=True, editable=False)
    phash_band2 = models.IntegerField(null=True, blank=True, editable=False)
    taken_at = models.DateTimeField(_("taken at"), null=True, blank=True)
    gps = models.PointField(_("GPS position"), srid=4326, null=True, blank=True)
    gps_accuracy = models.FloatField(_("GPS accuracy (m)"), null=True, blank=True)
    camera_make = models.CharField(_("camera make"), max_length=100, blank=True)
    camera_model = models.CharField(_("camera model"), max_length=100, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=PhotoStatus.choices, default=PhotoStatus.PENDING
    )
    flags = models.JSONField(
        _("evidence flags"),
        default=list,
        blank=True,
        help_text=_("Each: {code, detail}. Flags never block an upload: an official decides."),
    )
    payload_digest = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(_("received at"), auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("photo")
        verbose_name_plural = _("photos")
        ordering = ["inspection", "stage", "angle", "created_at"]
        # One covering index per band, (band, hash, id): each band's probe is an index-only
        # scan that returns the hash to verify, with no visit to the table.
        indexes = [
            models.Index(fields=[f"phash_band{i}", "phash", "id"], name=f"photo_phash_band{i}")
            for i in range(3)
        ] + [
            # The requeue sweep's query (pending and older than a cutoff) reads only the few
            # pending rows, not the whole table.
            models.Index(
                fields=["created_at"],
                name="photo_pending_created",
                condition=models.Q(status="pending"),
            )
        ]

    def __str__(self):
        return f"{self.get_stage_display()} · {self.get_angle_display()} ({self.key})"


history_without_spatial_index(Inspection)
history_without_spatial_index(Photo)
