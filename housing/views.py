"""The registry's own page: the household list. Thin: parse, authorize, call a selector.

The pages that bring every domain together (the household file, the region pages) live in
portal/, above the apps whose reads they compose.
"""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from housing.forms import HouseholdFilterForm
from housing.selectors import household_list

PAGE_SIZE = 50


@require_GET
@login_required
def household_list_view(request):
    form = HouseholdFilterForm(request.GET or None, user=request.user)
    page = None
    if form.is_bound and not form.is_valid():
        households = None
    else:
        filters = form.filters() if form.is_bound else None
        households = household_list(user=request.user, filters=filters)
        page = Paginator(households, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "housing/household_list.html",
        {"form": form, "page": page, "filtered": form.is_bound},
    )
