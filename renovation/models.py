"""Renovation cases: the approval chain, the completion check and subsidy payments.

Public money is released by these steps, so each state change is one service
(renovation/services.py, following the table in renovation/workflow.py), and every
transition and payment appends a CaseEvent whose hash chains to the previous event
(renovation/events.py): editing or deleting a past event breaks the chain, and
`manage.py verify_audit` (audit/) finds the first broken link.

These models were born in the inspections app: they keep its table names (db_table, and
the history tables' names), so moving them here rewrote no data.
"""

from django.conf import settings
from django.contrib.gis.db import models
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from housing.models import House, KeyGroup
from inspections.models import Appraisal, Inspection, PhotoFlag


class RenovationMethod(models.TextChoices):
    REPAIR = "repair", _("Repair and reinforce")
    REBUILD_SAME_SITE = "rebuild_same_site", _("Rebuild on the same site")
    REBUILD_SCATTERED = "rebuild_scattered", _("Rebuild elsewhere, scattered")
    REBUILD_GROUPED = "rebuild_grouped", _("Rebuild elsewhere, grouped")


# Which methods fit which entry grade (DOMAIN.md: C is repaired, D is rebuilt).
METHODS_FOR_GRADE = {
    "C": [RenovationMethod.REPAIR],
    "D": [
        RenovationMethod.REBUILD_SAME_SITE,
        RenovationMethod.REBUILD_SCATTERED,
        RenovationMethod.REBUILD_GROUPED,
    ],
}


# The funding years a case or a subsidy standard may name: one rule for the model, the
# services, the forms and the API.
FUNDING_YEAR_MIN = 2000
FUNDING_YEAR_MAX = 2100


def funding_year_validate(value) -> None:
    """Raise ValidationError unless `value` is a funding year from 2000 to 2100."""
    if not FUNDING_YEAR_MIN <= value <= FUNDING_YEAR_MAX:
        raise ValidationError(
            _("The funding year %(year)s is not between %(min)s and %(max)s."),
            code="funding_year",
            params={"year": value, "min": FUNDING_YEAR_MIN, "max": FUNDING_YEAR_MAX},
        )


class BuildMode(models.TextChoices):
    SELF_BUILT = "self_built", _("Self-built")
    GOVERNMENT = "government", _("Government-organised")


class CaseState(models.TextChoices):
    APPLIED = "applied", _("Applied")
    VILLAGE_REVIEWED = "village_reviewed", _("Reviewed by the village")
    NOTICED = "noticed", _("Publicly noticed")
    TOWNSHIP_CHECKED = "township_checked", _("Checked by the township")
    COUNTY_APPROVED = "county_approved", _("Approved by the county")
    WORKS_STARTED = "works_started", _("Works started")
    WORKS_FINISHED = "works_finished", _("Works finished")
    COMPLETION_PASSED = "completion_passed", _("Completion check passed")
    PAID = "paid", _("Paid in full")
    REJECTED = "rejected", _("Rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn")


# States from which a case is still open (rejected, withdrawn and paid are final).
OPEN_STATES = [
    CaseState.APPLIED,
    CaseState.VILLAGE_REVIEWED,
    CaseState.NOTICED,
    CaseState.TOWNSHIP_CHECKED,
    CaseState.COUNTY_APPROVED,
    CaseState.WORKS_STARTED,
    CaseState.WORKS_FINISHED,
    CaseState.COMPLETION_PASSED,
]


class AreaRule(models.Model):
    """Floor-area limits by household size, versioned by the year they take effect.

    Defaults (DOMAIN.md): at least 13 m² a person; a household of 1–3 people 40–60 m²;
    at most 18 m² a person for larger households.
    """

    effective_year = models.PositiveSmallIntegerField(_("from year"), unique=True)
    min_per_person = models.DecimalField(
        _("minimum per person (m²)"), max_digits=5, decimal_places=1, default=13
    )
    small_household_max_people = models.PositiveSmallIntegerField(
        _("a small household has at most (people)"), default=3
    )
    small_household_min_area = models.DecimalField(
        _("small household: minimum (m²)"), max_digits=6, decimal_places=1, default=40
    )
    small_household_max_area = models.DecimalField(
        _("small household: maximum (m²)"), max_digits=6, decimal_places=1, default=60
    )
    max_per_person = models.DecimalField(
        _("larger household: maximum per person (m²)"), max_digits=5, decimal_places=1, default=18
    )

    history = HistoricalRecords(table_name="inspections_historicalarearule")

    class Meta:
        db_table = "inspections_arearule"
        verbose_name = _("area rule")
        verbose_name_plural = _("area rules")
        ordering = ["-effective_year"]

    def __str__(self):
        return _("Area rule from %(year)s") % {"year": self.effective_year}


