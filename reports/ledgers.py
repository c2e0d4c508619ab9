"""The ledgers (台账): households, family members, cases, payments and the auditor's worklist,
as XLSX or CSV. README.md lists their columns with the Chinese headers.

Each ledger is one query built from the app selectors (so it holds what its user may see,
with a list page's own filters for "export what I see"), its labels, masking and
neutralising computed in SQL, so that on PostgreSQL the CSV is written by COPY straight from
the database and the other writers only stream rows (reports.tabular). ID numbers are
masked as housing.idnumbers.mask (the area code and the check character) unless the user
may see them in full; the members' birth dates likewise show only the year, so a masked
number cannot be rebuilt from them (housing.idnumbers explains the choice).
"""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    FilteredRelation,
    FloatField,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import (
    Cast,
    Coalesce,
    Concat,
    ExtractYear,
    Left,
    Right,
    Round,
    TruncSecond,
)
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.permissions import can_see_full_id_numbers
from accounts.scoping import scope
from audit.anomalies import anomaly_list
from housing import idnumbers
from housing.models import (
    DisabilityLevel,
    FamilyMember,
    LocationSource,
    Relation,
    RenovationStatus,
    SafetyGrade,
    Sex,
    StructureType,
)
from renovation.models import (
    BuildMode,
    CaseEvent,
    CaseEventKind,
    CaseState,
    Payment,
    RenovationMethod,
)
from reports.errors import ExportError
from reports.scope import filters_form_of, funding_year_of, region_of
from reports.tabular import (
    FORMULA_STARTS,
    Column,
    query_rows,
    write_csv_query,
    write_csv_rows,
    write_xlsx,
)

CASE_SCOPE = "house__household__village__code"
# The steps whose date the cases ledger shows, in the order of the chain: every state a case
# reaches by a step forward (not where it starts, nor the two ways it ends unpaid).
STEP_STATES = [
    state
    for state in CaseState
    if state not in (CaseState.APPLIED, CaseState.REJECTED, CaseState.WITHDRAWN)
]


# --- SQL helpers ---------------------------------------------------------------------


@dataclass(frozen=True)
class Labelled:
    """A column read as a code by the inner query and worded by the outer one (see
    Ledger.sql): the code is computed once a row, however many labels it has."""

    expression: object
    choices: tuple  # ((code, label), ...)
    boolean: bool = False


def label(field, choices) -> Labelled:
    """A choice's label in the export's language (the code itself when it has none)."""
    expression = F(field) if isinstance(field, str) else field
    return Labelled(expression, tuple((value, str(text)) for value, text in choices))


def yes_no(field: str) -> Labelled:
    return Labelled(F(field), ((True, _("Yes")), (False, _("No"))), boolean=True)


def masked(field: str) -> Case:
    """An ID number masked in SQL exactly as housing.idnumbers.mask: 520329***********X
    (stored numbers are validated to 18 characters, the only length mask() keeps any of)."""
    hidden = 18 - idnumbers.MASK_KEEP_START - idnumbers.MASK_KEEP_END
    return Case(
        When(**{field: ""}, then=Value("")),
        default=Concat(
            Left(field, idnumbers.MASK_KEEP_START),
            Value("*" * hidden),
            Right(field, idnumbers.MASK_KEEP_END),
        ),
        output_field=CharField(),
    )


def local_time(field: str) -> TruncSecond:
    """A timestamp in the local time zone, to the second (the same text on every database)."""
    return TruncSecond(field, tzinfo=timezone.get_current_timezone())


class Coordinate(Func):
    """ST_X / ST_Y of a point: the same function on PostGIS and SpatiaLite."""

    output_field = FloatField()

    def __init__(self, expression, axis: str):
        super().__init__(expression, function=f"ST_{axis}")


def coordinate(field: str, axis: str) -> Round:
    return Round(Coordinate(field, axis), 6)


