"""The household file as a PDF (一户一档): everything the household's page shows, on paper.

The screen version is portal's household page; this one reads the same selectors (housing,
inspections, renovation, maps) for the export's user, so the PDF holds exactly what that
user may see, and it adds what a paper archive needs: the photos at print size with their
capture time, distance to the house and evidence flags in words, a map drawn without
tiles, the renovation case's steps with who took them and when, the completion check's
signature boxes, and the stamp on every page (reports.documents.render).

ID numbers are masked (housing.idnumbers.mask) unless the user may see them in full
(administrators), and beside a masked number a birth date shows its year only: a PDF leaves
the system, so it shows no more than the user's screen does without a logged reveal. Phone
numbers are masked the same way for the same reason.

`render_household_file` makes one household's PDF: the builder below calls it for the
household export, and the acceptance report's ZIP calls it once per household.
"""

from pathlib import Path

from django.core.files.storage import default_storage
from django.utils.translation import gettext as _

from accounts.permissions import can_see_full_id_numbers
from housing import idnumbers
from housing.models import Household, SafetyGrade
from housing.selectors import region_breadcrumbs
from inspections.evidence import flag_detail
from inspections.models import (
    MEMBERS,
    MemberRating,
    Photo,
    PhotoFlag,
    PhotoStage,
    PhotoStatus,
    SiteHazard,
)
from inspections.selectors import household_evidence
from maps.builders import distance_text, household_photo_points
from renovation.models import CaseEventKind, RenovationCase
from renovation.rules import is_overdue, number, payment_due_date
from renovation.selectors import case_payments_attach, household_cases
from reports.documents import mapsvg
from reports.documents.render import document_context, render_pdf, storage_url
from reports.jobs import Stamp
from reports.scope import household_of

TEMPLATE = "reports/pdf/household_file.html"
# Appraisals are printed as columns of one table (the members down the side): this many
# side by side, then another table.
APPRAISALS_PER_TABLE = 4


def person(user) -> str:
    """How a user is named on paper: their full name, else their user name."""
    if user is None:
        return ""
    return user.get_full_name() or user.username


def phone_mask(value: str) -> str:
    """The first 3 and last 4 digits of a phone number: 138****5678."""
    value = (value or "").strip()
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def grade_view(grade: str | None) -> dict:
    """A grade as the templates print it: code, full label and the class that colours it."""
    if grade is None:
        return {"code": "", "label": "", "css": ""}
    label = choice_label(SafetyGrade, grade or "")
    return {"code": grade, "label": label, "css": f"grade grade--{grade}" if grade else "grade"}


def choice_label(choices, value) -> str:
    """The label of a stored code, or the code itself when the choices no longer have it
    (JSON fields hold codes that no constraint checks)."""
    try:
        return str(choices(value).label)
    except ValueError:
        return str(value)


def flag_words(flags) -> list[dict]:
    """A photo's evidence flags in words: {"code", "label", "detail"}, as raised."""
    result = []
    for flag in flags or []:
        if not isinstance(flag, dict):
            continue
        code = flag.get("code", "")
        result.append(
            {"code": code, "label": choice_label(PhotoFlag, code), "detail": flag_detail(flag)}
        )
    return result


def photo_view(photo: Photo, *, number: int | None = None, point=None) -> dict:
    """One photo as a PDF prints it: its display copy (from our storage) and its caption."""
    ready = photo.status == PhotoStatus.READY and bool(photo.display)
    status = photo.get_status_display()
    if ready and not default_storage.exists(photo.display.name):
        # Said on paper, not left as a blank box: a missing file is itself a finding.
        ready = False
        status = _("The photo's file is missing from storage.")
    return {
        "number": number,
        "src": storage_url(photo.display.name) if ready else "",
        "status": status,
        "stage": photo.get_stage_display(),
        "angle": photo.get_angle_display(),
        "taken_at": photo.taken_at,
        "received_at": photo.created_at,
        "has_gps": photo.gps is not None,
        "distance": distance_text(point.distance_m)
        if point and point.distance_m is not None
        else "",
        "far": bool(point and point.far),
        "flags": flag_words(photo.flags),
    }


def _photo_grid(evidence, points_by_photo: dict) -> tuple[list[dict], list[dict], list]:
    """(stage columns, rows, map points): the current house's photos by angle × stage, the
    stages side by side, each photo numbered in reading order (the map uses the numbers)."""
    used = {cell.stage for row in evidence.photo_grid for cell in row.cells if cell.photos}
    stages = [s for s in evidence.stages if s in used]
    rows, map_points, counter = [], [], 0
    for row in evidence.photo_grid:
        cells = []
        for cell in row.cells:
            if cell.stage not in used:
                continue
            photos = []
            # Oldest first on paper: the order they were taken in.
            for photo in reversed(cell.photos):
                counter += 1
                point = points_by_photo.get(photo.pk)
                photos.append(photo_view(photo, number=counter, point=point))
                if point is not None:
                    map_points.append(
                        mapsvg.MapPoint(
                            number=counter,
                            lon=point.lon,
                            lat=point.lat,
                            far=point.far,
                            distance_m=point.distance_m,
                        )
                    )
            cells.append({"stage": cell.label, "photos": photos})
        if any(cell["photos"] for cell in cells):
            rows.append({"angle": row.label, "cells": cells})
    return [{"code": s, "label": PhotoStage(s).label} for s in stages], rows, map_points