class SubsidyStandard(models.Model):
    """The county's subsidy for a method and key group in a funding year.

    A row with no key group applies to households of any other group.
    """

    year = models.PositiveSmallIntegerField(_("funding year"), validators=[funding_year_validate])
    method = models.CharField(_("method"), max_length=20, choices=RenovationMethod.choices)
    key_group = models.ForeignKey(
        KeyGroup,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="subsidy_standards",
        verbose_name=_("key group"),
        help_text=_("Empty: any other household."),
    )
    amount = models.DecimalField(
        _("amount (yuan)"), max_digits=10, decimal_places=2, validators=[MinValueValidator(0)]
    )

    history = HistoricalRecords(table_name="inspections_historicalsubsidystandard")

    class Meta:
        db_table = "inspections_subsidystandard"
        verbose_name = _("subsidy standard")
        verbose_name_plural = _("subsidy standards")
        ordering = ["-year", "method", "key_group"]
        constraints = [
            # Two partial indexes rather than nulls_distinct=False, which SQLite lacks: one
            # row per year × method × group, and one "any other group" row per year × method.
            models.UniqueConstraint(
                fields=["year", "method", "key_group"],
                condition=models.Q(key_group__isnull=False),
                name="subsidy_standard_unique",
            ),
            models.UniqueConstraint(
                fields=["year", "method"],
                condition=models.Q(key_group__isnull=True),
                name="subsidy_standard_unique_any_group",
            ),
        ]

    def __str__(self):
        return f"{self.year} {self.get_method_display()} {self.key_group or '*'}: {self.amount}"


class RenovationCase(models.Model):
    house = models.ForeignKey(
        House, on_delete=models.PROTECT, related_name="cases", verbose_name=_("house")
    )
    state = models.CharField(
        _("state"),
        max_length=20,
        choices=CaseState.choices,
        default=CaseState.APPLIED,
        db_index=True,
    )
    entry_appraisal = models.ForeignKey(
        Appraisal,
        on_delete=models.PROTECT,
        related_name="cases",
        verbose_name=_("entry appraisal"),
        help_text=_("The appraisal that graded the house C or D."),
    )
    entry_grade = models.CharField(_("grade at entry"), max_length=1)
    method = models.CharField(_("method"), max_length=20, choices=RenovationMethod.choices)
    build_mode = models.CharField(_("built by"), max_length=20, choices=BuildMode.choices)
    household_size = models.PositiveSmallIntegerField(
        _("household size"), help_text=_("People in the household when the case was opened.")
    )
    planned_floor_area = models.DecimalField(
        _("planned floor area (m²)"), max_digits=7, decimal_places=2
    )
    subsidy_standard = models.ForeignKey(
        SubsidyStandard,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cases",
        verbose_name=_("subsidy standard"),
    )
    subsidy_amount = models.DecimalField(_("subsidy (yuan)"), max_digits=10, decimal_places=2)
    subsidy_override_reason = models.TextField(
        _("reason the subsidy differs from the standard"), blank=True
    )
    funding_year = models.PositiveSmallIntegerField(
        _("funding year"), db_index=True, validators=[funding_year_validate]
    )
    batch = models.CharField(_("batch"), max_length=40, blank=True)
    notice_started_at = models.DateTimeField(_("public notice from"), null=True, blank=True)
    works_inspector = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="supervised_cases",
        verbose_name=_("inspector supervising the works"),
    )
    completion_inspection = models.ForeignKey(
        Inspection,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="completed_cases",
        verbose_name=_("completion check"),
    )
    completion_passed_at = models.DateTimeField(_("completion check passed"), null=True, blank=True)
    paid_total = models.DecimalField(
        _("paid so far (yuan)"), max_digits=10, decimal_places=2, default=0
    )
    closing_reason = models.TextField(
        _("reason"), blank=True, help_text=_("Why the case was rejected or withdrawn.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="cases_opened",
        verbose_name=_("opened by"),
    )
    # The time of the opening event: the clock's, or the `at` of a historical import.
    created_at = models.DateTimeField(_("opened"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    history = HistoricalRecords(table_name="inspections_historicalrenovationcase")

    class Meta:
        db_table = "inspections_renovationcase"
        verbose_name = _("renovation case")
        verbose_name_plural = _("renovation cases")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "funding_year"])]

    def __str__(self):
        return _("Case %(id)s · %(household)s") % {"id": self.pk, "household": self.house.household}