def user_name(field: str) -> Coalesce:
    """Who: the user's username (stable, unlike display names)."""
    return Coalesce(F(f"{field}__username"), Value(""), output_field=CharField())


class Ledger:
    """A ledger's columns and their SQL, in two levels: the inner query (the app selectors'
    queryset, scoped and filtered, with each column's value annotated once) and an outer
    SELECT over it that words codes as labels and, for CSV, neutralises text a spreadsheet
    would run. Labels over a subquery (the latest case's state) thus cost one subquery a
    row, and on PostgreSQL the whole CSV is one COPY of that statement."""

    def __init__(self, sheet: str, queryset: QuerySet, columns: list[tuple[Column, object]]):
        self.sheet = sheet
        self.queryset = queryset
        self.columns = [c for c, _e in columns]
        self.expressions = {c.key: e for c, e in columns}

    def inner(self) -> QuerySet:
        annotations = {}
        for column in self.columns:
            expression = self.expressions[column.key]
            if isinstance(expression, Labelled):
                expression = expression.expression
            annotations[f"x_{column.key}"] = expression
        return self.queryset.annotate(**annotations).values_list(
            *(f"x_{c.key}" for c in self.columns)
        )

    def sql(self, *, neutralise: bool) -> tuple[str, list]:
        """The outer statement and its parameters."""
        inner, params = self.inner().query.sql_with_params()
        selects = []
        select_params = []
        quote = "'"
        for column in self.columns:
            value = f'ledger."x_{column.key}"'
            value_params = []
            expression = self.expressions[column.key]
            if isinstance(expression, Labelled):
                if expression.boolean:
                    words = dict(expression.choices)
                    value = f"CASE WHEN {value} THEN %s WHEN NOT {value} THEN %s END"
                    value_params = [words[True], words[False]]
                else:
                    whens = " ".join("WHEN %s THEN %s" for _choice in expression.choices)
                    value = f"CASE {value} {whens} ELSE {value} END"
                    for code, text in expression.choices:
                        value_params += [code, text]
            if neutralise and column.kind == "text":
                marks = ", ".join(["%s"] * len(FORMULA_STARTS))
                value = (
                    f"CASE WHEN SUBSTR({value}, 1, 1) IN ({marks}) "
                    f"THEN {quote * 4} || {value} ELSE {value} END"
                )
                value_params = [*value_params, *FORMULA_STARTS, *value_params, *value_params]
            selects.append(f'{value} AS "{column.key}"')
            select_params += value_params
        statement = f"SELECT {', '.join(selects)} FROM ({inner}) AS ledger"
        return statement, select_params + list(params)


# --- the ledgers ---------------------------------------------------------------------

# (key, header, kind, XLSX width): the header is what README.md documents.
HOUSEHOLD_COLUMNS = [
    ("archive_no", gettext_lazy("Archive number"), "text", 20),
    ("township", gettext_lazy("Township"), "text", 10),
    ("village_code", gettext_lazy("Village code"), "text", 14),
    ("village_name", gettext_lazy("Village"), "text", 10),
    ("head_name", gettext_lazy("Head of household"), "text", 10),
    ("head_id", gettext_lazy("Head's ID number"), "text", 20),
    ("phone", gettext_lazy("Phone"), "text", 14),
    ("address", gettext_lazy("Address"), "text", 24),
    ("key_group_name", gettext_lazy("Key group"), "text", 16),
    ("poverty_relocation_text", gettext_lazy("Poverty-relocation housing"), "text", 8),
    ("longitude", gettext_lazy("Longitude (WGS84)"), "number", 12),
    ("latitude", gettext_lazy("Latitude (WGS84)"), "number", 12),
    ("location_source_text", gettext_lazy("Location source"), "text", 14),
    ("structure", gettext_lazy("Structure"), "text", 12),
    ("storeys", gettext_lazy("Storeys"), "number", 6),
    ("floor_area", gettext_lazy("Floor area (m²)"), "number", 10),
    ("year_built", gettext_lazy("Year built"), "number", 8),
    ("grade", gettext_lazy("Safety grade"), "text", 8),
    ("renovation", gettext_lazy("Renovation status"), "text", 12),
    ("case_state", gettext_lazy("Latest case state"), "text", 14),
    ("case_year", gettext_lazy("Latest case funding year"), "number", 8),
]


