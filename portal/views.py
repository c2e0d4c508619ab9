"""The pages that bring every domain together, thin over each domain's selectors.

The household file (一户一档 on screen): the household, its houses and members (housing),
its inspections and photo evidence (inspections), its renovation cases (renovation) and its
map (maps). The region pages: a region's children by grade and their subsidy money, on a
map. They sit above the apps they read, so no domain app imports another one above it.
"""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import can_reveal_id_numbers
from housing.selectors import (
    household_get,
    region_breadcrumbs,
    region_children_grade_counts,
    region_get,
    region_roots,
)
from housing.services import id_numbers_reveal
from inspections.models import PhotoStage
from inspections.selectors import household_evidence
from maps.builders import household_location_map, household_photo_points, region_map
from renovation.money import region_money
from renovation.selectors import household_cases

GRADE_COLUMNS = ["A", "B", "C", "D", ""]  # "" = not yet appraised


def _grid_stages(evidence) -> list[dict]:
    """The photo grid's columns: the stages that have a photo or a missing slot, in order."""
    used = {cell.stage for row in evidence.photo_grid for cell in row.cells if cell.photos}
    used |= {slot.stage for entry in evidence.missing_slots for slot in entry.missing}
    return [
        {"code": stage, "label": PhotoStage(stage).label}
        for stage in evidence.stages
        if stage in used
    ]


def _household_detail_context(request, household, **extra) -> dict:
    houses = list(household.houses.all())  # current first (the selector orders them)
    current = household.current_house
    evidence = household_evidence(user=request.user, household=household)
    grid_stages = _grid_stages(evidence)
    photo_points = household_photo_points(
        user=request.user,
        household=household,
        known_photos=[p for i in evidence.inspections for p in i.photos.all()],
    )
    return {
        "household": household,
        "breadcrumbs": region_breadcrumbs(user=request.user, region=household.village),
        "current_house": current,
        "replaced_houses": [h for h in houses if not h.is_current],
        "members": list(household.members.all()),
        "map": household_location_map(household, photo_points),
        "photo_points": photo_points,
        "can_reveal": can_reveal_id_numbers(request.user, household),
        "evidence": evidence,
        "grid_stages": grid_stages,
        "grid_stage_codes": [stage["code"] for stage in grid_stages],
        "cases": household_cases(user=request.user, household=household),
        **extra,
    }


@require_GET
@login_required
def household_detail_view(request, pk: int):
    household = household_get(user=request.user, pk=pk)
    return render(
        request, "portal/household_detail.html", _household_detail_context(request, household)
    )


@require_POST
@login_required
def household_reveal_ids_view(request, pk: int):
    """The household file with its ID numbers unmasked, for this response only (and logged)."""
    household = household_get(user=request.user, pk=pk)
    if not can_reveal_id_numbers(request.user, household):
        raise PermissionDenied
    numbers = id_numbers_reveal(user=request.user, household=household, via="page")
    context = _household_detail_context(
        request,
        household,
        revealed_id_numbers={n for n in numbers.values() if n},
        # Changing language re-requests the page: the plain file, not another reveal.
        language_next=reverse("portal:household_detail", args=[household.pk]),
    )
    response = render(request, "portal/household_detail.html", context)
    # Unmasked ID numbers must not stay in any cache, the browser's included.
    add_never_cache_headers(response)
    return response


@require_GET
@login_required
def region_index_view(request):
    return render(request, "portal/region_index.html", {"regions": region_roots(user=request.user)})


@require_GET
@login_required
def region_detail_view(request, code: str):
    region = region_get(user=request.user, code=code)
    counts = region_children_grade_counts(user=request.user, region=region)
    # Templates cannot look up the "" (not appraised) key: give them lists in column order.
    rows = [
        {"region": c["region"], "counts": [c[g] for g in GRADE_COLUMNS], "total": c["total"]}
        for c in counts
    ]
    children = [row["region"] for row in rows]
    money_total, money_children = region_money(user=request.user, region=region, children=children)
    totals = None
    if rows:
        totals = {
            "counts": [sum(c[g] for c in counts) for g in GRADE_COLUMNS],
            "total": sum(c["total"] for c in counts),
        }
    return render(
        request,
        "portal/region_detail.html",
        {
            "region": region,
            "breadcrumbs": region_breadcrumbs(user=request.user, region=region),
            "rows": rows,
            "totals": totals,
            "grade_columns": GRADE_COLUMNS,
            "map": region_map(region, children),
            "money_rows": [
                {
                    "region": child,
                    "url": reverse("portal:region_detail", args=[child.code]),
                    "money": money,
                }
                for child, money in zip(children, money_children, strict=True)
            ],
            "money_total": money_total,
        },
    )
