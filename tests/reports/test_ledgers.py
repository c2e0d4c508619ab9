"""The ledgers (台账) from the demo county: read back with csv and openpyxl, in both languages,
scoped to the user, masked, and with nothing a spreadsheet would run."""

import csv
import io

import openpyxl
import pytest
from django.utils import translation

from housing.models import FamilyMember, Household
from renovation.models import CaseState, Payment, RenovationCase
from reports.ledgers import HOUSEHOLD_COLUMNS
from reports.models import ExportStatus
from tests.conftest import ARTIFACTS
from tests.reports.conftest import export_bytes, run_export

LEDGERS = ["households", "members", "cases", "payments", "worklist"]
LIST_KINDS = {"households", "cases", "worklist"}


def params_for(kind: str, **extra) -> dict:
    return {"filters": {}, **extra} if kind in LIST_KINDS else dict(extra)


def read_csv(export) -> list[list[str]]:
    data = export_bytes(export)
    assert data.startswith("\ufeff".encode()), "CSV starts with a UTF-8 byte-order mark"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def read_xlsx(export) -> list[list]:
    book = openpyxl.load_workbook(io.BytesIO(export_bytes(export)), read_only=True)
    sheet = book.worksheets[0]
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def save_artifact(export, name: str) -> None:
    folder = ARTIFACTS / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(export_bytes(export))


@pytest.mark.usefixtures("demo_county")
class TestLedgersOfTheDemoCounty:
    @pytest.mark.parametrize("kind", LEDGERS)
    @pytest.mark.parametrize("language", ["en", "zh-hans"])
    def test_csv_and_xlsx_hold_the_same_rows(self, demo_county, kind, language):
        csv_export = run_export(
            demo_county.auditor, kind, "csv", language=language, **params_for(kind)
        )
        xlsx_export = run_export(
            demo_county.auditor, kind, "xlsx", language=language, **params_for(kind)
        )
        assert csv_export.status == xlsx_export.status == ExportStatus.DONE, (
            csv_export.error,
            xlsx_export.error,
        )
        rows = read_csv(csv_export)
        sheet = read_xlsx(xlsx_export)
        assert rows[0] == sheet[0], "same headers"
        assert len(rows) == len(sheet) > 1
        assert csv_export.done == csv_export.total == len(rows) - 1
        assert [r[0] for r in rows[1:]] == [str(r[0]) for r in sheet[1:]]
        save_artifact(xlsx_export, f"ledger-{kind}-{language}.xlsx")
        save_artifact(csv_export, f"ledger-{kind}-{language}.csv")

    def test_the_households_ledger_has_every_household_with_its_house_and_case(self, demo_county):
        export = run_export(demo_county.auditor, "households", "csv", filters={})
        rows = read_csv(export)
        header, body = rows[0], rows[1:]
        assert header == [str(label) for _k, label, _kind, _w in HOUSEHOLD_COLUMNS]
        assert header[0] == "Archive number"
        assert [r[0] for r in body] == list(
            Household.objects.order_by("archive_no").values_list("archive_no", flat=True)
        )
        by_no = {r[0]: dict(zip(header, r, strict=True)) for r in body}
        # A paid case whose household has no other case (the demo plants repeat cases).
        case = next(
            c
            for c in RenovationCase.objects.filter(state=CaseState.PAID).select_related(
                "house__household"
            )
            if RenovationCase.objects.filter(house__household=c.house.household).count() == 1
        )
        row = by_no[case.house.household.archive_no]
        assert row["Latest case state"] == "Paid in full"
        assert row["Latest case funding year"] == str(case.funding_year)
        household = case.house.household
        assert row["Head of household"] == household.head_name
        assert float(row["Longitude (WGS84)"]) == pytest.approx(household.location.x, abs=1e-6)
        assert float(row["Latitude (WGS84)"]) == pytest.approx(household.location.y, abs=1e-6)

    def test_the_latest_case_of_every_household_is_the_newest_one(self, demo_county):
        export = run_export(demo_county.auditor, "households", "csv", filters={})
        rows = {r[0]: r for r in read_csv(export)[1:]}
        latest = {}
        for case in RenovationCase.objects.select_related("house__household").order_by(
            "created_at", "id"
        ):
            latest[case.house.household.archive_no] = case
        assert latest
        for archive_no, row in rows.items():
            case = latest.get(archive_no)
            assert row[19] == (str(case.get_state_display()) if case else ""), archive_no
            assert row[20] == (str(case.funding_year) if case else ""), archive_no

    def test_headers_follow_the_language(self, demo_county):
        export = run_export(demo_county.auditor, "cases", "csv", language="zh-hans", filters={})
        header = read_csv(export)[0]
        assert header[:3] == ["改造项目", "档案编号", "乡镇"]
        with translation.override("zh-hans"):
            assert str(CaseState.PAID.label) in {r[6] for r in read_csv(export)[1:]}

    def test_id_numbers_are_masked_for_an_auditor_and_whole_for_an_administrator(self, demo_county):
        member = FamilyMember.objects.exclude(id_number="").order_by("id").first()
        masked = run_export(demo_county.auditor, "members", "csv")
        whole = run_export(demo_county.admin, "members", "csv")
        masked_ids = {r[5] for r in read_csv(masked)[1:]}
        whole_ids = {r[5] for r in read_csv(whole)[1:]}
        assert member.id_number in whole_ids
        assert member.id_number not in masked_ids
        assert f"{member.id_number[:6]}***********{member.id_number[-1]}" in masked_ids
        # With the masked number the birth date would give back what the mask hides: the
        # auditor gets the year only.
        auditor_row = next(r for r in read_csv(masked)[1:] if r[3] == member.name)
        assert auditor_row[7] == str(member.birth_date.year)
        admin_row = next(r for r in read_csv(whole)[1:] if r[3] == member.name)
        assert admin_row[7] == member.birth_date.isoformat()

    def test_the_cases_ledger_dates_every_step_from_the_chain(self, demo_county):
        export = run_export(demo_county.auditor, "cases", "xlsx", filters={})
        sheet = read_xlsx(export)
        header = sheet[0]
        paid = RenovationCase.objects.filter(state=CaseState.PAID).first()
        row = dict(zip(header, next(r for r in sheet[1:] if r[0] == paid.pk), strict=True))
        for label in ("Reviewed by the village", "Approved by the county", "Paid in full"):
            assert row[label] is not None, label
        assert row["Paid (yuan)"] == float(paid.paid_total)
        assert row["Payments"] == Payment.objects.filter(case=paid).count()

    def test_the_payments_ledger_filters_by_funding_year(self, demo_county):
        year = Payment.objects.values_list("case__funding_year", flat=True).first()
        export = run_export(demo_county.auditor, "payments", "csv", funding_year=year)
        rows = read_csv(export)[1:]
        assert len(rows) == Payment.objects.filter(case__funding_year=year).count()
        assert {r[5] for r in rows} == {str(year)}

    def test_export_what_i_see_keeps_the_list_filters(self, demo_county):
        export = run_export(
            demo_county.auditor, "households", "csv", filters={"grade": ["D"], "q": ["0001"]}
        )
        rows = read_csv(export)[1:]
        expected = Household.objects.filter(
            houses__is_current=True, houses__safety_grade="D", archive_no__startswith="0001"
        )
        # "0001" is the start of no archive number in the demo: the name search finds none
        # either, and the ledger is empty like the page.
        assert len(rows) == expected.count() == 0
        export = run_export(demo_county.auditor, "households", "csv", filters={"grade": ["D"]})
        rows = read_csv(export)[1:]
        assert (
            len(rows)
            == Household.objects.filter(houses__is_current=True, houses__safety_grade="D").count()
        )
        assert rows and {r[17] for r in rows} == {"D: dangerous as a whole"}

    def test_the_worklist_ledger_is_the_worklist_with_its_filters(self, demo_county):
        from audit.anomalies import anomaly_list

        export = run_export(
            demo_county.auditor, "worklist", "csv", filters={"kind": ["photo_flags"]}
        )
        rows = read_csv(export)[1:]
        expected = anomaly_list(user=demo_county.auditor, kinds=["photo_flags"])
        assert [(r[1], r[6]) for r in rows] == [
            (a.household.archive_no, a.reason) for a in expected
        ]