def households_ledger(job) -> Ledger:
    from housing.selectors import household_list

    form = filters_form_of(job)
    qs = household_list(user=job.user, filters=form.filters()).prefetch_related(None)
    qs = qs.annotate(current=FilteredRelation("houses", condition=Q(houses__is_current=True)))
    full_ids = can_see_full_id_numbers(job.user)
    expressions = {
        "archive_no": F("archive_no"),
        "township": F("village__parent__name"),
        "village_code": F("village__code"),
        "village_name": F("village__name"),
        "head_name": F("head_name"),
        "head_id": F("head_id_number") if full_ids else masked("head_id_number"),
        "phone": F("phone"),
        "address": F("address"),
        "key_group_name": Coalesce(F("key_group__name"), Value(""), output_field=CharField()),
        "poverty_relocation_text": yes_no("poverty_relocation"),
        "longitude": coordinate("location", "X"),
        "latitude": coordinate("location", "Y"),
        "location_source_text": label("location_source", LocationSource.choices),
        "structure": label("current__structure_type", StructureType.choices),
        "storeys": F("current__storeys"),
        "floor_area": F("current__floor_area"),
        "year_built": F("current__year_built"),
        "grade": label("current__safety_grade", SafetyGrade.choices),
        "renovation": label("current__renovation_status", RenovationStatus.choices),
        # The latest case as the maps keep it (maps.MapPoint, in step with every save, by
        # the same rule): one join, where a subquery a row made the ledger 3.6x its COPY.
        "case_state": label("map_point__case_state", CaseState.choices),
        "case_year": F("map_point__funding_year"),
    }
    return Ledger(
        _("Households"),
        qs.order_by("archive_no"),
        [(Column(k, t, kind, w), expressions[k]) for k, t, kind, w in HOUSEHOLD_COLUMNS],
    )


MEMBER_COLUMNS = [
    ("archive_no", gettext_lazy("Archive number"), "text", 20),
    ("village_name", gettext_lazy("Village"), "text", 10),
    ("head_name", gettext_lazy("Head of household"), "text", 10),
    ("member_name", gettext_lazy("Name"), "text", 10),
    ("relation_text", gettext_lazy("Relation to the head"), "text", 10),
    ("id_number_text", gettext_lazy("ID number"), "text", 20),
    ("sex_text", gettext_lazy("Sex"), "text", 6),
    ("birth", gettext_lazy("Birth year"), "text", 10),
    ("disability", gettext_lazy("Disability level"), "text", 10),
    ("member_phone", gettext_lazy("Phone"), "text", 14),
]


def members_ledger(job) -> Ledger:
    region = region_of(job)
    qs = scope(FamilyMember.objects.all(), job.user, "household__village__code")
    if region is not None:
        qs = qs.filter(household__village__code__startswith=region.code)
    full = can_see_full_id_numbers(job.user)
    expressions = {
        "archive_no": F("household__archive_no"),
        "village_name": F("household__village__name"),
        "head_name": F("household__head_name"),
        "member_name": F("name"),
        "relation_text": label("relation", Relation.choices),
        "id_number_text": F("id_number") if full else masked("id_number"),
        "sex_text": label("sex", Sex.choices),
        # The full date only where the full number is shown: with the masked number, a
        # birth date would give back exactly the characters the mask hides.
        "birth": Cast("birth_date", CharField())
        if full
        else Cast(ExtractYear("birth_date"), CharField()),
        "disability": label("disability_level", DisabilityLevel.choices),
        "member_phone": F("phone"),
    }
    columns = []
    for k, t, kind, w in MEMBER_COLUMNS:
        if k == "birth" and full:
            t = gettext_lazy("Birth date")
        columns.append((Column(k, t, kind, w), expressions[k]))
    return Ledger(_("Family members"), qs.order_by("household__archive_no", "id"), columns)


