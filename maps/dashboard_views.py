"""The progress dashboard of one region: households by grade and by case stage, completion and
overdue payments, subsidy money (allocated, paid, overdue), for the region and each of its
child regions, as cards, tables, two server-drawn charts and a CSV download.

Thin: every figure comes from maps.selectors.region_figures (two GROUP BYs) and
region_money (one), whatever the number of child regions or households; this module only
arranges and formats them.
"""

import csv
from dataclasses import dataclass, field

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import content_disposition_header, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from housing.models import Region
from housing.selectors import region_breadcrumbs, region_get
from maps import charts
from maps.filters import MapFilterForm
from maps.legend import GRADES, NO_CASE, STAGE_OF_STATE, STAGES
from maps.numbers import count, percent
from maps.selectors import RegionFigures, region_figures, region_money
from renovation.models import CaseState
from renovation.money import Money

FORMATS = ("html", "csv")


class DashboardFilterForm(MapFilterForm):
    """The map's filters without the map's colouring choice, which means nothing here."""

    colour = None


@dataclass(frozen=True)
class Row:
    """One line of the table (and of the CSV): a region's figures in column order."""

    region: Region | None
    figures: RegionFigures
    money: Money = field(default_factory=Money)

    @property
    def grades(self) -> list[int]:
        return [self.figures.grades.get(c.key, 0) for c in GRADES]

    @property
    def stages(self) -> list[int]:
        return [self.figures.stages.get(c.key, 0) for c in STAGES]

    @property
    def cells(self) -> list[str]:
        """The table's number cells, formatted: households, grades, stages, completion, overdue."""
        f = self.figures
        numbers = [f.households, *self.grades, *self.stages]
        return [*map(count, numbers), percent(f.completion), count(f.overdue)]


def _summary(total: RegionFigures) -> list[dict]:
    """The cards above the table: (label, value, note)."""
    return [
        {"key": "households", "label": _("Households"), "value": count(total.households)},
        {
            "key": "appraised",
            "label": _("Appraised"),
            "value": count(total.appraised),
            "note": _("%(share)s of households")
            % {"share": percent(total.appraised / total.households if total.households else None)},
        },
        {
            "key": "dilapidated",
            "label": _("C/D (dilapidated)"),
            "value": count(total.dilapidated),
            "note": _("%(share)s of appraised houses")
            % {"share": percent(total.dilapidated_share)},
        },
        {
            "key": "cases",
            "label": _("Renovation cases"),
            "value": count(total.cases),
            "note": _("open or done; rejected and withdrawn left out"),
        },
        {"key": "completed", "label": _("Completed"), "value": count(total.completed)},
        {
            "key": "completion",
            "label": _("Completion"),
            "value": percent(total.completion),
            "note": _("completed / cases"),
        },
        {
            "key": "overdue",
            "label": _("Overdue payments"),
            "value": count(total.overdue),
            "note": _("completion passed, not paid in full in time"),
            "alert": total.overdue > 0,
        },
    ]


# The stage chart shows how far along the cases are: households without a case, most of a
# county, would fill nearly every bar and hide the stages. The table keeps their column.
CASE_STAGES = [c for c in STAGES if c.key != NO_CASE]


def _charts(region: Region, total: RegionFigures, children: list[RegionFigures]) -> list[dict]:
    """Two stacked-bar charts (grades of all households, stages of the households with a
    case): the whole region first, then each child."""
    if children:
        whole = _("All of %(region)s") % {"region": region.name}
        rows = [(whole, total, True), *((c.region.name, c, False) for c in children)]
    else:  # a village: its own bar only
        rows = [(region.name, total, False)]
    grade_note = _("Each bar is all of one region's households; the table has the same figures.")
    stage_note = _(
        "Each bar is one region's households that have a case; households without a case "
        "are left out (the table counts them)."
    )
    out = []
    for key, title, categories, note, empty in (
        ("grades", _("Households by safety grade"), GRADES, grade_note, None),
        (
            "stages",
            _("Households by stage of their latest case"),
            CASE_STAGES,
            stage_note,
            _("%(region)s: no cases"),
        ),
    ):
        bars = []
        for name, figures, strong in rows:
            values = figures.grades if key == "grades" else figures.stages
            bars.append(
                charts.Bar(
                    label=name, values=[values.get(c.key, 0) for c in categories], strong=strong
                )
            )
        out.append(
            {
                "key": key,
                "title": title,
                "note": note,
                "svg": charts.stacked_bars(
                    bars, categories, label=title, description=note, empty_text=empty
                ),
                "legend": charts.legend(categories),
            }
        )
    return out


