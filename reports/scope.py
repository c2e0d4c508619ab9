"""The parameters of a running export, read back and scoped for its user.

Builders never trust Export.params: the region and household are checked again against
the user's regions as they are now, and a list page's filters are re-read with that page's
own form, so an export holds exactly what its user may see.
"""

from importlib import import_module

from django.http import Http404, QueryDict
from django.utils.translation import gettext as _

from accounts.scoping import code_visible
from housing.bounds import parse_id
from housing.models import Household, Region
from housing.selectors import household_get
from reports.errors import ExportError, ExportForbidden
from reports.kinds import KINDS


def region_of(job) -> Region | None:
    """The export's region (None: all the user's regions), or ExportForbidden."""
    code = str(job.params.get("region") or "").strip()
    if not code:
        return None
    region = Region.objects.filter(code=code).first()
    if region is None or not code_visible(job.user, code):
        raise ExportForbidden(_("There is no region %(code)s among your regions.") % {"code": code})
    return region


def household_of(job) -> Household:
    """The export's household, in the user's regions, or ExportForbidden."""
    # The form bounded it; a job's params are re-read all the same (an id past 2^63-1
    # would overflow the database's integers).
    pk = parse_id(job.params.get("household") or "")
    if pk is None:
        raise ExportError(_("No household was named for this export."))
    try:
        return household_get(user=job.user, pk=pk)
    except Http404:
        raise ExportForbidden(
            _("There is no household %(id)s among your regions.") % {"id": pk}
        ) from None


def funding_year_of(job) -> int | None:
    value = job.params.get("funding_year")
    return int(value) if value not in (None, "") else None


def crs_of(job) -> int:
    return int(job.params.get("crs") or 4326)


def list_filters_form(kind: str, query: QueryDict, user):
    """The list page's own filter form (households, cases, worklist), bound for this user."""
    module, name = KINDS[kind].filters_form.rsplit(".", 1)
    return getattr(import_module(module), name)(query, user=user)


def filters_problem(form) -> str:
    """What is wrong with a list's filters, in one sentence that names each field."""
    problems = "; ".join(
        f"{form.fields[f].label if f in form.fields else f}: {' '.join(e)}"
        for f, e in form.errors.items()
    )
    return _("The list's filters are not valid: %(problems)s") % {"problems": problems}


def filters_form_of(job):
    """The list page's filter form, bound to the saved query string for the export's user
    and validated (ExportError with the form's message when the filters no longer hold)."""
    query = QueryDict(mutable=True)
    for key, values in (job.params.get("filters") or {}).items():
        query.setlist(key, values if isinstance(values, list) else [values])
    form = list_filters_form(job.export.kind, query, job.user)
    if not form.is_valid():
        raise ExportError(filters_problem(form))
    return form
