"""Issue 12 in the ledgers: the review opinion (审核意见) of every step beside its date in the
cases ledger, the evidence flags accepted on each case, and the opinion of every payment in
the payments ledger; read back from the files, with nothing a spreadsheet would run.

One case is driven through the real services (renovation.services, with real photos whose
flags are acknowledged), each step with an opinion of its own, once for the class.
"""

import csv
import datetime
import io
from decimal import Decimal

import openpyxl
import pytest
from django.test import override_settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from inspections.models import InspectionKind, RequiredPhotoSlot
from renovation.models import (
    CaseEvent,
    CaseEventKind,
    CaseState,
    Payment,
    RenovationCase,
    RenovationMethod,
)
from renovation.services import case_open
from tests.factories import make_region
from tests.renovation.factories import CHAIN as FULL_CHAIN
from tests.renovation.factories import (
    FUNDING_YEAR,
    SMALL_SLOTS,
    act,
    appraise,
    backdate_notice,
    case_team,
    eligible_house,
    pay,
    photograph,
    small_slots,
    subsidy_standard,
)
from tests.reports.conftest import export_bytes, run_export

# A county of its own, so the rows are these tests' alone whatever else the package seeded.
VILLAGE = "520397100200"

# What a spreadsheet would run, typed as a review opinion.
HOSTILE = '=cmd|" /C calc"!A0'
HOSTILE_PAYMENT = "@SUM(1+1)*cmd"

# A distinct opinion for every step, so that each cell can be traced to its step.
OPINIONS = {
    "village_review": "Village: the household qualifies.",
    "notice": "Notice posted on the village board.",
    "township_check": "Township: the file is complete.",
    "county_approve": HOSTILE,
    "start_works": "Before-photos checked, agreement signed.",
    "finish_works": "Works finished as planned.",
    "fail_completion": "Not yet: add a gutter.",
    "finish_works_again": "Gutter added.",
    "pass_completion": "Safe again: passed.",
}
FIRST_PAYMENT = "First instalment: the works are accepted."

# (state the step reaches, action, who takes it): the chain, sent back once at the check.
CHAIN = [
    *FULL_CHAIN[:-1],
    (CaseState.WORKS_STARTED, "fail_completion", "county"),
    (CaseState.WORKS_FINISHED, "finish_works_again", "inspector"),
    FULL_CHAIN[-1],
]
assert FULL_CHAIN[-1][1] == "pass_completion"
# The opinion each state's column shows: the step that first reached it.
STEP_OPINIONS = {
    CaseState.VILLAGE_REVIEWED: OPINIONS["village_review"],
    CaseState.NOTICED: OPINIONS["notice"],
    CaseState.TOWNSHIP_CHECKED: OPINIONS["township_check"],
    CaseState.COUNTY_APPROVED: HOSTILE,
    CaseState.WORKS_STARTED: OPINIONS["start_works"],
    CaseState.WORKS_FINISHED: OPINIONS["finish_works"],
    CaseState.COMPLETION_PASSED: OPINIONS["pass_completion"],
}


def required(kind: str) -> tuple[str, list[str]]:
    """The stage and angles of every photo slot required of an inspection of this kind: the
    small set, or all the demo county's when the package seeded it in the same run."""
    stage = SMALL_SLOTS[kind][0]
    angles = RequiredPhotoSlot.objects.filter(kind=kind, stage=stage).order_by("angle")
    return stage, list(angles.values_list("angle", flat=True))


def opinion_header(state: CaseState) -> str:
    return _("%(step)s: opinion") % {"step": state.label}


@pytest.fixture(scope="class")
def checked_case(class_rows, tmp_path_factory):
    """A case whose completion check passed, every step with its own opinion, the flags of
    its photos (real JPEGs without EXIF: no GPS, no capture time) acknowledged."""
    with (
        override_settings(
            MEDIA_ROOT=tmp_path_factory.mktemp("ledger-opinions-media"),
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        ),
        translation.override("en"),
    ):
        small_slots()
        house = eligible_house(household__village=make_region(VILLAGE))
        team = case_team(house)
        entry = appraise(house, team["inspector"], "D")
        subsidy_standard(
            FUNDING_YEAR, RenovationMethod.REBUILD_SAME_SITE, house.household.key_group
        )
        case, _created = case_open(
            user=team["inspector"],
            house=house,
            method=RenovationMethod.REBUILD_SAME_SITE,
            build_mode="self_built",
            planned_floor_area=Decimal("50"),
            funding_year=FUNDING_YEAR,
        )
        for _state, step, who in CHAIN:
            action = "finish_works" if step == "finish_works_again" else step
            if step == "start_works":
                photograph(entry.inspection, *required(InspectionKind.APPRAISAL), seed=7)
            if step == "finish_works":
                completion = appraise(
                    house,
                    team["inspector2"],
                    "A",
                    kind=InspectionKind.COMPLETION,
                    when=timezone.now() - datetime.timedelta(minutes=5),
                )
                photograph(completion.inspection, *required(InspectionKind.COMPLETION), seed=107)
            extra = {"reason": "Add a gutter."} if step == "fail_completion" else {}
            case = act(
                user=team[who], case_id=case.pk, action=action, opinion=OPINIONS[step], **extra
            )
            if step == "notice":
                backdate_notice(case)
        case.team = team
    return case


