"""The household registry: administrative regions, households, their houses and members."""

from django.conf import settings
from django.contrib.gis.db import models
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from simple_history.models import HistoricalRecords

from housing.idnumbers import validate_id_number


class RegionLevel(models.TextChoices):
    PROVINCE = "province", _("Province")
    CITY = "city", _("City")
    COUNTY = "county", _("County")
    TOWNSHIP = "township", _("Township")
    VILLAGE = "village", _("Village")


# Length of the official statistical code at each level, top down.
CODE_LENGTHS = {
    RegionLevel.PROVINCE: 2,
    RegionLevel.CITY: 4,
    RegionLevel.COUNTY: 6,
    RegionLevel.TOWNSHIP: 9,
    RegionLevel.VILLAGE: 12,
}
LEVEL_BY_CODE_LENGTH = {length: level for level, length in CODE_LENGTHS.items()}
LEVEL_ORDER = list(CODE_LENGTHS)


def parent_code(code: str) -> str | None:
    """The code of the level above, from the code itself (520329102 -> 520329)."""
    lengths = sorted(CODE_LENGTHS.values())
    shorter = [n for n in lengths if n < len(code)]
    return code[: shorter[-1]] if shorter else None


class Region(models.Model):
    code = models.CharField(
        _("code"),
        max_length=12,
        unique=True,
        help_text=_("Official statistical code: 2, 4, 6, 9 or 12 digits by level."),
    )
    name = models.CharField(_("name"), max_length=100)
    level = models.CharField(_("level"), max_length=10, choices=RegionLevel.choices)
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent"),
    )
    boundary = models.MultiPolygonField(
        _("boundary"), srid=4326, null=True, blank=True, help_text=_("WGS84 (EPSG:4326).")
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("region")
        verbose_name_plural = _("regions")
        ordering = ["code"]
        indexes = [models.Index(fields=["level", "code"])]

    def __str__(self):
        return f"{self.name} ({self.code})"

    def clean(self):
        errors = {}
        expected = CODE_LENGTHS.get(self.level)
        if self.code and not self.code.isdigit():
            errors["code"] = _("A region code has digits only.")
        elif expected and self.code and len(self.code) != expected:
            errors["code"] = _("A %(level)s code has %(n)d digits; %(code)s has %(got)d.") % {
                "level": RegionLevel(self.level).label,
                "n": expected,
                "code": self.code,
                "got": len(self.code),
            }
        if self.parent_id is not None and self.parent is not None and "code" not in errors:
            if not self.code.startswith(self.parent.code):
                errors["parent"] = _(
                    "The code %(code)s does not start with its parent's code %(parent)s."
                ) % {"code": self.code, "parent": self.parent.code}
            elif (
                self.level in LEVEL_ORDER
                and self.parent.level in LEVEL_ORDER
                and LEVEL_ORDER.index(self.parent.level) != LEVEL_ORDER.index(self.level) - 1
            ):
                errors["parent"] = _("A %(level)s's parent must be a %(parent)s.") % {
                    "level": RegionLevel(self.level).label,
                    "parent": RegionLevel(LEVEL_ORDER[LEVEL_ORDER.index(self.level) - 1]).label,
                }
        if errors:
            raise ValidationError(errors)


class KeyGroup(models.Model):
    """A certified group whose members may get renovation support; data, not code."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    in_2017_list = models.BooleanField(
        _("in the 2017 list"), default=False, help_text=_("One of the 2017–2020 four key groups.")
    )
    in_2021_list = models.BooleanField(
        _("in the 2021 list"), default=False, help_text=_("One of the six groups from 2021.")
    )
    active = models.BooleanField(
        _("active"), default=True, help_text=_("Offered for new households in this county.")
    )
    sort_order = models.PositiveSmallIntegerField(_("sort order"), default=0)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("key group")
        verbose_name_plural = _("key groups")
        ordering = ["sort_order", "code"]

    def __str__(self):
        return self.name


class LocationSource(models.TextChoices):
    PHONE_GPS = "phone_gps", _("Phone GPS")
    GCJ02_MAP = "gcj02_map", _("Picked on a GCJ-02 map")
    SURVEYED = "surveyed", _("Surveyed")
    IMPORTED = "imported", _("Imported (WGS84/CGCS2000 file)")


class Household(models.Model):
    archive_no = models.CharField(
        _("archive number"), max_length=40, unique=True, help_text=_("One household, one file.")
    )
    village = models.ForeignKey(
        Region,
        on_delete=models.PROTECT,
        related_name="households",
        verbose_name=_("village"),
        limit_choices_to={"level": RegionLevel.VILLAGE},
    )
    head_name = models.CharField(_("head of household"), max_length=50, db_index=True)
    head_id_number = models.CharField(
        _("head's ID number"),
        max_length=18,
        blank=True,
        db_index=True,
        validators=[validate_id_number],
        help_text=_("Sensitive: shown masked except to those allowed to reveal it."),
    )
    phone = models.CharField(_("phone"), max_length=30, blank=True)
    address = models.CharField(_("address"), max_length=200, blank=True)
    location = models.PointField(
        _("location"), srid=4326, null=True, blank=True, help_text=_("WGS84, longitude first.")
    )
    location_source = models.CharField(
        _("location source"),
        max_length=20,
        choices=LocationSource.choices,
        blank=True,
        help_text=_("Where the coordinates came from."),
    )
    key_group = models.ForeignKey(
        KeyGroup,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="households",
        verbose_name=_("key group"),
    )
    poverty_relocation = models.BooleanField(
        _("poverty-relocation housing"),
        default=False,
        help_text=_("Also received housing through poverty relocation (易地扶贫搬迁)."),
    )
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    # Imports write 100,000 households at a time: the history keeps only the indexes its
    # lookups use (by record id, date and user), not the registry's search indexes.
    history = HistoricalRecords(
        no_db_index=["archive_no", "head_name", "head_id_number", "village", "key_group"]
    )

    class Meta:
        verbose_name = _("household")
        verbose_name_plural = _("households")
        ordering = ["archive_no"]

    @property
    def current_house(self) -> "House | None":
        """The house the household lives in now (a constraint allows one), or None.

        The one definition of "current house": it reads the houses a selector prefetched
        (`current_houses`, or all `houses`) and queries only when nothing was.
        """
        houses = getattr(self, "current_houses", None)
        if houses is None:
            houses = [h for h in self.houses.all() if h.is_current]
        return houses[0] if houses else None

    def __str__(self):
        return f"{self.head_name} ({self.archive_no})"

    def clean(self):
        if self.village_id and self.village.level != RegionLevel.VILLAGE:
            raise ValidationError({"village": _("A household belongs to a village-level region.")})


class StructureType(models.TextChoices):
    MASONRY = "masonry", _("Masonry")
    BRICK_WOOD = "brick_wood", _("Brick-wood")
    EARTH_WOOD = "earth_wood", _("Earth-wood")
    TIMBER = "timber", _("Timber")
    STONE = "stone", _("Stone")
    CONCRETE_FRAME = "concrete_frame", _("Concrete frame")
    CAVE = "cave", _("Cave dwelling")
    OTHER = "other", _("Other")


class SafetyGrade(models.TextChoices):
    A = "A", _("A: safe")
    B = "B", _("B: basically safe")
    C = "C", _("C: partly dangerous")
    D = "D", _("D: dangerous as a whole")
    NOT_APPRAISED = "", _("Not yet appraised")


class RenovationStatus(models.TextChoices):
    NONE = "none", _("No renovation")
    PLANNED = "planned", _("Planned")
    IN_PROGRESS = "in_progress", _("In progress")
    COMPLETED = "completed", _("Completed")


class House(models.Model):
    household = models.ForeignKey(
        Household, on_delete=models.CASCADE, related_name="houses", verbose_name=_("household")
    )
    is_current = models.BooleanField(
        _("current house"),
        default=True,
        help_text=_("The house the household lives in; a replaced one is kept as not current."),
    )
    structure_type = models.CharField(
        _("structure type"), max_length=20, choices=StructureType.choices, blank=True
    )
    storeys = models.PositiveSmallIntegerField(
        _("storeys"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
    )
    floor_area = models.DecimalField(
        _("floor area (m²)"),
        max_digits=7,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
    )
    year_built = models.PositiveSmallIntegerField(
        _("year built"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1800), MaxValueValidator(2100)],
    )
    safety_grade = models.CharField(
        _("safety grade"),
        max_length=1,
        choices=SafetyGrade.choices,
        blank=True,
        default=SafetyGrade.NOT_APPRAISED,
        db_index=True,
        help_text=_("Follows the latest appraisal."),
    )
    renovation_status = models.CharField(
        _("renovation status"),
        max_length=20,
        choices=RenovationStatus.choices,
        default=RenovationStatus.NONE,
        db_index=True,
    )

    history = HistoricalRecords(no_db_index=["safety_grade", "renovation_status"])

    class Meta:
        verbose_name = _("house")
        verbose_name_plural = _("houses")
        constraints = [
            models.UniqueConstraint(
                fields=["household"],
                condition=models.Q(is_current=True),
                name="house_one_current_per_household",
                violation_error_message=_("A household has one current house."),
            )
        ]

    def __str__(self):
        return _("House of %(household)s") % {"household": self.household}


class Relation(models.TextChoices):
    HEAD = "head", _("Head of household")
    SPOUSE = "spouse", _("Spouse")
    CHILD = "child", _("Child")
    CHILD_IN_LAW = "child_in_law", _("Son- or daughter-in-law")
    GRANDCHILD = "grandchild", _("Grandchild")
    PARENT = "parent", _("Parent")
    GRANDPARENT = "grandparent", _("Grandparent")
    SIBLING = "sibling", _("Sibling")
    OTHER = "other", _("Other")


class Sex(models.TextChoices):
    MALE = "M", _("Male")
    FEMALE = "F", _("Female")


class DisabilityLevel(models.TextChoices):
    NONE = "", _("None")
    LEVEL_1 = "1", _("Grade 1 (most severe)")
    LEVEL_2 = "2", _("Grade 2")
    LEVEL_3 = "3", _("Grade 3")
    LEVEL_4 = "4", _("Grade 4")


class FamilyMember(models.Model):
    household = models.ForeignKey(
        Household, on_delete=models.CASCADE, related_name="members", verbose_name=_("household")
    )
    name = models.CharField(pgettext_lazy("person", "name"), max_length=50)
    relation = models.CharField(
        _("relation to the head"), max_length=20, choices=Relation.choices, default=Relation.OTHER
    )
    id_number = models.CharField(
        _("ID number"),
        max_length=18,
        blank=True,
        db_index=True,
        validators=[validate_id_number],
        help_text=_("Sensitive: shown masked except to those allowed to reveal it."),
    )
    sex = models.CharField(
        _("sex"), max_length=1, choices=Sex.choices, blank=True, help_text=_("From the ID number.")
    )
    birth_date = models.DateField(
        _("birth date"), null=True, blank=True, help_text=_("From the ID number.")
    )
    disability_level = models.CharField(
        _("disability level"), max_length=1, choices=DisabilityLevel.choices, blank=True
    )
    phone = models.CharField(_("phone"), max_length=30, blank=True)

    history = HistoricalRecords(no_db_index=["id_number"])

    class Meta:
        verbose_name = _("family member")
        verbose_name_plural = _("family members")
        ordering = ["household", "id"]

    def __str__(self):
        return self.name


class RevealChannel(models.TextChoices):
    PAGE = "page", _("Household file page")
    API = "api", _("API")


class IdNumberReveal(models.Model):
    """Who looked at whose unmasked ID numbers, and when. Append-only."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="id_reveals",
        verbose_name=_("user"),
    )
    household = models.ForeignKey(
        Household, on_delete=models.PROTECT, related_name="id_reveals", verbose_name=_("household")
    )
    revealed_at = models.DateTimeField(_("revealed at"), auto_now_add=True)
    via = models.CharField(
        _("via"), max_length=10, choices=RevealChannel.choices, help_text=_("Where it was asked.")
    )

    class Meta:
        verbose_name = _("ID number reveal")
        verbose_name_plural = _("ID number reveals")
        ordering = ["-revealed_at"]

    def __str__(self):
        return f"{self.user} → {self.household} @ {self.revealed_at:%Y-%m-%d %H:%M}"


def history_without_spatial_index(model) -> None:
    """The model's history keeps its geometries without a spatial index.

    History is read by record and by date, never by place; a GiST entry per history row
    was a tenth of a 100,000-household import (every imported household writes one) and
    is paid again by every edit, photo and seeded row.
    """
    from django.contrib.gis.db.models import GeometryField

    for field in model.history.model._meta.concrete_fields:
        if isinstance(field, GeometryField):
            field.spatial_index = False


history_without_spatial_index(Region)
history_without_spatial_index(Household)