def _states(total: RegionFigures) -> list[dict]:
    stage_label = {c.key: c.label for c in STAGES}
    return [
        {
            "state": state,
            "label": label,
            "stage": stage_label[STAGE_OF_STATE[state]],
            "n": count(total.states.get(state, 0)),
        }
        for state, label in CaseState.choices
    ]


def _csv(region: Region, total: Row, children: list[Row]) -> HttpResponse:
    """The tables as CSV: raw numbers, completion in percent with one decimal (blank where
    undefined), money in yuan with two decimals, UTF-8 with a byte-order mark so that Excel
    reads the Chinese names."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=f"anju-progress-{region.code}.csv"
    )
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(
        [
            _("Region code"),
            _("Region"),
            _("Households"),
            *(str(c.label) for c in GRADES),
            *(str(c.label) for c in STAGES),
            _("Completion (%)"),
            _("Overdue payments"),
            _("Subsidy allocated (yuan)"),
            _("Subsidy paid (yuan)"),
            _("Overdue unpaid (yuan)"),
        ]
    )

    def line(code: str, name: str, row: Row) -> list:
        figures = row.figures
        completion = figures.completion
        return [
            code,
            _spreadsheet_safe(name),
            figures.households,
            *row.grades,
            *row.stages,
            "" if completion is None else f"{completion * 100:.1f}",
            figures.overdue,
            f"{row.money.allocated:.2f}",
            f"{row.money.paid:.2f}",
            f"{row.money.overdue:.2f}",
        ]

    for child in children:
        writer.writerow(line(child.region.code, child.region.name, child))
    if children:
        writer.writerow(line(region.code, _("Total"), total))
    else:
        writer.writerow(line(region.code, region.name, total))
    return response


def _spreadsheet_safe(text: str) -> str:
    """A name a spreadsheet will not run as a formula (=, +, -, @ at the start)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


@require_GET
@login_required
def dashboard_view(request, code: str):
    """GET /maps/<code>/progress/?key_group=&grade=&state=&year=[&format=csv]"""
    region = region_get(user=request.user, code=code)
    output = request.GET.get("format") or "html"
    form = DashboardFilterForm(request.GET)
    if output not in FORMATS:
        message = _("Format: “%(format)s” is not one of: %(choices)s.") % {
            "format": output,
            "choices": ", ".join(FORMATS),
        }
        return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
    if not form.is_valid():
        if output == "csv":
            return HttpResponseBadRequest(
                form.error_text(), content_type="text/plain; charset=utf-8"
            )
        context = {"region": region, "form": form, "valid": False}
        context["breadcrumbs"] = region_breadcrumbs(user=request.user, region=region)
        return render(request, "maps/dashboard.html", context, status=400)

    filters = form.filters()
    total, children = region_figures(user=request.user, region=region, filters=filters)
    money_total, money_children = region_money(
        user=request.user, region=region, children=children, filters=filters
    )
    rows = [Row(c.region, c, m) for c, m in zip(children, money_children, strict=True)]
    total_row = Row(region, total, money_total)
    if output == "csv":
        return _csv(region, total_row, rows)
    # Kept by every link to another dashboard or to the map: drilling down keeps the filters.
    query = urlencode(filters.query_items())
    context_query = f"?{query}" if query else ""
    context = {
        "region": region,
        "form": form,
        "valid": True,
        "filtered": bool(query),
        "query": context_query,
        "breadcrumbs": region_breadcrumbs(user=request.user, region=region),
        "summary": _summary(total),
        "grade_columns": GRADES,
        "stage_columns": STAGES,
        "rows": rows,
        "total": total_row,
        "money_rows": [
            {
                "region": row.region,
                "url": reverse("maps:dashboard", args=[row.region.code]) + context_query,
                "money": row.money,
            }
            for row in rows
        ],
        "money_total": total_row.money,
        "charts": _charts(region, total, children),
        "states": _states(total),
        "csv_query": f"?{query}&format=csv" if query else "?format=csv",
    }
    return render(request, "maps/dashboard.html", context)