def _step_event(state: str) -> QuerySet:
    """The event that first took the case to `state`: a step of the chain, or for PAID the
    payment that completed the subsidy (never a flag's acknowledgement, which keeps the
    case's state and so names it as its to-state too)."""
    return CaseEvent.objects.filter(
        case=OuterRef("pk"),
        to_state=state,
        kind__in=[CaseEventKind.TRANSITION, CaseEventKind.PAYMENT],
    ).order_by("id")


def _step_date(state: str) -> Subquery:
    return Subquery(_step_event(state).values("at")[:1])


def _opinion() -> KeyTextTransform:
    """The review opinion (审核意见) a step or a payment event records in its data."""
    return KeyTextTransform("opinion", "data")


def _step_opinion(state: str) -> Subquery:
    """The review opinion of the same event the step's date is read from."""
    return Subquery(
        _step_event(state).annotate(opinion=_opinion()).values("opinion")[:1],
        output_field=CharField(),
    )


def _step_opinion_header(state: CaseState):
    """The header "<step>: opinion", worded when it is written (in the export's language)."""
    return lazy(lambda: _("%(step)s: opinion") % {"step": state.label}, str)()


CASE_COLUMNS = [
    ("case_id", gettext_lazy("Case"), "number", 8),
    ("archive_no", gettext_lazy("Archive number"), "text", 20),
    ("township", gettext_lazy("Township"), "text", 10),
    ("village_name", gettext_lazy("Village"), "text", 10),
    ("head_name", gettext_lazy("Head of household"), "text", 10),
    ("key_group_name", gettext_lazy("Key group"), "text", 16),
    ("state_text", gettext_lazy("State"), "text", 14),
    ("entry_grade_text", gettext_lazy("Grade at entry"), "text", 8),
    ("method_text", gettext_lazy("Method"), "text", 16),
    ("build_mode_text", gettext_lazy("Build mode"), "text", 12),
    ("household_size_n", gettext_lazy("Household size"), "number", 8),
    ("planned_area", gettext_lazy("Planned floor area (m²)"), "number", 10),
    ("subsidy", gettext_lazy("Subsidy (yuan)"), "number", 10),
    ("subsidy_reason", gettext_lazy("Subsidy override reason"), "text", 20),
    ("paid", gettext_lazy("Paid (yuan)"), "number", 10),
    ("outstanding", gettext_lazy("Outstanding (yuan)"), "number", 10),
    ("overdue_text", gettext_lazy("Payment overdue"), "text", 8),
    ("payments_n", gettext_lazy("Payments"), "number", 8),
    ("year", gettext_lazy("Funding year"), "number", 8),
    ("batch_text", gettext_lazy("Batch"), "text", 10),
    ("works_inspector_name", gettext_lazy("Works inspector"), "text", 12),
    ("created_by_name", gettext_lazy("Opened by"), "text", 12),
    ("opened_at", gettext_lazy("Opened at"), "datetime", 17),
    # Each step's date, then the review opinion it was taken with: one fact a cell, so an
    # auditor can filter one step's opinions (the county's approvals, say) and read each
    # beside its date, rather than unpick one long cell of every step's text.
    *(
        column
        for state in STEP_STATES
        for column in (
            (f"step_{state.value}", state.label, "datetime", 17),
            (f"opinion_{state.value}", _step_opinion_header(state), "text", 24),
        )
    ),
    ("flags_acknowledged_n", gettext_lazy("Flags acknowledged"), "number", 10),
    ("closing", gettext_lazy("Closing reason"), "text", 20),
]


