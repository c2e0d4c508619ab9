"""Template helpers: whether to show exports, and the "export what I see" form of a list."""

from django import template

from reports.forms import NOT_FILTERS
from reports.kinds import FORMATS, KINDS
from reports.permissions import can_export as _can_export
from reports.permissions import can_make_export

register = template.Library()


@register.filter
def can_export(user) -> bool:
    return _can_export(user)


@register.inclusion_tag("reports/_export_what_i_see.html", takes_context=True)
def export_what_i_see(context, kind: str):
    """A small form that exports the list as the page shows it (its filters, no paging)."""
    request = context["request"]
    query = request.GET.copy()
    for key in NOT_FILTERS:
        query.pop(key, None)
    spec = KINDS[kind]
    return {
        "show": can_make_export(request.user, kind),
        "kind": kind,
        "formats": [FORMATS[f] for f in spec.formats],
        "filters": query.urlencode(),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("reports/_export_document.html", takes_context=True)
def export_document(context, kind: str, household=None):
    """A button that makes one document (e.g. a household's PDF) in the background."""
    request = context["request"]
    return {
        "show": can_make_export(request.user, kind),
        "kind": kind,
        "format": KINDS[kind].formats[0],
        "household": household.pk if household is not None else "",
        "csrf_token": context.get("csrf_token"),
    }