@pytest.fixture
def paid_case(checked_case):
    """The case paid in two instalments, each with its opinion (the second one hostile)."""
    county = checked_case.team["county"]
    first, _created = pay(
        user=county,
        case_id=checked_case.pk,
        amount=Decimal("5000"),
        paid_on=timezone.localdate(),
        reference="LEDGER-1",
        opinion=FIRST_PAYMENT,
    )
    second, _created = pay(
        user=county,
        case_id=checked_case.pk,
        amount=checked_case.subsidy_amount - Decimal("5000"),
        paid_on=timezone.localdate(),
        reference="LEDGER-2",
        opinion=HOSTILE_PAYMENT,
    )
    # A copy: the class's case object stays as the class built it.
    case = RenovationCase.objects.get(pk=checked_case.pk)
    assert case.state == CaseState.PAID
    case.team = checked_case.team
    case.payments_made = (first, second)
    return case


def read_csv(export) -> list[dict]:
    rows = list(csv.reader(io.StringIO(export_bytes(export).decode("utf-8-sig"))))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def read_xlsx(export) -> list[dict]:
    """Rows as {header: cell}, cells kept (value and type)."""
    book = openpyxl.load_workbook(io.BytesIO(export_bytes(export)))
    rows = list(book.worksheets[0].iter_rows())
    header = [cell.value for cell in rows[0]]
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


def row_of(rows: list[dict], key: str, value) -> dict:
    (row,) = [r for r in rows if str(getattr(r[key], "value", r[key])) == str(value)]
    return row


@pytest.mark.django_db
class TestOpinionsInTheLedgers:
    def test_each_step_s_opinion_sits_beside_its_date_in_the_cases_ledger(self, paid_case):
        auditor = paid_case.team["auditor"]
        export = run_export(auditor, "cases", "xlsx", filters={})
        sheet = read_xlsx(export)
        header = list(sheet[0])
        row = row_of(sheet, "Case", paid_case.pk)

        for state, opinion in STEP_OPINIONS.items():
            column = header.index(opinion_header(state))
            assert header[column - 1] == state.label, "the opinion follows its step's date"
            assert row[state.label].value is not None, state
            # A typed string cell: even the hostile opinion is text Excel never evaluates.
            assert (row[opinion_header(state)].value, row[opinion_header(state)].data_type) == (
                opinion,
                "s",
            ), state
        # Sent back once: the works' columns keep the step that first reached them, beside
        # their first date; the failed check's and the second finish's opinions are in the
        # timeline, not here.
        assert OPINIONS["fail_completion"] not in {c.value for c in row.values()}
        assert OPINIONS["finish_works_again"] not in {c.value for c in row.values()}
        # Paid in full: the payment that completed the subsidy, with its opinion (as text).
        paid = row[opinion_header(CaseState.PAID)]
        assert (paid.value, paid.data_type) == (HOSTILE_PAYMENT, "s")

        acknowledged = CaseEvent.objects.filter(case=paid_case, kind=CaseEventKind.ACKNOWLEDGE)
        # Before- and after-photos, two each, each without GPS and capture time.
        assert acknowledged.count() >= 8
        assert row["Flags acknowledged"].value == acknowledged.count()
        assert (
            header.index("Flags acknowledged") == header.index(opinion_header(CaseState.PAID)) + 1
        )

    def test_a_step_not_taken_yet_has_neither_date_nor_opinion(self, checked_case):
        export = run_export(checked_case.team["auditor"], "cases", "csv", filters={})
        row = row_of(read_csv(export), "Case", checked_case.pk)
        assert row["State"] == "Completion check passed"
        assert row[opinion_header(CaseState.COMPLETION_PASSED)] == OPINIONS["pass_completion"]
        assert row["Paid in full"] == ""
        assert row[opinion_header(CaseState.PAID)] == ""

    @pytest.mark.parametrize("fmt", ["csv", "xlsx"])
    def test_the_payments_ledger_holds_the_opinion_each_payment_was_recorded_with(
        self, paid_case, fmt
    ):
        first, second = paid_case.payments_made
        export = run_export(paid_case.team["auditor"], "payments", fmt)
        rows = read_csv(export) if fmt == "csv" else read_xlsx(export)
        assert len(rows) == Payment.objects.filter(case=paid_case).count() == 2

        def cell(payment):
            value = row_of(rows, "Payment", payment.pk)["Review opinion"]
            return value if fmt == "csv" else (value.value, value.data_type)

        if fmt == "csv":
            assert cell(first) == FIRST_PAYMENT
            # Neutralised as OWASP advises: a leading apostrophe, and the text kept whole.
            assert cell(second) == "'" + HOSTILE_PAYMENT
        else:
            assert cell(first) == (FIRST_PAYMENT, "s")
            assert cell(second) == (HOSTILE_PAYMENT, "s")

    def test_an_opinion_a_spreadsheet_would_run_is_neutralised_in_the_csv(self, paid_case):
        export = run_export(paid_case.team["auditor"], "cases", "csv", filters={})
        row = row_of(read_csv(export), "Case", paid_case.pk)
        assert row[opinion_header(CaseState.COUNTY_APPROVED)] == "'" + HOSTILE
        assert row[opinion_header(CaseState.PAID)] == "'" + HOSTILE_PAYMENT
        # The others are as written, and the count stays a number.
        assert row[opinion_header(CaseState.VILLAGE_REVIEWED)] == OPINIONS["village_review"]
        assert row["Flags acknowledged"] == str(
            CaseEvent.objects.filter(case=paid_case, kind=CaseEventKind.ACKNOWLEDGE).count()
        )

    def test_the_opinion_headers_follow_the_export_s_language(self, checked_case):
        export = run_export(
            checked_case.team["auditor"], "cases", "csv", language="zh-hans", filters={}
        )
        header = next(csv.reader(io.StringIO(export_bytes(export).decode("utf-8-sig"))))
        with translation.override("zh-hans"):
            expected = [opinion_header(state) for state in STEP_OPINIONS]
            labels = [str(state.label) for state in STEP_OPINIONS]
        for label, opinion in zip(labels, expected, strict=True):
            assert label != "" and label in opinion
            assert header[header.index(opinion) - 1] == label
