"""The completion acceptance report (竣工验收报告) of a region and funding year.

A summary (cases by state; how many passed their completion check; planned floor area;
subsidy allocated, paid and overdue; photo evidence flags; the auditor's anomalies for the
region and year), then one section per case whose completion check was made, passed or
failed, with its after-works photos, who checked it and when, and boxes to sign.

Format "pdf" is that report. Format "zip" holds the report and the household file
(reports.documents.household_file) of every household with a case funded that year in the
region, one folder per village.

Memory: WeasyPrint lays a whole document out in memory, photos included, so nothing is
rendered for a whole county at once. The report is rendered in parts (the summary, then
CASES_PER_PART case sections at a time) and the parts are joined, numbered across the
whole report (render.join_with_page_numbers); the ZIP is written entry by entry, one
household file rendered, added and deleted before the next.
"""

import zipfile
from pathlib import Path

from django.db.models import Count, DecimalField, F, Prefetch, Q, Sum, TextField, Value
from django.db.models.functions import Cast, Coalesce
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _

from audit.anomalies import anomaly_list
from housing.models import Household, Region
from housing.selectors import household_get, region_breadcrumbs
from inspections.models import PhotoFlag, PhotoStage
from inspections.selectors import ANGLE_ORDER, photo_list
from renovation.evidence import completion_visit
from renovation.models import CaseEvent, CaseState, RenovationCase
from renovation.rules import number, overdue_cases
from renovation.selectors import CaseFilters, case_list
from reports.documents.household_file import (
    grade_view,
    person,
    photo_view,
    render_household_file,
)
from reports.documents.render import (
    document_context,
    join_with_page_numbers,
    render_pdf,
)
from reports.errors import ExportError
from reports.scope import funding_year_of, region_of

SUMMARY_TEMPLATE = "reports/pdf/acceptance_summary.html"
CASES_TEMPLATE = "reports/pdf/acceptance_cases.html"
# Case sections rendered in one WeasyPrint document: enough to spread its start-up cost,
# few enough that their photos (about six each) stay a small amount of memory.
CASES_PER_PART = 20
THUMBS_PER_ROW = 4
CHECK_STEPS = ("pass_completion", "fail_completion")
# Rejected and withdrawn cases released no money and never will: not in the totals.
NOT_COUNTED = (CaseState.REJECTED, CaseState.WITHDRAWN)
_ZERO = Value(0, output_field=DecimalField(max_digits=14, decimal_places=2))


def _scope(job) -> tuple[Region, int]:
    region = region_of(job)
    if region is None:
        raise ExportError(_("Name a region for the completion acceptance report."))
    year = funding_year_of(job)
    if year is None:
        raise ExportError(_("Name a funding year for the completion acceptance report."))
    return region, year


def cases_in_scope(*, user, region: Region, year: int):
    """The user's cases funded in `year` in `region` and under it (renovation.selectors)."""
    return case_list(user=user, filters=CaseFilters(township=region.code, funding_year=year))


def checked_cases(cases):
    """The cases whose completion check was made: passed (now or before a payment), or
    failed (sent back to the works with the fixes required), in archive order."""
    failed = CaseEvent.objects.filter(data__step="fail_completion").values("case")
    return cases.filter(Q(completion_passed_at__isnull=False) | Q(pk__in=failed)).order_by(
        "house__household__village__code", "house__household__archive_no", "pk"
    )


def _sums() -> dict:
    """What the summary adds up over a set of cases: how many, area, subsidy and paid."""
    return {
        "n": Count("id"),
        "area": Coalesce(Sum("planned_floor_area"), _ZERO),
        "subsidy": Coalesce(Sum("subsidy_amount"), _ZERO),
        "paid": Coalesce(Sum("paid_total"), _ZERO),
    }