def cases_ledger(job) -> Ledger:
    from renovation.selectors import case_list

    form = filters_form_of(job)
    qs = case_list(user=job.user, filters=form.filters())
    cutoff = timezone.make_aware(
        datetime.datetime.combine(
            timezone.localdate() - datetime.timedelta(days=settings.ANJU_PAYMENT_DUE_DAYS),
            datetime.time.min,
        )
    )
    money = DecimalField(max_digits=12, decimal_places=2)
    expressions = {
        "case_id": F("id"),
        "archive_no": F("house__household__archive_no"),
        "township": F("house__household__village__parent__name"),
        "village_name": F("house__household__village__name"),
        "head_name": F("house__household__head_name"),
        "key_group_name": Coalesce(
            F("house__household__key_group__name"), Value(""), output_field=CharField()
        ),
        "state_text": label("state", CaseState.choices),
        "entry_grade_text": F("entry_grade"),
        "method_text": label("method", RenovationMethod.choices),
        "build_mode_text": label("build_mode", BuildMode.choices),
        "household_size_n": F("household_size"),
        "planned_area": F("planned_floor_area"),
        "subsidy": F("subsidy_amount"),
        "subsidy_reason": F("subsidy_override_reason"),
        "paid": F("paid_total"),
        "outstanding": ExpressionWrapper(F("subsidy_amount") - F("paid_total"), output_field=money),
        "overdue_text": Case(
            When(
                Q(state=CaseState.COMPLETION_PASSED)
                & Q(completion_passed_at__lt=cutoff)
                & Q(paid_total__lt=F("subsidy_amount")),
                then=Value(_("Yes")),
            ),
            default=Value(_("No")),
            output_field=CharField(),
        ),
        "payments_n": Subquery(
            Payment.objects.filter(case=OuterRef("pk"))
            .order_by()
            .values("case")
            .annotate(n=Count("id"))
            .values("n")[:1]
        ),
        "year": F("funding_year"),
        "batch_text": F("batch"),
        "works_inspector_name": user_name("works_inspector"),
        "created_by_name": user_name("created_by"),
        "opened_at": local_time("created_at"),
        # The evidence flags officials accepted on this case (each with its reason, which
        # the case's timeline and acceptance report show): how much of it rests on them.
        "flags_acknowledged_n": Coalesce(
            Subquery(
                CaseEvent.objects.filter(case=OuterRef("pk"), kind=CaseEventKind.ACKNOWLEDGE)
                .order_by()
                .values("case")
                .annotate(n=Count("id"))
                .values("n")[:1]
            ),
            0,
        ),
        "closing": F("closing_reason"),
    }
    steps = {}
    for state in STEP_STATES:
        steps[f"_at_{state.value}"] = _step_date(state)
        expressions[f"step_{state.value}"] = local_time(f"_at_{state.value}")
        expressions[f"opinion_{state.value}"] = _step_opinion(state)
    qs = qs.annotate(**steps).order_by("id")
    return Ledger(
        _("Renovation cases"),
        qs,
        [(Column(k, t, kind, w), expressions[k]) for k, t, kind, w in CASE_COLUMNS],
    )


PAYMENT_COLUMNS = [
    ("payment_id", gettext_lazy("Payment"), "number", 8),
    ("case_ref", gettext_lazy("Case"), "number", 8),
    ("archive_no", gettext_lazy("Archive number"), "text", 20),
    ("village_name", gettext_lazy("Village"), "text", 10),
    ("head_name", gettext_lazy("Head of household"), "text", 10),
    ("year", gettext_lazy("Funding year"), "number", 8),
    ("amount_paid", gettext_lazy("Amount (yuan)"), "number", 10),
    ("paid_date", gettext_lazy("Paid on"), "date", 11),
    ("reference_text", gettext_lazy("Payment reference"), "text", 18),
    ("recorded_by_name", gettext_lazy("Recorded by"), "text", 12),
    ("recorded_at", gettext_lazy("Recorded at"), "datetime", 17),
    ("opinion_text", gettext_lazy("Review opinion"), "text", 30),
]


