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

from accounts.scoping import code_visible
from housing.forms import MAX_REGION_CHOICES, SELECT_LEVELS
from housing.models import Region, RegionLevel
from housing.selectors import region_list
from inspections.cases.anomalies import AnomalyKind, anomaly_worklist
from inspections.permissions import can_view_worklist

PAGE_SIZE = 50
INDENT = {RegionLevel.COUNTY: 0, RegionLevel.TOWNSHIP: 1, RegionLevel.VILLAGE: 2}


class WorklistFilterForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind"), required=False, choices=[("", _("Every kind")), *AnomalyKind.choices]
    )
    region = forms.CharField(label=_("Region"), required=False, max_length=12)
    year = forms.IntegerField(
        label=_("Funding year"),
        required=False,
        min_value=2000,
        max_value=2100,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "placeholder": _("Any year")}),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        regions = list(
            region_list(user=user)
            .filter(level__in=SELECT_LEVELS)
            .only("code", "name", "level")[: MAX_REGION_CHOICES + 1]
        )
        # A select while it stays usable; over a whole province, a box for a region code.
        if len(regions) <= MAX_REGION_CHOICES:
            self.fields["region"].widget = forms.Select(
                choices=[
                    ("", _("All my regions")),
                    *(
                        (r.code, "\u2003" * INDENT.get(r.level, 0) + f"{r.name} ({r.code})")
                        for r in regions
                    ),
                ]
            )
        else:
            self.fields["region"].widget = forms.TextInput(
                attrs={"inputmode": "numeric", "placeholder": _("Region code")}
            )

    def clean_region(self):
        code = self.cleaned_data["region"].strip()
        if not code:
            return ""
        if not code.isdigit():
            raise forms.ValidationError(
                _("A region code has digits only; “%(code)s” does not."), params={"code": code}
            )
        if not code_visible(self.user, code) or not Region.objects.filter(code=code).exists():
            raise forms.ValidationError(
                _("There is no region %(code)s among your regions."), params={"code": code}
            )
        return code


@require_GET
@login_required
def worklist_view(request):
    if not can_view_worklist(request.user):
        raise PermissionDenied
    form = WorklistFilterForm(request.GET or None, user=request.user)
    page = worklist = None
    if not form.is_bound or form.is_valid():
        data = form.cleaned_data if form.is_bound else {}
        worklist = anomaly_worklist(
            user=request.user,
            kinds=[data["kind"]] if data.get("kind") else None,
            region=data.get("region") or None,
            year=data.get("year"),
        )
        page = Paginator(worklist.anomalies, PAGE_SIZE).get_page(request.GET.get("page"))
    kinds = [
        {"code": code, "label": label, "count": worklist.counts[code] if worklist else None}
        for code, label in AnomalyKind.choices
    ]
    return render(
        request,
        "inspections/worklist.html",
        {
            "form": form,
            "page": page,
            "kinds": kinds,
            "selected_kind": form.cleaned_data.get("kind", "") if form.is_bound else "",
            "total": sum(worklist.counts.values()) if worklist else 0,
        },
    )