def summary_context(*, user, region: Region, year: int, cases) -> dict:
    """The summary's figures, tables and anomalies. A fixed number of queries."""
    counted = cases.exclude(state__in=NOT_COUNTED).order_by()
    totals = counted.aggregate(**_sums())
    by_state = {row["state"]: row for row in cases.order_by().values("state").annotate(**_sums())}
    states = [
        {
            "label": label,
            "n": by_state[state]["n"],
            "area": number(by_state[state]["area"]),
            "subsidy": number(by_state[state]["subsidy"]),
            "paid": number(by_state[state]["paid"]),
            "counted": state not in NOT_COUNTED,
        }
        for state, label in CaseState.choices
        if state in by_state
    ]
    overdue = overdue_cases(counted).aggregate(
        n=Count("id"),
        owed=Coalesce(Sum(F("subsidy_amount") - F("paid_total")), _ZERO),
    )
    checked = checked_cases(cases)
    passed = cases.filter(completion_passed_at__isnull=False).count()
    failed = checked.filter(completion_passed_at__isnull=True).count()

    flag_counts = {
        flag.value: Count("id", filter=Q(flag_text__contains=f'"code": "{flag.value}"'))
        for flag in PhotoFlag
    }
    flags_row = (
        photo_list(user=user)
        .filter(inspection__house__in=counted.values("house"))
        .order_by()
        .alias(flag_text=Cast("flags", TextField()))
        .aggregate(
            photos=Count("id"),
            flagged=Count("id", filter=Q(flag_text__contains='"code": ')),
            **flag_counts,
        )
    )
    flags = [
        {"label": flag.label, "n": flags_row[flag.value]}
        for flag in PhotoFlag
        if flags_row[flag.value]
    ]
    anomalies = anomaly_list(user=user, region=region.code, year=year)
    anomaly_counts: dict[str, dict] = {}
    for anomaly in anomalies:
        anomaly_counts.setdefault(anomaly.code, {"label": anomaly.label, "n": 0})["n"] += 1
    return {
        "cases_total": cases.count(),
        "counted": totals["n"],
        "passed": passed,
        "failed": failed,
        "area": number(totals["area"]),
        "subsidy": number(totals["subsidy"]),
        "paid": number(totals["paid"]),
        "outstanding": number(max(totals["subsidy"] - totals["paid"], 0)),
        "overdue_n": overdue["n"],
        "overdue_owed": number(overdue["owed"]),
        "states": states,
        "photos": flags_row["photos"],
        "flagged_photos": flags_row["flagged"],
        "flags": flags,
        "anomalies": anomalies,
        "anomaly_counts": list(anomaly_counts.values()),
        "checked_index": [
            {
                "case": case,
                "household": case.house.household,
                "passed": case.completion_passed_at is not None,
            }
            for case in checked.select_related("house__household__village")
        ],
    }


def _case_section(*, case: RenovationCase, visit, photos: list, region_path: str) -> dict:
    """One checked case as its section prints it: `visit` is the completion visit it was
    judged on, `photos` that visit's after-works photos (photo_view), in angle order."""
    household = case.house.household
    appraisal = getattr(visit, "appraisal", None) if visit is not None else None
    return {
        "case": case,
        "household": household,
        "region_path": region_path,
        "passed": case.completion_passed_at is not None,
        "planned_area": number(case.planned_floor_area),
        "floor_area": number(case.house.floor_area) if case.house.floor_area is not None else "",
        "subsidy": number(case.subsidy_amount),
        "paid": number(case.paid_total),
        "visit": visit,
        "visit_inspector": person(visit.inspector) if visit is not None else "",
        "works_inspector": person(case.works_inspector),
        "grade": grade_view(appraisal.grade if appraisal is not None else None),
        # Rows of THUMBS_PER_ROW cells, the last one padded, so every thumbnail is as wide.
        "photo_rows": [
            (photos[i : i + THUMBS_PER_ROW] + [None] * THUMBS_PER_ROW)[:THUMBS_PER_ROW]
            for i in range(0, len(photos), THUMBS_PER_ROW)
        ],
        "checks": [
            {
                "event": event,
                "by": person(event.actor),
                "passed": event.data.get("step") == "pass_completion",
            }
            for event in case.checks
        ],
    }


def _case_part(*, user, ids: list[int], stamp, title: str, header: str, target: Path) -> None:
    """Render the sections of these cases (a page or more each) to `target`.

    A fixed number of queries for the part (cases, their check events, their after-works
    photos, the region paths of their villages), plus one for each case whose check failed
    and was never passed (its completion visit is looked up, as the case page does)."""
    checks = CaseEvent.objects.filter(data__step__in=CHECK_STEPS).select_related("actor")
    cases = (
        RenovationCase.objects.filter(pk__in=ids)
        .select_related(
            "house__household__village",
            "house__household__key_group",
            "entry_appraisal__inspection",
            "works_inspector",
            "completion_inspection__appraisal",
            "completion_inspection__inspector",
        )
        .prefetch_related(Prefetch("events", queryset=checks.order_by("id"), to_attr="checks"))
    )
    by_id = {case.pk: case for case in cases}
    visits = {
        pk: case.completion_inspection or completion_visit(case) for pk, case in by_id.items()
    }
    # The visits' after-works photos only: a section is a page, not the house's album.
    photos: dict[int, list] = {}
    after = photo_list(user=user).filter(
        inspection__in=[v.pk for v in visits.values() if v is not None], stage=PhotoStage.AFTER
    )
    for photo in sorted(after, key=lambda p: (ANGLE_ORDER.index(p.angle), p.created_at, p.pk)):
        photos.setdefault(photo.inspection_id, []).append(photo_view(photo))
    paths = {}
    for case in by_id.values():
        village = case.house.household.village
        if village.pk not in paths:
            path = [*region_breadcrumbs(user=user, region=village), village]
            paths[village.pk] = " › ".join(r.name for r in path)
    sections = []
    for pk in ids:
        if pk not in by_id:  # gone since the list was read
            continue
        case, visit = by_id[pk], visits[pk]
        sections.append(
            _case_section(
                case=case,
                visit=visit,
                photos=photos.get(visit.pk, []) if visit is not None else [],
                region_path=paths[case.house.household.village_id],
            )
        )
    context = {
        **document_context(stamp=stamp, title=title, header=header, page_numbers=False),
        "sections": sections,
    }
    render_pdf(CASES_TEMPLATE, context, target)