@pytest.mark.usefixtures("demo_county")
class TestFormulasAreNeutralised:
    @pytest.mark.parametrize("fmt", ["csv", "xlsx"])
    def test_a_cell_a_spreadsheet_would_run_stays_text(self, demo_county, fmt):
        hostile = {
            '=HYPERLINK("http://evil","x")': '\'=HYPERLINK("http://evil","x")',
            "+1+1": "'+1+1",
            "-2+3": "'-2+3",
            "@SUM(A1)": "'@SUM(A1)",
            "\tTAB": "'\tTAB",
        }
        households = list(Household.objects.order_by("archive_no")[: len(hostile)])
        for household, name in zip(households, hostile, strict=True):
            Household.objects.filter(pk=household.pk).update(head_name=name, address=name)
        export = run_export(demo_county.auditor, "households", fmt, filters={})
        if fmt == "csv":
            rows = {r[0]: r for r in read_csv(export)[1:]}
            for household, name in zip(households, hostile, strict=True):
                assert rows[household.archive_no][4] == hostile[name]
                assert rows[household.archive_no][7] == hostile[name]
        else:
            book = openpyxl.load_workbook(io.BytesIO(export_bytes(export)))
            sheet = book.worksheets[0]
            cells = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
            for household, name in zip(households, hostile, strict=True):
                cell = cells[household.archive_no][4]
                # A typed string cell: Excel shows the text and never evaluates it.
                assert cell.data_type == "s"
                assert cell.value == name

    def test_numbers_are_not_neutralised(self, demo_county):
        export = run_export(demo_county.auditor, "cases", "csv", filters={})
        for row in read_csv(export)[1:]:
            assert not row[15].startswith("'"), "outstanding amounts stay numbers"
