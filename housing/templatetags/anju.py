"""Template helpers for Anju's pages: `{% load anju %}`.

ID numbers are sensitive: templates print them only through `{% id_number value %}`, which
reads the user from the request itself, so no template can forget to mask one.
"""

import datetime

from django import template
from django.urls import get_script_prefix
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import permissions
from housing import idnumbers
from housing.models import SafetyGrade

register = template.Library()


def _shown_in_full(context, value) -> bool:
    """May this number be shown whole here: to an administrator, or as just revealed by the
    view (context["revealed_id_numbers"])?"""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is not None and permissions.can_see_full_id_numbers(user):
        return True
    return bool(value) and value in context.get("revealed_id_numbers", ())


@register.simple_tag(takes_context=True)
def id_number(context, value) -> str:
    """The ID number as this user may see it: full for administrators, and for numbers the
    view has just revealed (context["revealed_id_numbers"]); masked for everyone else."""
    if not value:
        return ""
    return value if _shown_in_full(context, value) else idnumbers.mask(value)


@register.simple_tag(takes_context=True)
def birth(context, member) -> str:
    """A family member's birth as this user may see it, beside their ID number: the date
    and age ("1958-03-14 (67)") where the number is shown whole, else the year and the age
    reached this year ("1958 (67)"), which tell nothing the year does not (housing.idnumbers
    explains why the month and day stay hidden). "" when unknown."""
    born = member.birth_date
    if not born:
        return ""
    if _shown_in_full(context, member.id_number):
        return _("%(date)s (%(age)s)") % {"date": born.isoformat(), "age": age(born)}
    return _("%(year)s (%(age)s)") % {
        "year": idnumbers.shown_birth(born, full=False),
        "age": timezone.localdate().year - born.year,
    }


@register.filter
def age(birth_date: datetime.date | None) -> int | str:
    """Age in whole years today (in the site's time zone)."""
    if not birth_date:
        return ""
    today = timezone.localdate()
    years = today.year - birth_date.year
    if (today.month, today.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


@register.filter
def grade_label(grade: str) -> str:
    """The full label of a safety grade ("C: partly dangerous"); "" is not yet appraised."""
    try:
        return SafetyGrade(grade or "").label
    except ValueError:
        return grade


@register.filter
def can_see_full_id_numbers(user) -> bool:
    return permissions.can_see_full_id_numbers(user)


@register.filter
def can_use_admin(user) -> bool:
    return permissions.can_use_admin(user)


@register.simple_tag
def api_docs_url() -> str:
    # The API's URL names belong to config/api_urls.py; its documented path is stable.
    return f"{get_script_prefix()}api/docs/"
