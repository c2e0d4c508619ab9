"""The registry's own page: the household list. Thin: parse, authorize, call a selector.

The pages that bring every domain together (the household file, the region pages) live in
portal/, above the apps whose reads they compose.
"""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from housing.forms import HouseholdFilterForm
from housing.selectors import DEFAULT_SORT, HOUSEHOLD_SORTS, household_page

PAGE_SIZE = 50


@require_GET
@login_required
def household_list_view(request):
    form = HouseholdFilterForm(request.GET or None, user=request.user)
    page = None
    sort = request.GET.get("sort", DEFAULT_SORT)
    sort = sort if sort in HOUSEHOLD_SORTS else DEFAULT_SORT
    if not (form.is_bound and not form.is_valid()):
        page = household_page(
            user=request.user,
            filters=form.filters() if form.is_bound else None,
            sort=sort,
            size=PAGE_SIZE,
            after=request.GET.get("after", ""),
            before=request.GET.get("before", ""),
            page=request.GET.get("page"),
        )
    return render(
        request,
        "housing/household_list.html",
        {
            "form": form,
            "page": page,
            "sort": sort,
            # "filtered": something to clear (paging and sorting alone are not filters).
            "filtered": any(request.GET.get(name) for name in form.fields if name in request.GET),
        },
    )
