"""The auditor's worklist page: anomalies with their reasons, filtered, counted, paginated.

Thin: parse the filters, check the role, call the selector, render.
"""

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from audit.anomalies import AnomalyKind, anomaly_worklist
from audit.permissions import can_view_worklist
from housing.forms import RegionFilterMixin
from renovation.models import FUNDING_YEAR_MAX, FUNDING_YEAR_MIN

PAGE_SIZE = 50


class WorklistFilterForm(RegionFilterMixin, forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind"), required=False, choices=[("", _("Every kind")), *AnomalyKind.choices]
    )
    region = forms.CharField(label=_("Region"), required=False, max_length=12)
    year = forms.IntegerField(
        label=_("Funding year"),
        required=False,
        min_value=FUNDING_YEAR_MIN,
        max_value=FUNDING_YEAR_MAX,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "placeholder": _("Any year")}),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.setup_region_field(user)

    def anomaly_filters(self) -> dict:
        """The selector's arguments from valid data (the page and its ledger export)."""
        data = self.cleaned_data
        return {
            "kinds": [data["kind"]] if data.get("kind") else None,
            "region": data.get("region") or None,
            "year": data.get("year"),
        }


@require_GET
@login_required
def worklist_view(request):
    if not can_view_worklist(request.user):
        raise PermissionDenied
    form = WorklistFilterForm(request.GET or None, user=request.user)
    page = worklist = None
    if not form.is_bound or form.is_valid():
        filters = form.anomaly_filters() if form.is_bound else {}
        worklist = anomaly_worklist(user=request.user, **filters)
        page = Paginator(worklist.anomalies, PAGE_SIZE).get_page(request.GET.get("page"))
    kinds = [
        {"code": code, "label": label, "count": worklist.counts[code] if worklist else None}
        for code, label in AnomalyKind.choices
    ]
    return render(
        request,
        "audit/worklist.html",
        {
            "form": form,
            "page": page,
            "kinds": kinds,
            "selected_kind": form.cleaned_data.get("kind", "") if form.is_bound else "",
            "total": sum(worklist.counts.values()) if worklist else 0,
        },
    )