def _appraisal_tables(inspections) -> list[dict]:
    """The appraisals, oldest first, as tables of up to APPRAISALS_PER_TABLE columns."""
    visits = sorted(
        (i for i in inspections if getattr(i, "appraisal", None) is not None),
        key=lambda i: (i.started_at, i.pk),
    )
    columns = []
    for visit in visits:
        appraisal = visit.appraisal
        hazards = [choice_label(SiteHazard, h) for h in appraisal.site_hazards or [] if h]
        columns.append(
            {
                "visit": visit,
                "kind": visit.get_kind_display(),
                "inspector": person(visit.inspector),
                "hazards": hazards,
                "ratings": {
                    name: {
                        "label": choice_label(MemberRating, value) if value else "",
                        "css": f"rating--{value}",
                    }
                    for name, value in appraisal.ratings().items()
                },
                "derived": grade_view(appraisal.derived_grade),
                "grade": grade_view(appraisal.grade),
                "overridden": appraisal.grade != appraisal.derived_grade,
                "override_reason": appraisal.override_reason,
                "rule": appraisal.rule_version,
            }
        )
    tables = []
    for start in range(0, len(columns), APPRAISALS_PER_TABLE):
        chunk = columns[start : start + APPRAISALS_PER_TABLE]
        tables.append(
            {
                "columns": chunk,
                "members": [
                    {"label": label, "cells": [c["ratings"][name] for c in chunk]}
                    for name, label in MEMBERS
                ],
            }
        )
    return tables


def case_view(case: RenovationCase) -> dict:
    """A renovation case as the PDF prints it: its figures, payments and steps."""
    case_payments_attach(case)
    completion = case.completion_inspection
    appraisal = getattr(completion, "appraisal", None) if completion is not None else None
    due = payment_due_date(case)
    return {
        "case": case,
        "planned_area": number(case.planned_floor_area),
        "subsidy": number(case.subsidy_amount),
        "paid": number(case.paid_total),
        "outstanding": number(max(case.subsidy_amount - case.paid_total, 0)),
        "standard": number(case.subsidy_standard.amount) if case.subsidy_standard else "",
        "entry_grade": grade_view(case.entry_grade),
        "works_inspector": person(case.works_inspector),
        "completion": completion,
        "completion_inspector": person(completion.inspector) if completion else "",
        "completion_grade": grade_view(appraisal.grade if appraisal else None),
        "due": due,
        "overdue": is_overdue(case),
        "payments": [
            {
                "paid_on": p.paid_on,
                "amount": number(p.amount),
                "reference": p.reference,
                "by": person(p.recorded_by),
            }
            for p in case.payments.all()
        ],
        "timeline": [
            {
                "event": event,
                "by": person(event.actor),
                "amount": number(event.data["amount"])
                if event.kind == CaseEventKind.PAYMENT and event.data.get("amount")
                else "",
            }
            for event in getattr(case, "timeline", None) or case.events.select_related("actor")
        ],
    }


def household_file_context(*, user, household: Household, stamp: Stamp) -> dict:
    """Everything the household file's template prints, read for `user`."""
    full_ids = can_see_full_id_numbers(user)
    shown_id = (lambda value: value or "") if full_ids else idnumbers.mask
    shown_phone = (lambda value: value or "") if full_ids else phone_mask

    evidence = household_evidence(user=user, household=household)
    known = [p for visit in evidence.inspections for p in visit.photos.all()]
    points = household_photo_points(user=user, household=household, known_photos=known)
    stages, photo_rows, map_points = _photo_grid(evidence, {p.photo.pk: p for p in points})
    houses = list(household.houses.all())
    village = household.village
    path = [*region_breadcrumbs(user=user, region=village), village]
    cases = [
        case_view(case)
        for case in sorted(
            household_cases(user=user, household=household), key=lambda c: (c.created_at, c.pk)
        )
    ]
    title = _("One household, one file")
    return {
        **document_context(
            stamp=stamp,
            title=f"{title} · {household.archive_no} · {stamp.number}",
            header=f"{title} · {household.archive_no} · {household.head_name}",
        ),
        "heading": title,
        "household": household,
        "head_id_number": shown_id(household.head_id_number),
        "phone": shown_phone(household.phone),
        "ids_masked": not full_ids,
        "region_path": " › ".join(r.name for r in path),
        "current_house": household.current_house,
        "replaced_houses": [h for h in houses if not h.is_current],
        "current_grade": grade_view(
            household.current_house.safety_grade if household.current_house else None
        ),
        "members": [
            {
                "member": m,
                "id_number": shown_id(m.id_number),
                # Beside a masked number the year only (housing.idnumbers.shown_birth).
                "birth": idnumbers.shown_birth(m.birth_date, full=full_ids),
                "phone": shown_phone(m.phone),
            }
            for m in household.members.all()
        ],
        "map": mapsvg.household_map(
            house=household.location,
            boundary=village.boundary,
            points=map_points,
            distance_text=distance_text,
        ),
        "map_points": map_points,
        "has_far_points": any(p.far for p in map_points),
        "appraisal_tables": _appraisal_tables(evidence.inspections),
        "visits": sorted(evidence.inspections, key=lambda i: (i.started_at, i.pk)),
        "missing_slots": evidence.missing_slots,
        "flag_count": evidence.flag_count,
        "flagged_photos": evidence.flagged_photos,
        "photo_stages": stages,
        "photo_rows": photo_rows,
        "cases": cases,
    }


def render_household_file(*, user, household: Household, stamp: Stamp, target: Path) -> None:
    """Write one household's file, as `user` may see it, to `target` (a PDF)."""
    render_pdf(
        TEMPLATE, household_file_context(user=user, household=household, stamp=stamp), target
    )


def build(job) -> None:
    """The "household_file" export: one household's file (reports.kinds)."""
    household = household_of(job)
    job.set_total(1, "households")
    render_household_file(user=job.user, household=household, stamp=job.stamp, target=job.path)
    job.advance()