def render_report(*, job, region: Region, year: int, target: Path, progress: bool) -> None:
    """Write the acceptance report of `region` and `year`, as job.user may see it.

    progress: count the case sections on the job (format "pdf"; the ZIP counts households).
    """
    user, stamp = job.user, job.stamp
    cases = cases_in_scope(user=user, region=region, year=year)
    ids = list(checked_cases(cases).values_list("pk", flat=True))
    if progress:
        job.set_total(len(ids), "cases")
    path = [*region_breadcrumbs(user=user, region=region), region]
    place = " › ".join(r.name for r in path)
    heading = _("Completion acceptance report")
    title = f"{heading} · {place} · {year} · {stamp.number}"
    header = _("%(report)s · %(region)s · funding year %(year)s") % {
        "report": heading,
        "region": place,
        "year": year,
    }
    parts = [job.workdir / "report-0000.pdf"]
    render_pdf(
        SUMMARY_TEMPLATE,
        {
            **document_context(stamp=stamp, title=title, header=header, page_numbers=False),
            **summary_context(user=user, region=region, year=year, cases=cases),
            "heading": heading,
            "region": region,
            "region_path": place,
            "year": year,
            "issued_by": person(user),
        },
        parts[0],
    )
    for start in range(0, len(ids), CASES_PER_PART):
        chunk = ids[start : start + CASES_PER_PART]
        part = job.workdir / f"report-{len(parts):04d}.pdf"
        _case_part(user=user, ids=chunk, stamp=stamp, title=title, header=header, target=part)
        parts.append(part)
        if progress:
            job.advance(len(chunk))
    join_with_page_numbers(parts, target, stamp=stamp, title=title, workdir=job.workdir)
    for part in parts:
        part.unlink(missing_ok=True)


def _folder(code: str, name: str) -> str:
    """A village's folder in the ZIP: its code and name, safe as a path part."""
    return get_valid_filename(f"{code}-{name}") or code


def render_zip(*, job, region: Region, year: int) -> None:
    """The report and one household file per household with a case in scope, entry by
    entry: each household file is rendered, stored in the ZIP and deleted before the next."""
    user = job.user
    cases = cases_in_scope(user=user, region=region, year=year)
    households = list(
        Household.objects.filter(pk__in=cases.values("house__household"))
        .order_by("village__code", "archive_no")
        .values_list("pk", "archive_no", "village__code", "village__name")
    )
    job.set_total(len(households), "households")
    report = job.workdir / "report.pdf"
    render_report(job=job, region=region, year=year, target=report, progress=False)
    with zipfile.ZipFile(job.path, "w", compression=zipfile.ZIP_STORED) as archive:
        # PDFs are compressed inside already: stored, not deflated again.
        archive.write(report, f"{region.code}-{year}-acceptance-report.pdf")
        report.unlink()
        for pk, archive_no, code, name in households:
            household = household_get(user=user, pk=pk)
            entry = job.workdir / "household.pdf"
            render_household_file(user=user, household=household, stamp=job.stamp, target=entry)
            archive.write(entry, f"{_folder(code, name)}/{get_valid_filename(archive_no)}.pdf")
            entry.unlink()
            job.advance()


def build(job) -> None:
    """The "acceptance" export (reports.kinds): the report as a PDF, or a ZIP with it and
    the household files."""
    region, year = _scope(job)
    if job.export.format == "zip":
        render_zip(job=job, region=region, year=year)
    else:
        render_report(job=job, region=region, year=year, target=job.path, progress=True)