class Payment(models.Model):
    case = models.ForeignKey(
        RenovationCase, on_delete=models.PROTECT, related_name="payments", verbose_name=_("case")
    )
    amount = models.DecimalField(
        _("amount (yuan)"),
        max_digits=10,
        decimal_places=2,
        validators=[MinValueValidator(0.01)],
    )
    paid_on = models.DateField(_("paid on"))
    reference = models.CharField(
        _("reference"), max_length=60, help_text=_("The bank or treasury reference.")
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="payments_recorded",
        verbose_name=_("recorded by"),
    )
    # The time of the payment's event: the clock's, or the `at` of a historical import.
    created_at = models.DateTimeField(_("recorded at"), default=timezone.now, editable=False)

    history = HistoricalRecords(table_name="inspections_historicalpayment")

    class Meta:
        db_table = "inspections_payment"
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["case", "paid_on", "id"]

    def __str__(self):
        return f"{self.amount} · {self.paid_on} · {self.reference}"


class CaseEventKind(models.TextChoices):
    OPENED = "opened", _("Opened")
    TRANSITION = "transition", _("State change")
    PAYMENT = "payment", _("Payment")
    DOCUMENT = "document", _("Document issued")
    # An official accepted an evidence flag of a photo a step relies on, with the reason.
    ACKNOWLEDGE = "acknowledge", _("Flag acknowledged")


class CaseEvent(models.Model):
    """Append-only. Its hash covers its own fields and the previous event's hash.

    Most events belong to a case; a document issued by Anju (reports.Export) is recorded in
    the same chain with no case, so the chain also vouches for every exported file."""

    case = models.ForeignKey(
        RenovationCase,
        on_delete=models.PROTECT,
        related_name="events",
        verbose_name=_("case"),
        null=True,
        blank=True,
        help_text=_("Empty for an event about no case: a document issued."),
    )
    kind = models.CharField(_("kind"), max_length=12, choices=CaseEventKind.choices)
    from_state = models.CharField(_("from"), max_length=20, choices=CaseState.choices, blank=True)
    to_state = models.CharField(_("to"), max_length=20, choices=CaseState.choices, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="case_events",
        verbose_name=_("by"),
    )
    at = models.DateTimeField(_("at"))
    reason = models.TextField(_("reason"), blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)
    request_key = models.CharField(
        _("request key"),
        max_length=64,
        null=True,
        blank=True,
        unique=True,
        help_text=_("Sent by the client: a repeat of the same request is the same event."),
    )
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64, unique=True)

    class Meta:
        db_table = "inspections_caseevent"
        verbose_name = _("case event")
        verbose_name_plural = _("case events")
        ordering = ["id"]

    def __str__(self):
        return f"{self.case_id} {self.kind} {self.from_state}→{self.to_state} @ {self.at}"

    @property
    def flag_label(self) -> str:
        """For an acknowledgement: the name of the flag it accepts."""
        code = str((self.data or {}).get("flag", ""))
        return str(PhotoFlag(code).label) if code in PhotoFlag.values else code


class ChainHead(models.Model):
    """One row: the hash of the newest event. Locked while appending, so the chain is a line."""

    last_hash = models.CharField(max_length=64)
    last_event_id = models.BigIntegerField(null=True)

    class Meta:
        db_table = "inspections_chainhead"
        verbose_name = _("audit chain head")
        verbose_name_plural = _("audit chain head")
