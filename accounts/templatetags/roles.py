"""Roles in templates: {% load roles %} … {% if user|has_role:"auditor county_official" %}.

The same test as accounts.permissions.has_role (administrators have every role), so a
template never copies a role list by hand.
"""

from django import template

from accounts import permissions

register = template.Library()


@register.filter
def has_role(user, roles: str) -> bool:
    return permissions.has_role(user, *roles.split())