def payments_ledger(job) -> Ledger:
    region = region_of(job)
    year = funding_year_of(job)
    qs = scope(Payment.objects.all(), job.user, f"case__{CASE_SCOPE}")
    if region is not None:
        qs = qs.filter(**{f"case__{CASE_SCOPE}__startswith": region.code})
    if year is not None:
        qs = qs.filter(case__funding_year=year)
    expressions = {
        "payment_id": F("id"),
        "case_ref": F("case_id"),
        "archive_no": F("case__house__household__archive_no"),
        "village_name": F("case__house__household__village__name"),
        "head_name": F("case__house__household__head_name"),
        "year": F("case__funding_year"),
        "amount_paid": F("amount"),
        "paid_date": F("paid_on"),
        "reference_text": F("reference"),
        "recorded_by_name": user_name("recorded_by"),
        "recorded_at": local_time("created_at"),
        # The opinion recorded with the payment, on its event (the event names the payment).
        "opinion_text": Subquery(
            CaseEvent.objects.filter(case=OuterRef("case_id"), kind=CaseEventKind.PAYMENT)
            .annotate(payment_ref=Cast(KeyTextTransform("payment", "data"), BigIntegerField()))
            .filter(payment_ref=OuterRef("pk"))
            .order_by("id")
            .annotate(opinion=_opinion())
            .values("opinion")[:1],
            output_field=CharField(),
        ),
    }
    return Ledger(
        _("Payments"),
        qs.order_by("paid_on", "id"),
        [(Column(k, t, kind, w), expressions[k]) for k, t, kind, w in PAYMENT_COLUMNS],
    )


WORKLIST_COLUMNS = [
    ("kind", gettext_lazy("Anomaly"), "text", 24),
    ("archive_no", gettext_lazy("Archive number"), "text", 20),
    ("village_name", gettext_lazy("Village"), "text", 10),
    ("head_name", gettext_lazy("Head of household"), "text", 10),
    ("case_id", gettext_lazy("Case"), "number", 8),
    ("year", gettext_lazy("Funding year"), "number", 8),
    ("reason", gettext_lazy("Reason"), "text", 60),
]


def worklist_rows(job):
    """The worklist, as on its page with its filters: (columns, rows) computed in Python
    (each anomaly is worded by audit.anomalies)."""
    anomalies = anomaly_list(user=job.user, **filters_form_of(job).anomaly_filters())
    job.set_total(len(anomalies))
    columns = [Column(k, t, kind, w) for k, t, kind, w in WORKLIST_COLUMNS]
    rows = (
        (
            str(a.label),
            a.household.archive_no,
            a.household.village.name,
            a.household.head_name,
            a.case.pk if a.case else None,
            a.case.funding_year if a.case else None,
            a.reason,
        )
        for a in anomalies
    )
    return columns, rows


LEDGERS = {
    "households": households_ledger,
    "members": members_ledger,
    "cases": cases_ledger,
    "payments": payments_ledger,
}


def build(job) -> None:
    """The builder of every ledger kind (reports.kinds): one sheet, XLSX or CSV."""
    kind = job.export.kind
    fmt = job.export.format
    if kind == "worklist":
        columns, rows = worklist_rows(job)
        if fmt == "csv":
            write_csv_rows(job.path, columns, rows, job)
        else:
            write_xlsx(job.path, columns, rows, job, sheet=_("Worklist"))
        return
    if kind not in LEDGERS:
        raise ExportError(_("There is no ledger of kind “%(kind)s”.") % {"kind": kind})
    ledger = LEDGERS[kind](job)
    job.set_total(ledger.queryset.order_by().count())
    if fmt == "csv":
        write_csv_query(job.path, ledger.columns, ledger.sql(neutralise=True), job)
    else:
        rows = query_rows(*ledger.sql(neutralise=False))
        write_xlsx(job.path, ledger.columns, rows, job, sheet=ledger.sheet)
