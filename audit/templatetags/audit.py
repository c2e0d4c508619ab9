"""The audit work's permissions in templates: {% load audit %} {% if user|can_view_worklist %}."""

from django import template

from audit import permissions

register = template.Library()


@register.filter
def can_view_worklist(user) -> bool:
    return permissions.can_view_worklist(user)
